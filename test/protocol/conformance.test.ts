// The conformance cases of the protocol notes (§8 of vfio-migration-v1.md),
// each as a test named "C<n>: ...", run against the driver (src/protocol), the
// simulated vendor device (src/device) and the in-process transport.
//
// Cases not in this suite, and why:
//   C1–C4  region discovery (scan for CAP_TYPE 3/1, argsz growth, cap-chain
//          walk, zero-sized region) is the vfio-user client's job, below the
//          RegionIO this driver uses; covered in test/transport/vfio-user.test.ts
//          and test/transport/vfio-user-robust.test.ts. The fd transport takes
//          the region offset from its caller.
//   C5     only the device half is here (its sparse-mmap area); the TYPE and
//          SPARSE_MMAP capabilities themselves are encoded by the vfio-user server.
//   C34    no transport maps the data section (RegionIO is read/write only), so
//          there is no trapped/mmap mix to cross.
//   C48–49 we do not keep QEMU's stream framing; our format is docs/FORMAT.md,
//          tested in test/format.
//   C50    the round trip is here; its "destination uses mmap" half is not
//          applicable for the same reason as C34.
//   C51    dirty-page tracking (DIRTY_PAGES ioctls) is not implemented.
import { describe, expect, it } from "vitest";
import { SimDevice } from "../../src/device/index.js";
import { PAGE_SIZE } from "../../src/device/pages.js";
import { ERRNO } from "../../src/protocol/region-io.js";
import { Registers } from "../../src/protocol/registers.js";
import { resume } from "../../src/protocol/resume.js";
import { save } from "../../src/protocol/save.js";
import { CLEAR_LOW, KEEP_ALL, setDeviceState } from "../../src/protocol/state.js";
import type { ResumeItem } from "../../src/protocol/types.js";
import { InProcessRegion } from "../../src/transport/in-process.js";
import { destinationFor, expectClean, failure, ItemSink, KiB, low, roundTrip, sim, vendorErrno } from "./helpers.js";
import { drain, feed, OFF, rd32, rd64, saveByHand, setState, takeBuffer, txnItems, wr32, wr64 } from "./raw.js";

const small = { stateSize: 32 * KiB, txnSize: 8 * KiB, seed: 5 };

/** A device in state `s` (low bits), reached by a path every matrix allows. */
async function deviceIn(s: number, options = small): Promise<SimDevice> {
  const dev = new SimDevice(options);
  if (s === 0) await setState(dev, 0);
  if (s === 2 || s === 3 || s === 4) await setState(dev, s);
  return dev;
}

/** Saved transactions of a fresh `small` device (suspend path, by hand). */
async function savedTxns(options = small): Promise<{ src: SimDevice; txns: Uint8Array[] }> {
  const src = new SimDevice(options);
  const txns = await saveByHand(src);
  return { src, txns };
}

describe("layout and register access discipline", () => {
  it("C5: the data section's sparse mmap area excludes the register page and is page aligned", () => {
    const paged = new SimDevice({ dataOffset: PAGE_SIZE, dataSize: 8 * PAGE_SIZE });
    expect(paged.sparseAreas).toEqual([{ offset: PAGE_SIZE, size: 8 * PAGE_SIZE }]);
    for (const a of paged.sparseAreas) {
      expect(a.offset % PAGE_SIZE).toBe(0);
      expect(a.offset).toBeGreaterThanOrEqual(PAGE_SIZE); // not the header page
    }
    expect(new SimDevice({ dataOffset: 32 }).sparseAreas).toEqual([]); // not page aligned: trapped only
  });

  it("C6: the driver reaches every register by read/write at its native width, never more", async () => {
    const s = sim(small);
    const d = sim(destinationFor(s.dev));
    const sink = new ItemSink();
    await save(s.io, sink);
    await resume(d.io, sink.verified());
    const width: Record<number, number> = { 0: 4, 8: 8, 16: 8, 24: 8 };
    for (const a of [...s.trace, ...d.trace]) {
      if (a.point === "reset") continue;
      if (a.offset < 32) expect(a.count).toBe(width[a.offset]);
      else expect(a.offset).toBeGreaterThanOrEqual(s.dev.dataOffset);
    }
    expectClean(s.dev, d.dev);
  });

  it("C7: device_state reads RUNNING after open and after reset", async () => {
    const dev = new SimDevice({ ...small, reservedBits: 0x100 });
    expect(await rd32(dev, OFF.state)).toBe(0x101);
    await setState(dev, 2);
    await dev.reset();
    expect(await rd32(dev, OFF.state)).toBe(0x101);
    expectClean(dev);
  });

  it("C8: a wrong-width access is EINVAL with no state change and no side effect", async () => {
    const dev = await deviceIn(3);
    const wrong = async () => {
      for (const [off, n] of [
        [0, 2],
        [0, 8],
        [8, 4],
        [16, 4],
        [24, 4],
      ]) {
        expect(await vendorErrno(dev.read(off, n))).toBe(ERRNO.EINVAL);
        expect(await vendorErrno(dev.write(off, new Uint8Array(n)))).toBe(ERRNO.EINVAL);
      }
    };
    await wrong(); // before the iteration: a 4-byte data_offset read prepared nothing
    const pending = await rd64(dev, OFF.pending);
    expect(dev.prepares).toBe(0);
    const at = await rd64(dev, OFF.offset);
    await wrong(); // mid-iteration: a 4-byte pending read acknowledged nothing
    expect(dev.prepares).toBe(1);
    expect(dev.sent).toEqual([]);
    expect(await rd64(dev, OFF.offset)).toBe(at);
    expect(low(dev.state)).toBe(3);
    expect(dev.violations.length).toBe(20);
    expect(dev.violations.every((v) => v.errno === ERRNO.EINVAL)).toBe(true);
    expect(pending).toBeGreaterThan(0);
  });

  it("C9: a misaligned access is EINVAL", async () => {
    const dev = new SimDevice(small);
    expect(await vendorErrno(dev.read(2, 4))).toBe(ERRNO.EINVAL);
    expect(await vendorErrno(dev.read(12, 8))).toBe(ERRNO.EINVAL);
    expect(await vendorErrno(dev.write(2, new Uint8Array(4)))).toBe(ERRNO.EINVAL);
    expect(low(dev.state)).toBe(1);
    expect(dev.violations.map((v) => v.offset)).toEqual([2, 12, 2]);
  });

  it("C10: writes to pending_bytes and data_offset are errors and change nothing", async () => {
    const dev = await deviceIn(3);
    const pending = await rd64(dev, OFF.pending);
    expect(await vendorErrno(wr64(dev, OFF.pending, 1))).toBe(ERRNO.EINVAL);
    expect(await rd64(dev, OFF.pending)).toBe(pending);
    const at = await rd64(dev, OFF.offset);
    expect(await vendorErrno(wr64(dev, OFF.offset, 64))).toBe(ERRNO.EINVAL);
    expect(await rd64(dev, OFF.offset)).toBe(at);
    expect(dev.prepares).toBe(1);
    expect(dev.violations.length).toBe(2);
  });

  it("C11: reserved @4 reads 0 and ignores writes; the libvfio-user variant answers EINVAL", async () => {
    const dev = new SimDevice(small);
    await wr32(dev, OFF.reserved, 0xdead);
    expect(await rd32(dev, OFF.reserved)).toBe(0);
    expect(low(dev.state)).toBe(1);
    expectClean(dev);
    const lvu = new SimDevice({ ...small, reservedEinval: true });
    expect(await vendorErrno(rd32(lvu, OFF.reserved))).toBe(ERRNO.EINVAL);
    expect(await vendorErrno(wr32(lvu, OFF.reserved, 0))).toBe(ERRNO.EINVAL);
  });

  it("C12: the driver writes device_state by read-modify-write, keeping bits 3–31", async () => {
    const r = await roundTrip({ ...small, reservedBits: 0x100 }, { reservedBits: 0x100 });
    for (const dev of [r.src, r.dst]) {
      expect(dev.stateWrites.length).toBeGreaterThan(0);
      for (const w of dev.stateWrites) {
        expect(w.value & ~7).toBe(0x100);
        expect(w.ok).toBe(true);
      }
    }
    expect(r.dst.state).toBe(0x101);
  });

  it("C13: the driver refuses to request 5, 6 or 7 without writing", async () => {
    const s = sim(small);
    const regs = new Registers(s.io);
    for (const v of [5, 6, 7]) {
      const e = await failure(setDeviceState(regs, CLEAR_LOW, v, "test"));
      expect(e.code).toBe("PROTOCOL");
      expect(e.field).toBe("device_state");
    }
    await setState(s.dev, 4);
    const e = await failure(setDeviceState(regs, KEEP_ALL, 2, "test")); // 4 | 2 = 6
    expect(e.message).toMatch(/invalid device_state/);
    expect(s.dev.stateWrites.length).toBe(1); // only the raw 1 → 4 above
    expect(s.trace.filter((a) => a.point === "write device_state")).toEqual([]);
  });

  it("C14: a user write of 5, 6, 7 or of unsupported reserved bits is EINVAL, state unchanged", async () => {
    const dev = new SimDevice({ ...small, reservedBits: 0x100 });
    for (const v of [0x105, 0x106, 0x107, 0x001, 0x301, 0x80000101]) {
      expect(await vendorErrno(wr32(dev, OFF.state, v))).toBe(ERRNO.EINVAL);
      expect(dev.state).toBe(0x101);
    }
    expect(dev.violations.length).toBe(6);
  });
});

describe("state machine", () => {
  it("C15: every transition QEMU uses succeeds", async () => {
    const pairs: Array<[number, number]> = [
      [1, 3],
      [3, 2],
      [1, 2],
      [0, 2],
      [2, 0],
      [1, 0],
      [0, 1],
      [2, 1],
      [3, 1],
      [1, 4],
      [0, 4],
    ];
    for (const [from, to] of pairs) {
      const dev = await deviceIn(from);
      await setState(dev, to);
      expect(low(dev.state), `${from}→${to}`).toBe(to);
      expectClean(dev);
    }
    // 4 → 1 after a complete restore.
    const { src, txns } = await savedTxns();
    const dst = await deviceIn(4, { ...small, empty: true } as typeof small);
    for (const t of txns) await feed(dst, t);
    await setState(dst, 1);
    expect(low(dst.state)).toBe(1);
    expect(dst.digest()).toBe(src.digest());
    expectClean(src, dst);
  });

  it("C16: same-state writes succeed as no-ops and keep an iteration in progress", async () => {
    for (const s of [0, 1, 2, 4]) {
      const dev = await deviceIn(s);
      await setState(dev, s);
      expect(low(dev.state)).toBe(s);
      expectClean(dev);
    }
    // 3 → 3 mid-iteration: the same buffer, no new prepare; after the ack no pending re-read is needed.
    const dev = await deviceIn(3);
    await rd64(dev, OFF.pending);
    const at = await rd64(dev, OFF.offset);
    await setState(dev, 3);
    const n = await rd64(dev, OFF.size);
    expect(await rd64(dev, OFF.offset)).toBe(at);
    await dev.read(at, n);
    await rd64(dev, OFF.pending); // ack
    await setState(dev, 3);
    await takeBuffer(dev); // step b straight away
    expect(dev.prepares).toBe(2);
    expect(dev.sent.length).toBe(1);
    // 4 → 4 mid-restore keeps what was received.
    const { src, txns } = await savedTxns();
    const dst = await deviceIn(4, { ...small, empty: true } as typeof small);
    await feed(dst, txns[0]);
    await setState(dst, 4);
    for (const t of txns.slice(1)) await feed(dst, t);
    await setState(dst, 1);
    expect(dst.digest()).toBe(src.digest());
    expectClean(dev, dst);
  });

  it("C17: transitions outside the matrix are EINVAL with no side effects", async () => {
    for (const [from, to] of [
      [2, 3],
      [0, 3],
      [4, 2],
      [3, 4],
      [2, 4],
      [4, 0],
      [4, 3],
    ]) {
      const dev = await deviceIn(from);
      const pending = from === 2 || from === 3 ? await rd64(dev, OFF.pending) : -1;
      expect(await vendorErrno(setState(dev, to)), `${from}→${to}`).toBe(ERRNO.EINVAL);
      expect(low(dev.state)).toBe(from);
      expect(dev.violations.length).toBe(1);
      if (pending >= 0) expect(await rd64(dev, OFF.pending)).toBe(pending); // session kept
      expect(dev.sessions).toBe(from === 2 || from === 3 ? 1 : 0);
    }
  });

  it("C18: with RUNNING clear the device changes nothing after the write returns", async () => {
    const dev = new SimDevice({ ...small, dirtyPerTxn: 4 });
    for (const s of [0, 2, 4]) {
      await dev.reset();
      const d0 = dev.digest();
      await setState(dev, s);
      const d1 = dev.digest();
      expect(dev.run(8)).toBe(0);
      if (s === 2) await drain(dev); // acknowledged stop-and-copy buffers dirty nothing
      expect(dev.digest()).toBe(s === 4 ? d1 : d0);
    }
    await dev.reset();
    expect(dev.run(8)).toBe(8); // RUNNING: it does change
  });

  it("C19: a failed transition that stays put is reported with its errno, no reset", async () => {
    const s = sim(small);
    const before = s.dev.digest();
    s.dev.inject({ at: "write device_state", to: 3, errno: ERRNO.EBUSY });
    const e = await failure(save(s.io, new ItemSink()));
    expect(e.code).toBe("DEVICE");
    expect(e.errno).toBe("EBUSY");
    expect(e.step).toBe("save: enter pre-copy");
    expect(e.message).toMatch(/device is in RUNNING/);
    expect(s.dev.resets).toBe(0);
    expect(low(s.dev.state)).toBe(1);
    expect(s.dev.digest()).toBe(before);
    expectClean(s.dev);
  });

  it("C20: a failed transition into ERROR makes the driver reset the device (no abort)", async () => {
    const s = sim(small);
    s.dev.inject({ at: "write device_state", to: 2, then: "error" });
    const e = await failure(save(s.io, new ItemSink()));
    expect(e.errno).toBe("EIO");
    expect(e.step).toBe("save: enter stop-and-copy");
    expect(e.message).toMatch(/entered ERROR; device reset/);
    expect(s.dev.resets).toBe(1);
    expect(low(s.dev.state)).toBe(1);
    expectClean(s.dev);
  });

  it("C21: when the re-read after a failed write fails too, the driver resets", async () => {
    const s = sim(small);
    // device_state reads in a save: 1 = start check, 2 = before 1→3, 3 = the re-read after it fails.
    s.dev.inject({ at: "write device_state", to: 3 }).inject({ at: "read device_state", nth: 3, errno: ERRNO.EFAULT });
    const e = await failure(save(s.io, new ItemSink()));
    expect(e.errno).toBe("EIO");
    expect(e.message).toMatch(/re-reading device_state failed.*EFAULT.*device reset/);
    expect(s.dev.resets).toBe(1);
    expect(low(s.dev.state)).toBe(1);
    expectClean(s.dev);
  });

  it("C22: in ERROR every device_state write fails; only reset leaves it", async () => {
    const dev = new SimDevice(small);
    dev.inject({ at: "write device_state", then: "error" });
    expect(await vendorErrno(setState(dev, 3))).toBe(ERRNO.EIO);
    expect(low(dev.state)).toBe(6);
    for (const v of [0, 1, 2, 3, 4, 6]) {
      expect(await vendorErrno(setState(dev, v))).toBe(ERRNO.EINVAL);
      expect(low(dev.state)).toBe(6);
    }
    await dev.reset();
    expect(low(dev.state)).toBe(1);
  });
});

describe("saving", () => {
  it("C23: pre-copy reads pending → data_offset → data_size → data → pending, buffers in order", async () => {
    const s = sim({ ...small, dirtyPerTxn: 1 });
    const sink = new ItemSink();
    await save(s.io, sink, { policy: { maxIterations: 3 } });
    const seq = s.trace.map((a) => a.point.replace(/^(read|write) /, "")).join(",");
    // After the first pending read, every buffer is offset,size,data,pending.
    const loops = seq.match(/data_offset,data_size,data,pending_bytes/g) ?? [];
    expect(loops.length).toBe(sink.transactions.length);
    expect(seq).not.toMatch(/data_offset,(?!data_size)/);
    expect(seq).not.toMatch(/data_size,(?!data)/);
    expect(s.dev.sent.map((t) => t.seq)).toEqual(s.dev.sent.map((_, i) => i));
    expect(sink.phases.slice(0, 2)).toEqual(["setup", "precopy0"]);
    expectClean(s.dev);
  });

  it("C24: repeated pending_bytes reads before data_offset return the same value and discard nothing", async () => {
    const dev = await deviceIn(3);
    const a = await rd64(dev, OFF.pending);
    expect(await rd64(dev, OFF.pending)).toBe(a);
    expect(await rd64(dev, OFF.pending)).toBe(a);
    expect(dev.prepares).toBe(0);
    expect(dev.sent).toEqual([]);
    await takeBuffer(dev);
    expect(dev.prepares).toBe(1);
    expectClean(dev);
  });

  it("C25: re-reading data_offset and data_size within an iteration gives the same buffer, prepared once", async () => {
    const dev = await deviceIn(3);
    await rd64(dev, OFF.pending);
    const at = await rd64(dev, OFF.offset);
    const n = await rd64(dev, OFF.size);
    expect(await rd64(dev, OFF.offset)).toBe(at);
    expect(await rd64(dev, OFF.size)).toBe(n);
    const first = await dev.read(at, n);
    expect(await rd64(dev, OFF.offset)).toBe(at);
    expect(Buffer.compare(await dev.read(at, n), first)).toBe(0);
    expect(dev.prepares).toBe(1);
    expectClean(dev);
  });

  it("C26: data_offset out of sequence (pending never read, or read as 0) is EINVAL", async () => {
    const dev = await deviceIn(3);
    expect(await vendorErrno(rd64(dev, OFF.offset))).toBe(ERRNO.EINVAL);
    const quiet = await deviceIn(3, { ...small, precopyData: false } as typeof small);
    expect(await rd64(quiet, OFF.pending)).toBe(0);
    expect(await vendorErrno(rd64(quiet, OFF.offset))).toBe(ERRNO.EINVAL);
    expect(dev.violations.length + quiet.violations.length).toBe(2);
    expect(dev.prepares + quiet.prepares).toBe(0);
  });

  it("C27: a vendor blocking 100 ms in data_offset is waited for, with an intact result", async () => {
    const t0 = performance.now();
    const r = await roundTrip({ stateSize: 8 * KiB, txnSize: 8 * KiB, dataOffsetDelayMs: 100 }, {}, { precopy: false });
    expect(r.src.prepares).toBeGreaterThanOrEqual(2);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(r.src.prepares * 100 - 5);
  });

  it("C28: pending_bytes may grow during pre-copy; the driver keeps iterating", async () => {
    const pend: number[] = [];
    const r = await roundTrip(
      { ...small, dirtyPerTxn: 6 },
      {},
      {
        policy: { maxIterations: 4 },
        onProgress: (p) => {
          if (p.phase === "precopy" && p.pending !== undefined) pend.push(p.pending);
        },
      },
    );
    expect(pend.some((v, i) => i > 0 && v > pend[i - 1])).toBe(true);
    expect(r.summary.iterations).toBe(4);
  });

  it("C29: a vendor with no pre-copy data migrates fully in stop-and-copy", async () => {
    const r = await roundTrip({ ...small, precopyData: false, dirtyPerTxn: 2 });
    expect(r.summary.precopy.transactions).toBe(0);
    expect(r.summary.precopyEnd).toBe("converged");
    expect(r.summary.stopcopy.bytes).toBeGreaterThan(small.stateSize);
  });

  it("C30: switching to stop-and-copy with a buffer outstanding still yields a complete state", async () => {
    const src = new SimDevice({ ...small, dirtyPerTxn: 1 });
    await setState(src, 3);
    const pre: Uint8Array[] = [];
    await rd64(src, OFF.pending);
    pre.push(await takeBuffer(src)); // acknowledged by the next pending read
    await rd64(src, OFF.pending);
    const outstanding = await takeBuffer(src); // read, never acknowledged
    await setState(src, 2);
    const stop = await drain(src);
    await setState(src, 0);
    // The destination may or may not have got the outstanding buffer.
    for (const txns of [
      [...pre, outstanding, ...stop],
      [...pre, ...stop],
    ]) {
      const dst = await deviceIn(4, { ...small, empty: true } as typeof small);
      for (const t of txns) await feed(dst, t);
      await setState(dst, 1);
      expect(dst.digest()).toBe(src.digest());
      expectClean(dst);
    }
    expectClean(src);
  });

  it("C31: stop-and-copy drains until pending_bytes is 0, then 2 → 0; the device ends in STOP", async () => {
    const s = sim(small);
    await save(s.io, new ItemSink(), { precopy: false });
    const tail = s.trace.slice(-3).map((a) => a.point);
    expect(tail).toEqual(["read pending_bytes", "read device_state", "write device_state"]);
    expect(s.dev.stateWrites.map((w) => low(w.value))).toEqual([2, 0]);
    expect(low(s.dev.state)).toBe(0);
    expectClean(s.dev);
  });

  it("C32: pending > 0 with data_size 0 ends the save with a clear error, no spin", async () => {
    for (const nth of [1, 5]) {
      // nth 1: first pre-copy buffer; nth 5: a stop-and-copy buffer (4 in pre-copy).
      const s = sim(small);
      const before = s.dev.digest();
      s.dev.inject({ at: "read data_size", nth, value: 0 });
      const e = await failure(save(s.io, new ItemSink()));
      expect(e.code).toBe("PROTOCOL");
      expect(e.field).toBe("data_size");
      expect(e.step).toBe("save: read data_size");
      expect(e.message).toMatch(/pending_bytes is \d+ but data_size is 0/);
      expect(s.trace.filter((a) => a.point === "read data_size").length).toBe(nth);
      expect(low(s.dev.state)).toBe(1);
      expect(s.dev.digest()).toBe(before);
      expectClean(s.dev);
    }
  });

  it("C33: data_offset < 32 or a buffer past the region end is an error, never an out-of-bounds access", async () => {
    const cases: Array<{ at: "read data_offset" | "read data_size"; value: number | bigint; field: string }> = [
      { at: "read data_offset", value: 16, field: "data_offset" },
      { at: "read data_offset", value: 0, field: "data_offset" },
      { at: "read data_offset", value: 4096 + 8 * KiB, field: "data_offset" },
      { at: "read data_size", value: 8 * KiB + 1, field: "data_size" },
      { at: "read data_size", value: 2n ** 60n, field: "data_size" },
    ];
    for (const c of cases) {
      const s = sim(small);
      s.dev.inject({ at: c.at, value: c.value });
      const e = await failure(save(s.io, new ItemSink()));
      expect(e.code, String(c.value)).toBe("PROTOCOL");
      expect(e.field).toBe(c.field);
      expect(s.trace.filter((a) => a.point === "read data")).toEqual([]);
      expect(s.trace.every((a) => a.offset + a.count <= s.io.size)).toBe(true);
      expect(low(s.dev.state)).toBe(1);
      expectClean(s.dev);
    }
  });

  it("C35: the data section gives identical bytes for any split of reads", async () => {
    const whole = await deviceIn(3);
    const split = await deviceIn(3);
    await rd64(whole, OFF.pending);
    const a = await takeBuffer(whole);
    await rd64(split, OFF.pending);
    const at = await rd64(split, OFF.offset);
    const n = await rd64(split, OFF.size);
    const b = new Uint8Array(n);
    // QEMU's slow path: naturally aligned 8/4/2/1-byte pieces, from an odd start.
    for (let i = 0; i < n; ) {
      const o = at + i;
      const k = n - i >= 8 && o % 8 === 0 ? 8 : n - i >= 4 && o % 4 === 0 ? 4 : n - i >= 2 && o % 2 === 0 ? 2 : 1;
      b.set(await split.read(o, k), i);
      i += k;
    }
    expect(Buffer.compare(a, b)).toBe(0);
    await rd64(whole, OFF.pending);
    await rd64(split, OFF.pending);
    expectClean(whole, split); // both acknowledged a fully read buffer
  });

  it("C36: a data read failing mid-buffer fails the save; the source runs on and can be saved afresh", async () => {
    const s = sim({ ...small, txnSize: 16 * KiB }, 4 * KiB);
    const before = s.dev.digest();
    s.dev.inject({ at: "read data", nth: 2, errno: ERRNO.EIO });
    const e = await failure(save(s.io, new ItemSink()));
    expect(e.code).toBe("DEVICE");
    expect(e.errno).toBe("EIO");
    expect(e.step).toBe("save: read data");
    expect(low(s.dev.state)).toBe(1);
    expect(s.dev.digest()).toBe(before);
    expect(s.dev.run(2)).toBe(2); // keeps working
    const d = sim(destinationFor(s.dev), 4 * KiB);
    const sink = new ItemSink();
    await save(s.io, sink);
    expect(s.dev.sessions).toBe(2);
    expect(s.dev.sent[0].seq).toBe(0); // a fresh session
    await resume(d.io, sink.verified());
    expect(d.dev.digest()).toBe(s.dev.digest());
    expectClean(s.dev, d.dev);
  });

  it("C37: a pending_bytes read error fails the save (QEMU would ignore it)", async () => {
    const s = sim(small);
    s.dev.inject({ at: "read pending_bytes", nth: 2, errno: ERRNO.EPERM });
    const e = await failure(save(s.io, new ItemSink()));
    expect(e.code).toBe("DEVICE");
    expect(e.errno).toBe("EPERM");
    expect(e.step).toBe("save: read pending_bytes");
    expect(e.field).toBe("pending_bytes");
    expect(low(s.dev.state)).toBe(1);
    expectClean(s.dev);
  });

  it("C38: cancel in pre-copy goes 3 → 1; a second RUNNING write is a no-op; state intact", async () => {
    const s = sim(small);
    const before = s.dev.digest();
    const ac = new AbortController();
    const e = await failure(
      save(s.io, new ItemSink(), {
        onProgress: (p) => {
          if (p.transactions === 2) ac.abort();
        },
        signal: ac.signal,
      }),
    );
    expect(e.code).toBe("ABORTED");
    expect(s.dev.stateWrites.map((w) => `${low(w.from)}>${low(w.value)}`)).toEqual(["1>3", "3>1"]);
    await setState(s.dev, 1); // QEMU's CANCELLED after CANCELLING
    expect(low(s.dev.state)).toBe(1);
    expect(s.dev.digest()).toBe(before);
    expectClean(s.dev);
  });

  it("C39: a stream write error after stop-and-copy puts the source back in RUNNING with its state", async () => {
    for (const when of ["stopcopy", "end"]) {
      const s = sim(small);
      const before = s.dev.digest();
      const sink = new ItemSink();
      let phase = "";
      const failing = {
        phase: (p: "setup" | "precopy" | "stopcopy" | "config" | "end", i: number) => {
          phase = p;
          if (p === "end" && when === "end") throw new Error("disk full");
          sink.phase(p, i);
        },
        transaction: (d: Uint8Array) => {
          if (phase === "stopcopy" && when === "stopcopy") throw new Error("broken pipe");
          sink.transaction(d);
        },
      };
      const e = await failure(save(s.io, failing));
      expect(e.code).toBe("IO");
      expect(e.step).toBe(when === "end" ? "save: sink phase" : "save: sink transaction");
      const last = s.dev.stateWrites.at(-1)!;
      expect(`${low(last.from)}>${low(last.value)}`).toBe(when === "end" ? "0>1" : "2>1");
      expect(low(s.dev.state)).toBe(1);
      expect(s.dev.digest()).toBe(before);
      expectClean(s.dev);
    }
  });
});

describe("resuming", () => {
  it("C40: 1 → 4, per buffer data_offset → data → data_size, then 4 → 1; restored state equals the source", async () => {
    const s = sim(small);
    const d = sim(destinationFor(s.dev));
    const sink = new ItemSink();
    await save(s.io, sink);
    await resume(d.io, sink.verified());
    const seq = d.trace.map((a) => a.point.replace(/^(read|write) /, "")).join(",");
    const n = sink.transactions.length;
    // A state check read, then the read-modify-write of 1 → 4 (read, write); the same RMW for 4 → 1 at the end.
    expect(seq).toBe(
      [
        "device_state",
        "device_state",
        "device_state",
        ...Array(n).fill("data_offset,data,data_size"),
        "device_state",
        "device_state",
      ].join(","),
    );
    expect(d.dev.stateWrites.map((w) => low(w.value))).toEqual([4, 1]);
    expect(d.dev.digest()).toBe(s.dev.digest());
    expectClean(s.dev, d.dev);
  });

  it("C41: the vendor accepts only the source's buffer boundaries (count, order, sizes)", async () => {
    const { txns } = await savedTxns();
    expect(txns.length).toBeGreaterThanOrEqual(4);
    const merged = new Uint8Array(txns[0].length + txns[1].length);
    merged.set(txns[0]);
    merged.set(txns[1], txns[0].length);
    const variants: Record<string, Uint8Array[]> = {
      split: [txns[0].subarray(0, 100), txns[0].subarray(100), ...txns.slice(1)],
      merged: [merged, ...txns.slice(2)],
      reordered: [txns[1], txns[0], ...txns.slice(2)],
      dropped: [txns[0], ...txns.slice(2)],
    };
    for (const [name, list] of Object.entries(variants)) {
      const dst = await deviceIn(4, { ...small, empty: true, dataSize: 16 * KiB } as typeof small); // room for the merged one
      let rejected = 0;
      for (const t of list) {
        try {
          await feed(dst, t);
        } catch (e) {
          rejected++;
          expect((e as { errno: number }).errno, name).toBe(ERRNO.EINVAL);
          break;
        }
      }
      expect(rejected, name).toBe(1);
      expect(dst.rejected.length, name).toBe(1);
      expect(low(dst.state)).toBe(4);
      expectClean(dst); // a rejected buffer is not a protocol violation
    }
  });

  it("C42: a destination data section smaller than a buffer is an explicit error (no split)", async () => {
    const s = sim({ ...small, txnSize: 8 * KiB });
    const sink = new ItemSink();
    await save(s.io, sink);
    const d = sim({ stateSize: small.stateSize, empty: true, dataSize: 4 * KiB });
    const e = await failure(resume(d.io, sink.verified()));
    expect(e.code).toBe("DEVICE"); // the device cannot take it: not a damaged stream
    expect(e.step).toBe("resume: read data_offset");
    expect(e.message).toMatch(/larger than the destination data section.*not split/);
    expect(d.trace.filter((a) => a.point === "write data")).toEqual([]);
    expect(low(d.dev.state)).toBe(0);
    expectClean(d.dev);
  });

  it("C43: zero-length source buffers are not replayed (no data_size = 0 write)", async () => {
    const s = sim(small);
    const sink = new ItemSink();
    await save(s.io, sink);
    const empty: ResumeItem = { kind: "transaction", data: new Uint8Array(0) };
    const items = sink.verified().flatMap((i): ResumeItem[] => (i.kind === "transaction" ? [empty, i, empty] : [i]));
    const d = sim(destinationFor(s.dev));
    const summary = await resume(d.io, items);
    expect(summary.skipped).toBe(2 * sink.transactions.length);
    expect(summary.transactions).toBe(sink.transactions.length);
    expect(d.trace.filter((a) => a.point === "write data_size").length).toBe(sink.transactions.length);
    expect(d.dev.digest()).toBe(s.dev.digest());
    expectClean(d.dev);
  });

  it("C44: a buffer the vendor rejects on the data_size write fails the load with its errno", async () => {
    const { txns } = await savedTxns();
    // The vendor side: it stays in RESUMING and reset restores RUNNING.
    const raw = await deviceIn(4, { ...small, empty: true } as typeof small);
    const bad = txns[1].slice();
    bad[bad.length - 1] ^= 1;
    await feed(raw, txns[0]);
    expect(await vendorErrno(feed(raw, bad))).toBe(ERRNO.EINVAL);
    expect(low(raw.state)).toBe(4);
    await raw.reset();
    expect(low(raw.state)).toBe(1);
    // The driver: reports the errno, resets (drops the partial state) and stops the device.
    const d = sim({ ...small, empty: true });
    const items = txnItems([txns[0], bad, ...txns.slice(2)]);
    const e = await failure(resume(d.io, items));
    expect(e.code).toBe("DEVICE");
    expect(e.errno).toBe("EINVAL");
    expect(e.step).toBe("resume: write data_size");
    expect(d.dev.resets).toBe(1);
    expect(low(d.dev.state)).toBe(0);
    expect(d.dev.image.pristine).toBe(true);
    expectClean(raw, d.dev);
  });

  it("C45: a failed 4 → 1 is re-read (4 or 6) and the device reset", async () => {
    const { txns } = await savedTxns();
    // Without the last buffer (END) the vendor refuses RUNNING and stays in RESUMING.
    const d = sim({ ...small, empty: true });
    const e = await failure(resume(d.io, txnItems(txns.slice(0, -1))));
    expect(e.errno).toBe("EINVAL");
    expect(e.step).toBe("resume: enter RUNNING");
    expect(e.message).toMatch(/device is in RESUMING; device reset/);
    // A vendor that goes to ERROR on it.
    const d2 = sim({ ...small, empty: true });
    d2.dev.inject({ at: "write device_state", to: 1, then: "error" });
    const e2 = await failure(resume(d2.io, txnItems(txns)));
    expect(e2.message).toMatch(/entered ERROR; device reset/);
    for (const x of [d, d2]) {
      expect(x.dev.resets).toBe(1);
      expect(low(x.dev.state)).toBe(0);
      expectClean(x.dev);
    }
  });

  it("C46: data_size and pending_bytes reads in RESUMING are errors, never stale values", async () => {
    const dev = new SimDevice(small);
    await saveByHand(dev); // leaves stale save values behind
    await setState(dev, 4);
    expect(await vendorErrno(rd64(dev, OFF.size))).toBe(ERRNO.EINVAL);
    expect(await vendorErrno(rd64(dev, OFF.pending))).toBe(ERRNO.EINVAL);
    expect(dev.violations.length).toBe(2);
  });

  it("C47: data section and data_offset accesses in RUNNING or STOP are errors", async () => {
    for (const s of [1, 0]) {
      const dev = await deviceIn(s);
      const at = dev.dataOffset;
      expect(await vendorErrno(rd64(dev, OFF.offset))).toBe(ERRNO.EINVAL);
      expect(await vendorErrno(dev.read(at, 8))).toBe(ERRNO.EINVAL);
      expect(await vendorErrno(dev.write(at, new Uint8Array(8)))).toBe(ERRNO.EINVAL);
      expect(await vendorErrno(wr64(dev, OFF.size, 8))).toBe(ERRNO.EINVAL);
      expect(dev.violations.length).toBe(4);
    }
  });

  it("C50: a full round trip restores the state byte for byte", async () => {
    const r = await roundTrip({ ...small, dirtyPerTxn: 2 }, {}, { policy: { maxIterations: 3 } });
    expect(Buffer.compare(r.dst.image.bytes, r.src.image.bytes)).toBe(0);
  });
});

describe("transport errors reach the driver as typed errors", () => {
  it("the in-process transport maps a vendor errno to DEVICE with its name", async () => {
    const dev = new SimDevice(small);
    const io = new InProcessRegion(dev);
    const e = await failure(io.read(2, 4));
    expect(e.code).toBe("DEVICE");
    expect(e.errno).toBe("EINVAL");
  });
});
