// fd region mechanics against a regular file (a 32-byte header + data
// section at a non-zero region offset), a FIFO misuse, short reads, reset.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { isMigstreamError, type MigstreamError } from "../../src/errors.js";
import { FdRegion, fdError } from "../../src/transport/fd/region.js";
import { pattern, tempSocket } from "./helpers.js";

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const REGION_OFFSET = 0x3000;
const REGION_SIZE = 32 + 8192;

/** A file with junk before the region, a 32-byte header, a data section, junk after. */
function regionFile(): { path: string; bytes: Uint8Array } {
  const t = tempSocket();
  cleanups.push(t.cleanup);
  const bytes = pattern(REGION_OFFSET + REGION_SIZE + 100, 9);
  const path = join(t.dir, "region.bin");
  fs.writeFileSync(path, bytes);
  return { path, bytes };
}

async function failure(p: Promise<unknown>): Promise<MigstreamError> {
  try {
    await p;
  } catch (e) {
    if (isMigstreamError(e)) return e;
    throw e;
  }
  throw new Error("expected a MigstreamError");
}

describe("fd region", () => {
  it("reads and writes at regionOffset + x through an inherited fd", async () => {
    const { path, bytes } = regionFile();
    const fd = fs.openSync(path, "r+");
    cleanups.push(() => fs.closeSync(fd));
    const r = await FdRegion.open({ kind: "fd", fd }, { offset: REGION_OFFSET, size: REGION_SIZE });
    expect(r.size).toBe(REGION_SIZE);
    // Header fields at their offsets.
    expect(await r.read(8, 8)).toEqual(bytes.subarray(REGION_OFFSET + 8, REGION_OFFSET + 16));
    // A data-section read straight into the caller's buffer.
    const into = new Uint8Array(5000);
    const got = await r.read(32, 4096, into);
    expect(got.buffer).toBe(into.buffer);
    expect(got).toEqual(bytes.subarray(REGION_OFFSET + 32, REGION_OFFSET + 32 + 4096));
    // Writes land at the same place; nothing outside the region changes.
    const data = pattern(1000, 4);
    await r.write(100, data);
    await r.write(24, new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]));
    const after = new Uint8Array(fs.readFileSync(path));
    expect(after.subarray(REGION_OFFSET + 100, REGION_OFFSET + 1100)).toEqual(data);
    expect([...after.subarray(REGION_OFFSET + 24, REGION_OFFSET + 32)]).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
    expect(after.subarray(0, REGION_OFFSET)).toEqual(bytes.subarray(0, REGION_OFFSET));
    expect(after.subarray(REGION_OFFSET + REGION_SIZE)).toEqual(bytes.subarray(REGION_OFFSET + REGION_SIZE));
    await r.close();
    // The inherited fd belongs to the caller and stays open.
    expect(() => fs.fstatSync(fd)).not.toThrow();
  });

  it("opens file: paths itself, defaults the size to the rest of the file, and closes what it opened", async () => {
    const { path, bytes } = regionFile();
    const r = await FdRegion.open({ kind: "file", path }, { offset: REGION_OFFSET });
    expect(r.size).toBe(bytes.length - REGION_OFFSET);
    expect(await r.read(0, 4)).toEqual(bytes.subarray(REGION_OFFSET, REGION_OFFSET + 4));
    await r.close();
    await r.close(); // idempotent
    expect(() => fs.fstatSync(r.fd)).toThrow();
    expect((await failure(r.read(0, 4))).code).toBe("TRANSPORT");
  });

  it("refuses accesses outside the region and regions past the file end", async () => {
    const { path } = regionFile();
    const r = await FdRegion.open({ kind: "file", path }, { offset: REGION_OFFSET, size: REGION_SIZE });
    cleanups.push(() => r.close());
    expect((await failure(r.read(REGION_SIZE - 4, 8))).code).toBe("USAGE");
    expect((await failure(r.write(-1, new Uint8Array(2)))).code).toBe("USAGE");
    const e = await failure(FdRegion.open({ kind: "file", path }, { offset: REGION_OFFSET, size: 1 << 20 }));
    expect(e.code).toBe("USAGE");
    expect(e.message).toMatch(/runs past the end/);
  });

  it("reports a short read as TRANSPORT", async () => {
    const { path } = regionFile();
    const fd = fs.openSync(path, "r+");
    cleanups.push(() => fs.closeSync(fd));
    const r = await FdRegion.open({ kind: "fd", fd }, { offset: REGION_OFFSET, size: REGION_SIZE });
    fs.ftruncateSync(fd, REGION_OFFSET + 64); // the file shrinks under us
    const e = await failure(r.read(32, 100));
    expect(e.code).toBe("TRANSPORT");
    expect(e.message).toMatch(/short read: 32 of 100 bytes/);
  });

  it("refuses a pipe or FIFO fd with a clear TRANSPORT error", async () => {
    const t = tempSocket();
    cleanups.push(t.cleanup);
    const fifo = join(t.dir, "fifo");
    execFileSync("mkfifo", [fifo]);
    const fd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    cleanups.push(() => fs.closeSync(fd));
    const e = await failure(FdRegion.open({ kind: "fd", fd }, { offset: 0, size: 64 }));
    expect(e.code).toBe("TRANSPORT");
    expect(e.message).toMatch(/pipe\/FIFO: the fd must be a seekable device fd/);
    // And the positioned read itself: the kernel answers ESPIPE, which maps the same way.
    let raw: unknown;
    try {
      fs.readSync(fd, new Uint8Array(4), 0, 4, 0);
    } catch (err) {
      raw = err;
    }
    const mapped = fdError(raw, "read", `fd ${fd}`);
    expect(mapped.code).toBe("TRANSPORT");
    expect(mapped.errno).toBe("ESPIPE");
    expect(mapped.message).toMatch(/must be a seekable device fd/);
  });

  it("maps a device errno to DEVICE and fd faults to TRANSPORT", () => {
    const dev = fdError(Object.assign(new Error("x"), { code: "EINVAL" }), "read", "fd 3");
    expect(dev.code).toBe("DEVICE");
    expect(dev.errno).toBe("EINVAL");
    expect(fdError(Object.assign(new Error("x"), { code: "EBADF" }), "read", "fd 3").code).toBe("TRANSPORT");
  });

  it("refuses an fd that is not open, and a missing size for a device fd", async () => {
    const e = await failure(FdRegion.open({ kind: "fd", fd: 987654 }, { offset: 0, size: 64 }));
    expect(e.code).toBe("TRANSPORT");
    expect(e.message).toMatch(/not an open file descriptor/);
    const fd = fs.openSync("/dev/zero", "r+");
    cleanups.push(() => fs.closeSync(fd));
    const e2 = await failure(FdRegion.open({ kind: "fd", fd }, { offset: 0 }));
    expect(e2.code).toBe("USAGE");
    expect(e2.message).toMatch(/size= is required/);
    // A character device with a size works (reads of /dev/zero give zeros).
    const z = await FdRegion.open({ kind: "fd", fd }, { offset: 0x1000, size: 4096 });
    expect((await z.read(0, 64)).every((b) => b === 0)).toBe(true);
  });

  it("rejects reset(): VFIO_DEVICE_RESET is an ioctl the VMM must issue", async () => {
    const { path } = regionFile();
    const r = await FdRegion.open({ kind: "file", path }, { offset: 0 });
    cleanups.push(() => r.close());
    const e = await failure(r.reset());
    expect(e.code).toBe("TRANSPORT");
    expect(e.message).toMatch(/VFIO_DEVICE_RESET is an ioctl.*VMM/);
  });
});
