// `fd:N,protocol=v2`: a data fd a VMM hands over (the VMM keeps the state
// machine). The CLI runs as a child with a stream fd at 3, as a VMM would
// start it; this test plays the VMM: it SETs the simulated device's states
// itself, pumps the device's data through the fd, and checks the result.
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MigrationSimDevice } from "../../src/device/migration-sim.js";
import { walk } from "../../src/device/migration-vendor.js";
import { MIG_STATE } from "../../src/protocol/v2/constants.js";
import { HandedOverDataFd } from "../../src/transport/fd/data-fd.js";
import { parseDeviceSpec } from "../../src/transport/spec.js";
import { CLI, cli, ensureCli } from "./sim-process.js";

let dir: string;
beforeAll(() => {
  ensureCli();
  dir = mkdtempSync(join(tmpdir(), "migstream-datafd-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Everything a STOP_COPY session of `dev` streams (what the VMM's data fd would give). */
async function stopCopyBytes(dev: MigrationSimDevice): Promise<Uint8Array> {
  await walk(dev, MIG_STATE.STOP_COPY);
  const parts: Uint8Array[] = [];
  for (;;) {
    const b = new Uint8Array(100_000);
    const n = await dev.readData(b);
    if (n === 0) break;
    parts.push(b.subarray(0, n));
  }
  await walk(dev, MIG_STATE.STOP);
  return Buffer.concat(parts);
}

/** Runs the CLI with a stream (socket) fd at 3; resolves with its exit code and stderr. */
function withFd3(
  args: string[],
  io: (fd3: Readable & Writable) => void,
): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (stderr += c));
  io(child.stdio[3] as Readable & Writable);
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stderr })));
}

describe("a v2 data fd handed over by the VMM", () => {
  it("parses as its own spec form; offset/size are not asked for", () => {
    expect(parseDeviceSpec("fd:3,protocol=v2")).toEqual({ kind: "data-fd", fd: 3 });
    expect(parseDeviceSpec("fd:4,protocol=v2,stopcopy=restarts")).toEqual({
      kind: "data-fd",
      fd: 4,
      restartsAtStopCopy: true,
    });
    expect(() => parseDeviceSpec("fd:3,protocol=v2,offset=0")).toThrow(/unknown option 'offset'/);
  });

  it("save reads the fd to EOF into a v2 stream; restore writes it back; the device (run by the VMM) validates", async () => {
    const src = new MigrationSimDevice({ stateSize: 512 << 10, seed: 8 });
    const bytes = await stopCopyBytes(src);
    const file = join(dir, "fd.mig");
    const saved = await withFd3(["save", "--device", "fd:3,protocol=v2", "-o", file], (fd3) => fd3.end(bytes));
    expect(saved.code, saved.stderr).toBe(0);
    expect((await cli(["inspect", file])).stdout).toMatch(/VFIO migration v2,/);

    const dst = new MigrationSimDevice({ stateSize: 512 << 10, empty: true });
    await walk(dst, MIG_STATE.RESUMING); // the VMM: SET RESUMING, then hand the data fd over
    const got: Buffer[] = [];
    const restored = await withFd3(["restore", "--device", "fd:3,protocol=v2", file], (fd3) =>
      fd3.on("data", (c: Buffer) => got.push(c)),
    );
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stderr).toMatch(/left to the VMM/);
    const stream = Buffer.concat(got);
    expect(Buffer.compare(stream, Buffer.from(bytes))).toBe(0);
    expect(await dst.writeData(stream)).toBe(stream.length);
    await walk(dst, MIG_STATE.STOP); // the VMM: RESUMING → STOP validates the state
    expect(dst.digest()).toBe(src.digest());
  });

  it("C23: a data fd refuses positioned access (ESPIPE); the channel uses plain read()/write() and works", async () => {
    const fifo = join(dir, "data.fifo");
    execFileSync("mkfifo", [fifo]);
    const fd = fs.openSync(fifo, "r+"); // both ends: a stream file like a data fd
    try {
      fs.writeSync(fd, Buffer.from("0123456789"));
      expect(() => fs.readSync(fd, Buffer.alloc(4), 0, 4, 0)).toThrow(expect.objectContaining({ code: "ESPIPE" }));
      const d = await HandedOverDataFd.open(fd);
      const into = new Uint8Array(10);
      expect(await d.handedOver.read(into)).toBe(10);
      expect(Buffer.from(into).toString()).toBe("0123456789");
      expect(await d.handedOver.write(Buffer.from("ab"))).toBe(2);
      await expect(d.getState()).rejects.toMatchObject({ code: "USAGE" }); // the state machine is the VMM's
      await d.close();
    } finally {
      fs.closeSync(fd);
    }
  });

  it("a save that fails after reading the fd says the VMM must put the source back in RUNNING", async () => {
    // /dev/full: every write of the stream fails (ENOSPC) once the device's bytes were read.
    const r = await withFd3(["save", "--device", "fd:3,protocol=v2", "-o", "/dev/full"], (fd3) => {
      fd3.on("error", () => {});
      fd3.end(Buffer.alloc(300_000, 7));
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/the VMM (owns the (source )?device|must put it back in RUNNING)/);
  });
});
