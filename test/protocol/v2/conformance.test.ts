// The conformance cases of the v2 notes (§4 of vfio-migration-v2.md), each as
// a test named "C<n>: ...", run against the v2 driver, the simulated v2 device
// and the in-process transport (kernel semantics). The vfio-user cases (26–32,
// and the vfio-user halves of 1, 8 and 33) run against our v2 server and
// client in test/transport/vfio-user-v2.test.ts; case 23 (no positioned
// access on a data fd) against a real fd in test/transport/fd-data.test.ts.
import { describe, expect, it } from "vitest";
import { MigrationSimDevice } from "../../../src/device/migration-sim.js";
import { ERRNO } from "../../../src/protocol/region-io.js";
import type { ResumeItem } from "../../../src/protocol/types.js";
import { MIG_STATE, MIGRATION_PRE_COPY, type MigState } from "../../../src/protocol/v2/constants.js";
import type { DataChannel, MigrationDevice, PrecopyInfo } from "../../../src/protocol/v2/device-io.js";
import { pathTo } from "../../../src/protocol/v2/fsm.js";
import { resumeV2 } from "../../../src/protocol/v2/resume.js";
import { saveV2 } from "../../../src/protocol/v2/save.js";
import { InProcessMigration } from "../../../src/transport/in-process-v2.js";
import { failure, ItemSink } from "../helpers.js";
import { destinationOf, expectCleanV2, KiB, roundTripV2, simV2, type TraceDevice } from "./helpers.js";

const small = { stateSize: 64 * KiB, seed: 9 };
const S = MIG_STATE;

/** The states the driver SET, in order. */
const sets = (t: TraceDevice): MigState[] => t.calls.flatMap((c) => (c.op === "set state" ? [c.to!] : []));

/** A device that reports other MIGRATION flags than the simulated device behind it. */
function withFlags(inner: MigrationDevice, flags: number): MigrationDevice {
  return Object.assign(Object.create(inner) as MigrationDevice, { migrationFlags: async () => flags });
}

/** Keeps the channels a device hands out (to use them after their session ended). */
function keepChannels(inner: MigrationDevice): { dev: MigrationDevice; channels: DataChannel[] } {
  const channels: DataChannel[] = [];
  const dev = Object.assign(Object.create(inner) as MigrationDevice, {
    setState: async (s: MigState) => {
      const ch = await inner.setState(s);
      if (ch) channels.push(ch);
      return ch;
    },
  });
  return { dev, channels };
}

/** Records what every PRECOPY_INFO of the channels the device hands out answered. */
function watchPrecopyInfo(inner: MigrationDevice): { dev: MigrationDevice; infos: PrecopyInfo[] } {
  const infos: PrecopyInfo[] = [];
  const dev = Object.assign(Object.create(inner) as MigrationDevice, {
    setState: async (st: MigState) => {
      const ch = await inner.setState(st);
      const info = ch?.precopyInfo?.bind(ch);
      if (ch && info) {
        ch.precopyInfo = async () => {
          const i = await info();
          infos.push(i);
          return i;
        };
      }
      return ch;
    },
  });
  return { dev, infos };
}

describe("v2 conformance: discovery and flags", () => {
  it("C1: GET MIGRATION failing with ENOTTY is reported as no v2 migration, nothing else is tried", async () => {
    const s = simV2(small);
    s.dev.inject({ at: "get migration", errno: ERRNO.ENOTTY });
    const e = await failure(saveV2(s.io, new ItemSink()));
    expect(e.code).toBe("DEVICE");
    expect(e.errno).toBe("ENOTTY");
    expect(e.message).toMatch(/no v2 migration/);
    expect(sets(s.io)).toEqual([]);
    expect(s.dev.state).toBe(S.RUNNING);
  });

  it("C2: MIGRATION flags without STOP_COPY refuse the device before any SET", async () => {
    const s = simV2(small);
    const e = await failure(saveV2(withFlags(s.io, MIGRATION_PRE_COPY), new ItemSink()));
    expect(e.code).toBe("PROTOCOL");
    expect(e.message).toMatch(/lack STOP_COPY/);
    expect(sets(s.io)).toEqual([]);
  });

  it("C3: without PRE_COPY the save goes RUNNING → STOP_COPY in one SET and reads the fd it returned", async () => {
    const r = await roundTripV2({ ...small, precopy: false });
    expect(sets(r.src.io)).toEqual([S.STOP_COPY, S.STOP]);
    expect(r.src.dev.arcs).toEqual(["RUNNING>STOP", "STOP>STOP_COPY", "STOP_COPY>STOP"]);
    expect(r.summary.precopy.bytes).toBe(0);
  });

  it("C4: without P2P the driver never asks for RUNNING_P2P or PRE_COPY_P2P, and asking is EINVAL", async () => {
    const r = await roundTripV2({ ...small, dirtyPerMiB: 64 });
    for (const t of [r.src.io, r.dst.io])
      for (const s of sets(t)) expect([S.RUNNING_P2P, S.PRE_COPY_P2P]).not.toContain(s);
    const d = new InProcessMigration(new MigrationSimDevice(small));
    for (const s of [S.RUNNING_P2P, S.PRE_COPY_P2P]) expect((await failure(d.setState(s))).errno).toBe("EINVAL");
    // A P2P device: the driver still asks for the plain states; the walk passes through RUNNING_P2P itself.
    const p = await roundTripV2({ ...small, p2p: true });
    expect(sets(p.src.io)).toEqual([S.PRE_COPY, S.STOP_COPY, S.STOP]);
    expect(p.src.dev.arcs).toContain("PRE_COPY>PRE_COPY_P2P");
  });

  it("C5: states are v2 numbers: the save SETs 6, 3, 1 and the resume 4, 1, 2 (never a v1 encoding)", async () => {
    const r = await roundTripV2(small);
    expect(sets(r.src.io)).toEqual([6, 3, 1]);
    expect(sets(r.dst.io)).toEqual([4, 1, 2]);
    // A v1 device_state value is a plain number; MigState is branded, so this does not type-check:
    // @ts-expect-error v1 STATE_RUNNING (1) is not a v2 state
    const v1Running: MigState = 1;
    expect(v1Running).toBe(S.STOP); // ...and would have meant STOP
  });
});

describe("v2 conformance: the data fd", () => {
  it("C6: RUNNING → PRE_COPY returns the fd; PRE_COPY → STOP_COPY returns none and the same fd goes on", async () => {
    const s = simV2({ ...small, dirtyPerMiB: 64 });
    const { dev, channels } = keepChannels(s.io);
    const sink = new ItemSink();
    await saveV2(dev, sink);
    expect(channels.length).toBe(1); // only the PRE_COPY SET opened one
    const reads = s.io.calls.map((c) => c.op);
    const stopCopy = s.io.calls.findIndex((c) => c.op === "set state" && c.to === S.STOP_COPY);
    expect(reads.slice(0, stopCopy)).toContain("read data");
    expect(reads.slice(stopCopy)).toContain("read data");
    expect(reads.slice(0, stopCopy)).not.toContain("close");
    // A device whose PRE_COPY SET opens nothing is refused.
    const bad = simV2(small);
    const noFd = Object.assign(Object.create(bad.io) as MigrationDevice, {
      setState: async (st: MigState) => (await bad.io.setState(st), null),
    });
    const e = await failure(saveV2(noFd, new ItemSink()));
    expect(e.code).toBe("PROTOCOL");
    expect(e.field).toBe("data_fd");
    expect(bad.dev.state).toBe(S.RUNNING);
  });

  it("C7: a new data_fd while one is held is out of sync: the new fd is closed and the save fails (EBADF)", async () => {
    const s = simV2({ ...small, dirtyPerMiB: 64 });
    s.dev.inject({ at: "new data_fd", to: S.STOP_COPY });
    const e = await failure(saveV2(s.io, new ItemSink()));
    expect(e.code).toBe("PROTOCOL");
    expect(e.errno).toBe("EBADF");
    expect(e.message).toMatch(/out of sync/);
    expect(s.io.calls.filter((c) => c.op === "close").length).toBeGreaterThanOrEqual(2); // the new one and ours
    expect(s.dev.state).toBe(S.RUNNING);
    expectCleanV2(s.dev);
  });

  it("C8: GET never yields a channel: the drivers take fds from SET replies only", async () => {
    const s = simV2(small);
    const seen: unknown[] = [];
    const dev = Object.assign(Object.create(s.io) as MigrationDevice, {
      getState: async () => {
        const st = await s.io.getState();
        seen.push(st);
        return st;
      },
    });
    await saveV2(dev, new ItemSink());
    expect(seen.length).toBeGreaterThan(0);
    for (const v of seen) expect(typeof v).toBe("number"); // a state, nothing to read or close
  });

  it("C9: ENOMSG from a pre-copy read means nothing now: the save iterates on", async () => {
    // Over a transport without PRECOPY_INFO an iteration reads until the device has nothing now.
    const r = await roundTripV2(
      { ...small, enomsg: true, dirtyPerMiB: 64 },
      {},
      { bufferSize: 8 * KiB },
      {},
      { kernelInfo: false },
    );
    const failedReads = r.src.io.calls.filter((c) => c.op === "read data" && c.got === undefined);
    expect(failedReads.length).toBeGreaterThanOrEqual(1);
    expect(r.summary.iterations).toBeGreaterThanOrEqual(2);
  });

  it("C10: a pre-copy read of 0 is nothing now too, not the end of the save", async () => {
    const r = await roundTripV2({ ...small, dirtyPerMiB: 64 }, {}, { bufferSize: 8 * KiB }, {}, { kernelInfo: false });
    expect(r.summary.iterations).toBeGreaterThanOrEqual(2);
    const stopCopy = r.src.io.calls.findIndex((c) => c.op === "set state" && c.to === S.STOP_COPY);
    expect(r.src.io.calls.slice(0, stopCopy).some((c) => c.op === "read data" && c.got === 0)).toBe(true);
    expect(r.summary.stopcopy.bytes).toBeGreaterThan(0);
  });

  it("C11: a STOP_COPY read of 0 ends the stream: the fd is closed, then STOP", async () => {
    const r = await roundTripV2({ ...small, precopy: false });
    const ops = r.src.io.calls.map((c) =>
      c.op === "read data" ? `read ${c.got === 0 ? 0 : "n"}` : c.op === "set state" ? `set ${c.to}` : c.op,
    );
    const end = ops.lastIndexOf("read 0");
    expect(ops.slice(end)).toEqual(["read 0", "close", `set ${S.STOP}`]);
    expect(ops.filter((o) => o === "read 0").length).toBe(1);
  });

  it("C12: short STOP_COPY reads go on; only 0 ends the stream", async () => {
    const r = await roundTripV2({ ...small, precopy: false, shortReads: true });
    const reads = r.src.io.calls.filter((c) => c.op === "read data");
    expect(reads.some((c) => c.got! > 0 && c.got! < c.size!)).toBe(true);
    expect(reads.at(-1)!.got).toBe(0);
  });

  it("C13: PRECOPY_INFO in PRE_COPY gives initial + dirty; outside PRE_COPY it is EINVAL", async () => {
    const s = simV2({ ...small, dirtyPerMiB: 64 });
    const { dev, channels } = keepChannels(s.io);
    const { dev: watched, infos } = watchPrecopyInfo(dev);
    const summary = await saveV2(watched, new ItemSink());
    expect(summary.pendingReads).toBe(infos.length);
    expect(infos[0].initialBytes).toBeGreaterThan(0);
    expect(infos.at(-1)!.initialBytes + infos.at(-1)!.dirtyBytes).toBeLessThanOrEqual(infos[0].initialBytes);
    expect(channels.length).toBe(1);
    await expect(s.dev.precopyInfo()).rejects.toMatchObject({ errno: ERRNO.EINVAL });
  });

  it("C14: with PRECOPY_INFO, pre-copy is left only once initial_bytes reached 0", async () => {
    const s = simV2({ stateSize: 256 * KiB, seed: 2 });
    const { dev, infos } = watchPrecopyInfo(s.io);
    // A threshold above the whole state: without the rule pre-copy would end at once.
    const summary = await saveV2(dev, new ItemSink(), { policy: { pendingThreshold: 1 << 30 }, bufferSize: 16 * KiB });
    expect(summary.precopyEnd).toBe("converged");
    expect(summary.iterations).toBeGreaterThanOrEqual(1);
    expect(infos.at(-1)!.initialBytes).toBe(0);
    expect(summary.precopy.bytes).toBeGreaterThanOrEqual(256 * KiB);
  });

  it("C15: MIG_DATA_SIZE failing leaves the default 1 MiB buffer", async () => {
    const s = simV2({ stateSize: 2048 * KiB, seed: 1 });
    s.dev.inject({ at: "data size", errno: ERRNO.EIO });
    await saveV2(s.io, new ItemSink(), { precopy: false });
    const reads = s.io.calls.filter((c) => c.op === "read data");
    expect(Math.max(...reads.map((c) => c.size!))).toBe(1024 * KiB);
    const t = simV2({ stateSize: 48 * KiB, seed: 1 });
    await saveV2(t.io, new ItemSink(), { precopy: false });
    expect(Math.max(...t.io.calls.filter((c) => c.op === "read data").map((c) => c.size!))).toBeLessThan(64 * KiB); // min(1 MiB, estimate)
  });

  it("C16: STOP_COPY → PRE_COPY is never requested, not even when recovering", async () => {
    expect(pathTo(S.STOP_COPY, S.PRE_COPY, 5)).toBeUndefined();
    const runs: TraceDevice[] = [];
    for (const nth of [1, 2, 3]) {
      const s = simV2({ ...small, dirtyPerMiB: 64 });
      s.dev.inject({ at: "read data", nth: 20 + nth, errno: ERRNO.EIO });
      await saveV2(s.io, new ItemSink(), { bufferSize: 4 * KiB }).catch(() => {});
      runs.push(s.io);
    }
    runs.push((await roundTripV2({ ...small, dirtyPerMiB: 64 })).src.io);
    for (const t of runs) {
      const seq = sets(t);
      const first = seq.indexOf(S.STOP_COPY);
      if (first >= 0) expect(seq.slice(first)).not.toContain(S.PRE_COPY);
    }
  });

  it("C17: the destination gets the pre-copy bytes, then the stop-copy bytes, as one stream", async () => {
    const r = await roundTripV2({ ...small, dirtyPerMiB: 192 }, {}, { bufferSize: 8 * KiB });
    expect(r.summary.precopy.bytes).toBeGreaterThan(0);
    expect(r.dst.dev.receivedBytes).toBe(r.src.dev.sentBytes);
    expect(r.restored.bytes).toBe(r.summary.bytes);
    expect(r.src.dev.sessions).toBe(1);
  });
});

describe("v2 conformance: resuming", () => {
  async function saved(opts = small): Promise<{ src: MigrationSimDevice; items: ResumeItem[] }> {
    const s = simV2(opts);
    const sink = new ItemSink();
    await saveV2(s.io, sink, { bufferSize: 8 * KiB });
    return { src: s.dev, items: sink.verified() };
  }

  it("C18: a short write is continued with the rest; a write that takes 0 bytes is an error", async () => {
    const r = await roundTripV2(small, { shortWrites: true }, { bufferSize: 8 * KiB });
    const writes = r.dst.io.calls.filter((c) => c.op === "write data");
    expect(writes.length).toBeGreaterThan(r.restored.transactions);
    const { src, items } = await saved();
    const d = simV2(destinationOf(src));
    d.dev.inject({ at: "write data", nth: 2, short: 8 * KiB });
    const e = await failure(resumeV2(d.io, items));
    expect(e.errno).toBe("EIO");
    expect(e.message).toMatch(/took 0 of/);
    expect(d.dev.state).toBe(S.STOP);
  });

  it("C19: RESUMING → STOP failing means the data was rejected: the device is reset, never RUNNING", async () => {
    const { src, items } = await saved();
    const lastTxn = items.map((i) => i.kind).lastIndexOf("transaction");
    const cut = items.filter((_, i) => i !== lastTxn); // the END record is in the last one
    const d = simV2(destinationOf(src));
    const e = await failure(resumeV2(d.io, cut));
    expect(e.step).toBe("resume: enter STOP");
    expect(e.errno).toBe("EINVAL");
    expect(e.message).toMatch(/device reset/);
    expect(d.dev.state).toBe(S.STOP);
    expect(d.dev.resets).toBe(1);
    expect(d.dev.image.pristine).toBe(true); // none of the partial state
  });

  it("C20: a failed SET is followed by a GET: the device may sit on the path", async () => {
    const s = simV2(small);
    s.dev.inject({ at: "set state", from: S.STOP, to: S.STOP_COPY, errno: ERRNO.EBUSY });
    const e = await failure(saveV2(s.io, new ItemSink(), { precopy: false }));
    expect(e.errno).toBe("EBUSY");
    expect(e.message).toMatch(/RUNNING → STOP_COPY failed; device is in STOP/);
    const afterSet = s.io.calls.findIndex((c) => c.op === "set state");
    expect(s.io.calls[afterSet + 1].op).toBe("get state");
    expect(s.dev.state).toBe(S.RUNNING);
    expect(s.dev.resets).toBe(0);
  });

  it("C21: in ERROR every SET is EINVAL; a reset leaves RUNNING and kills the old fds", async () => {
    const s = simV2(small);
    const { dev, channels } = keepChannels(s.io);
    s.dev.inject({ at: "set state", from: S.PRE_COPY, to: S.STOP_COPY, then: "error" });
    const e = await failure(saveV2(dev, new ItemSink()));
    expect(e.message).toMatch(/device entered ERROR; device reset \(now RUNNING/);
    expect(s.dev.state).toBe(S.RUNNING);
    expect(s.dev.resets).toBe(1);
    expect(channels.length).toBe(1);
    const err = new MigrationSimDevice(small);
    const io = new InProcessMigration(err);
    const ch = (await io.setState(S.PRE_COPY))!;
    err.inject({ at: "set state", from: S.PRE_COPY, to: S.RUNNING, then: "error" });
    await failure(io.setState(S.RUNNING));
    expect(err.state).toBe(S.ERROR);
    for (const t of [S.STOP, S.RUNNING, S.RESUMING]) expect((await failure(io.setState(t))).errno).toBe("EINVAL");
    await io.reset();
    expect(await io.getState()).toBe(S.RUNNING);
    expect((await failure(ch.read(new Uint8Array(16)))).errno).toBe("ENODEV");
  });

  it("C22: reads and writes on an fd whose session ended fail with ENODEV", async () => {
    const io = new InProcessMigration(new MigrationSimDevice(small));
    const ch = (await io.setState(S.PRE_COPY))!;
    expect(await ch.read(new Uint8Array(64))).toBe(64);
    await io.setState(S.RUNNING);
    expect((await failure(ch.read(new Uint8Array(64)))).errno).toBe("ENODEV");
    const w = (await io.setState(S.RESUMING))!;
    await io.reset();
    expect((await failure(w.write(new Uint8Array(8)))).errno).toBe("ENODEV");
    await w.close();
  });

  it("C24: cancel during pre-copy: SET RUNNING ends the session and the fd is closed", async () => {
    const s = simV2({ ...small, dirtyPerMiB: 64 });
    const ac = new AbortController();
    const e = await failure(
      saveV2(s.io, new ItemSink(), {
        signal: ac.signal,
        bufferSize: 4 * KiB,
        onProgress: (p) => p.transactions >= 2 && ac.abort(),
      }),
    );
    expect(e.code).toBe("ABORTED");
    expect(s.dev.arcs).toEqual(["RUNNING>PRE_COPY", "PRE_COPY>RUNNING"]);
    const ops = s.io.calls.map((c) => c.op);
    expect(ops.indexOf("close")).toBeLessThan(ops.lastIndexOf("set state"));
    expect(s.dev.state).toBe(S.RUNNING);
    expect(e.message).toMatch(/device back in RUNNING/);
  });

  it("C25: cancel during stop-copy: SET RUNNING walks STOP_COPY → STOP → RUNNING", async () => {
    const s = simV2(small);
    const ac = new AbortController();
    const before = s.dev.digest();
    const e = await failure(
      saveV2(s.io, new ItemSink(), {
        precopy: false,
        signal: ac.signal,
        bufferSize: 4 * KiB,
        onProgress: (p) => p.phase === "stopcopy" && p.transactions >= 2 && ac.abort(),
      }),
    );
    expect(e.code).toBe("ABORTED");
    expect(s.dev.arcs.slice(-2)).toEqual(["STOP_COPY>STOP", "STOP>RUNNING"]);
    expect(s.dev.state).toBe(S.RUNNING);
    expect(s.dev.digest()).toBe(before);
    expectCleanV2(s.dev);
  });
});
