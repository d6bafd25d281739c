// The driver on a pipelined transport (RegionIO.pipelined, as vfio-user): the
// accesses of a fixed sequence are issued back to back, and a transport that
// carries them out one at a time in issue order (as a vfio-user server does)
// must see exactly the accesses, in exactly the order, of a one-at-a-time
// run; a failure is reported as the first failed step; recovery is unchanged.
// On such a transport the save hands a buffer to the sink while it reads the
// next one, and (when the transport copies writes at once) the resume decodes
// the next buffer while the device takes this one: both overlaps are checked
// here, with what the device sees unchanged.
import { describe, expect, it } from "vitest";
import type { SimDeviceOptions } from "../../src/device/index.js";
import { SimDevice } from "../../src/device/index.js";
import { MigstreamError } from "../../src/errors.js";
import { ERRNO, type RegionIO } from "../../src/protocol/region-io.js";
import { resume } from "../../src/protocol/resume.js";
import { save } from "../../src/protocol/save.js";
import type { ResumeItem, SaveSink } from "../../src/protocol/types.js";
import { InProcessRegion } from "../../src/transport/in-process.js";
import { type Access, destinationFor, expectClean, failure, ItemSink, KiB, low, TraceRegion } from "./helpers.js";

/**
 * A pipelined RegionIO over another: accesses are queued and carried out one
 * at a time in the order they were issued, like a vfio-user server handling
 * its socket's messages. Records how many were outstanding at once.
 */
class OrderedRegion implements RegionIO {
  readonly pipelined = true;
  #tail: Promise<unknown> = Promise.resolve();
  #outstanding = 0;
  maxOutstanding = 0;
  constructor(readonly inner: RegionIO) {}
  get size(): number {
    return this.inner.size;
  }
  get maxAccess(): number {
    return this.inner.maxAccess;
  }
  #queue<T>(op: () => Promise<T>): Promise<T> {
    this.#outstanding++;
    this.maxOutstanding = Math.max(this.maxOutstanding, this.#outstanding);
    const run = this.#tail.then(op, op);
    this.#tail = run.then(
      () => this.#outstanding--,
      () => this.#outstanding--,
    );
    return run;
  }
  read(offset: number, count: number, into?: Uint8Array): Promise<Uint8Array> {
    return this.#queue(() => this.inner.read(offset, count, into));
  }
  write(offset: number, data: Uint8Array): Promise<void> {
    // Like a socket send: the bytes are taken at once.
    const copy = data.slice();
    return this.#queue(() => this.inner.write(offset, copy));
  }
  reset(): Promise<void> {
    return this.#queue(() => this.inner.reset());
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** An OrderedRegion that says so (RegionIO.writeCopies): its write() copied the bytes before it returned. */
class CopyingRegion extends OrderedRegion {
  readonly writeCopies = true;
}

/** A simulated device behind a trace, reached one access at a time or pipelined (and copying writes). */
function device(options: SimDeviceOptions, pipelined: boolean, maxAccess?: number, copies = false) {
  const dev = new SimDevice(options);
  const traced = new TraceRegion(new InProcessRegion(dev, { maxAccess }));
  const io = pipelined ? (copies ? new CopyingRegion(traced) : new OrderedRegion(traced)) : traced;
  return { dev, io, trace: traced.accesses, ordered: io instanceof OrderedRegion ? io : null };
}

const points = (t: Access[]) => t.map((a) => `${a.point}@${a.offset}+${a.count}`);

const CASES: Record<string, { src: SimDeviceOptions; maxAccess?: number; precopy?: boolean }> = {
  reference: { src: { stateSize: 96 * KiB, txnSize: 16 * KiB, seed: 3 } },
  "dirtying during pre-copy": { src: { stateSize: 96 * KiB, txnSize: 16 * KiB, seed: 4, dirtyPerTxn: 3 } },
  "data split at a 4 KiB access limit": {
    src: { stateSize: 64 * KiB, txnSize: 16 * KiB, seed: 5 },
    maxAccess: 4 * KiB,
  },
  "ack needs data_size (mlx5 v1 style)": { src: { stateSize: 64 * KiB, txnSize: 8 * KiB, seed: 6, ack: "data_size" } },
  "ack on the pending read after data_offset": {
    src: { stateSize: 64 * KiB, txnSize: 8 * KiB, seed: 7, ack: "data_offset" },
  },
  "whole-buffer-only data access": { src: { stateSize: 64 * KiB, txnSize: 8 * KiB, seed: 8, wholeBufferOnly: true } },
  "suspend (no pre-copy)": { src: { stateSize: 64 * KiB, txnSize: 8 * KiB, seed: 9 }, precopy: false },
};

describe("pipelined transport: same accesses, same order, same result", () => {
  for (const [name, c] of Object.entries(CASES)) {
    it(name, async () => {
      const runs = [];
      for (const pipelined of [false, true]) {
        const s = device(c.src, pipelined, c.maxAccess);
        const sink = new ItemSink();
        await save(s.io, sink, { precopy: c.precopy, policy: { maxIterations: 3 } });
        const d = device(destinationFor(s.dev), pipelined, c.maxAccess, true);
        await resume(d.io, sink.verified());
        expect(d.dev.digest()).toBe(s.dev.digest());
        expect(d.dev.received).toEqual(s.dev.sent);
        expect(low(s.dev.state)).toBe(0);
        expect(low(d.dev.state)).toBe(1);
        expectClean(s.dev, d.dev);
        if (pipelined) {
          // Accesses really overlapped: data_offset + data_size, data + pending_bytes, data + data_size.
          expect(s.ordered!.maxOutstanding).toBeGreaterThanOrEqual(2);
          expect(d.ordered!.maxOutstanding).toBeGreaterThanOrEqual(2);
        }
        runs.push({ save: points(s.trace), resume: points(d.trace), transactions: sink.transactions.length });
      }
      expect(runs[1].transactions).toBe(runs[0].transactions);
      expect(runs[1].save).toEqual(runs[0].save);
      expect(runs[1].resume).toEqual(runs[0].resume);
    });
  }
});

describe("pipelined transport: a fault is reported as the first failed step", () => {
  const SRC = { stateSize: 48 * KiB, txnSize: 8 * KiB, seed: 12 };
  const saveFaults = [
    { at: "read data_offset", step: "save: read data_offset" },
    { at: "read data_size", step: "save: read data_size" },
    { at: "read data", step: "save: read data" },
    { at: "read pending_bytes", step: "save: read pending_bytes" },
  ] as const;
  for (const f of saveFaults) {
    it(`save: ${f.at} fails with EIO; the source ends RUNNING with its state`, async () => {
      const s = device(SRC, true);
      const before = s.dev.digest();
      s.dev.inject({ at: f.at, nth: 2, errno: ERRNO.EIO });
      const e = await failure(save(s.io, new ItemSink()));
      expect(e).toBeInstanceOf(MigstreamError);
      expect(e.step).toBe(f.step);
      expect(e.errno).toBe("EIO");
      expect(e.message).toMatch(/device back in RUNNING/);
      expect(low(s.dev.state)).toBe(1);
      expect(s.dev.digest()).toBe(before);
      // The only accesses after the failed one that the device may refuse are the one
      // issued right behind it (no other protocol breach).
      expect(s.dev.violations.length).toBeLessThanOrEqual(1);
      // It can be saved again.
      const sink = new ItemSink();
      await save(s.io, sink);
      const d = device(destinationFor(s.dev), true);
      await resume(d.io, sink.verified());
      expect(d.dev.digest()).toBe(s.dev.digest());
    });
  }

  const resumeFaults = [
    { at: "read data_offset", step: "resume: read data_offset" },
    { at: "write data", step: "resume: write data" },
    { at: "write data_size", step: "resume: write data_size" },
  ] as const;
  for (const [f, copies] of resumeFaults.flatMap(
    (f) =>
      [
        [f, false],
        [f, true],
      ] as const,
  )) {
    it(`resume${copies ? " (transport copies writes)" : ""}: ${f.at} fails with ENOSPC; the destination ends STOP without the partial state`, async () => {
      const s = device(SRC, true);
      const sink = new ItemSink();
      await save(s.io, sink);
      const d = device(destinationFor(s.dev), true, undefined, copies);
      d.dev.inject({ at: f.at, nth: 2, errno: ERRNO.ENOSPC });
      const e = await failure(resume(d.io, sink.verified()));
      expect(e.step).toBe(f.step);
      expect(e.errno).toBe("ENOSPC");
      expect(low(d.dev.state)).toBe(0);
      expect(d.dev.image.pristine).toBe(true);
      expect(d.dev.violations.length).toBeLessThanOrEqual(1);
      await resume(d.io, sink.verified());
      expect(d.dev.digest()).toBe(s.dev.digest());
    });
  }
});

/** Events of the driver, the sink and the item source, in the order they happened. */
type Log = string[];

/** A sink that records when each transaction starts and ends, and takes `ms` (a timer) over each. */
class SlowSink extends ItemSink implements SaveSink {
  constructor(
    readonly log: Log,
    readonly ms: number,
    readonly failAt = -1,
  ) {
    super();
  }
  override async transaction(data: Uint8Array): Promise<void> {
    const n = this.transactions.length;
    this.log.push(`sink start ${n}`);
    super.transaction(data);
    await new Promise((r) => setTimeout(r, this.ms));
    this.log.push(`sink end ${n}`);
    if (n === this.failAt) throw new MigstreamError("IO", `sink full at transaction ${n}`);
  }
}

/** Logs every data_offset read as it is issued, then passes it on (pipelined as the region it wraps). */
function logOffsets(io: RegionIO, log: Log): RegionIO {
  return {
    get size() {
      return io.size;
    },
    get maxAccess() {
      return io.maxAccess;
    },
    pipelined: io.pipelined,
    read(offset: number, count: number, into?: Uint8Array) {
      if (offset === 16) log.push("data_offset");
      return io.read(offset, count, into);
    },
    write: (offset: number, data: Uint8Array) => io.write(offset, data),
    reset: () => io.reset(),
    close: () => io.close(),
  };
}

describe("pipelined transport: the sink takes a buffer while the next one is read", () => {
  const SRC = { stateSize: 64 * KiB, txnSize: 8 * KiB, seed: 21 };

  it("save: the next buffer's data_offset goes out while the sink still has the last buffer; the stream is unchanged", async () => {
    const plain = device(SRC, false);
    const reference = new ItemSink();
    await save(plain.io, reference, { precopy: false });
    const log: Log = [];
    const s = device(SRC, true);
    const sink = new SlowSink(log, 2);
    await save(logOffsets(s.io, log), sink, { precopy: false });
    // The first buffer was still in the sink when the second one's data_offset was read.
    const during = log.slice(log.indexOf("sink start 0"), log.indexOf("sink end 0"));
    expect(during).toContain("data_offset");
    // Each buffer reached the sink after the one before it left it, in order.
    const sinkEvents = log.filter((e) => e.startsWith("sink"));
    for (let i = 0; i < sinkEvents.length; i += 2)
      expect(sinkEvents.slice(i, i + 2)).toEqual([`sink start ${i / 2}`, `sink end ${i / 2}`]);
    expect(sink.transactions).toEqual(reference.transactions);
    expect(points(s.trace)).toEqual(points(plain.trace));
    expectClean(s.dev);
  });

  it("save with a caller's buffer factory (it may hand out the same buffer again): no overlap", async () => {
    const log: Log = [];
    const s = device(SRC, true);
    const mine = new Uint8Array(8 * KiB);
    const sink = new SlowSink(log, 1);
    await save(logOffsets(s.io, log), sink, { precopy: false, buffer: () => mine });
    const during = log.slice(log.indexOf("sink start 0"), log.indexOf("sink end 0"));
    expect(during).not.toContain("data_offset");
    const d = device(destinationFor(s.dev), true);
    await resume(d.io, sink.verified());
    expect(d.dev.digest()).toBe(s.dev.digest());
  });

  it("save: a sink that fails on a buffer fails the save with its error (not the device's), the source back in RUNNING with its state", async () => {
    const s = device(SRC, true);
    const before = s.dev.digest();
    const e = await failure(save(s.io, new SlowSink([], 2, 3), { precopy: false }));
    expect(e.code).toBe("IO");
    expect(e.step).toBe("save: sink transaction");
    expect(e.message).toMatch(/sink full at transaction 3/);
    expect(e.message).toMatch(/device back in RUNNING/);
    expect(low(s.dev.state)).toBe(1);
    expect(s.dev.digest()).toBe(before);
    expectClean(s.dev);
    // At most the one buffer after the failed one was read from the device.
    expect(s.dev.sent.length).toBeLessThanOrEqual(5);
  });

  it("resume: the next buffer is decoded (asked for) before the device answered the last data_size write", async () => {
    const s = device(SRC, false);
    const sink = new ItemSink();
    await save(s.io, sink, { precopy: false });
    for (const copies of [false, true]) {
      const log: Log = [];
      const d = device(destinationFor(s.dev), true, undefined, copies);
      const write = d.io.write.bind(d.io);
      d.io.write = (offset: number, data: Uint8Array) => {
        const p = write(offset, data);
        if (offset === 24) void p.then(() => log.push("data_size done"));
        return p;
      };
      async function* items(): AsyncGenerator<ResumeItem> {
        for (const item of sink.verified()) {
          log.push(`next ${item.kind}`);
          yield item;
        }
      }
      await resume(d.io, items());
      expect(d.dev.digest()).toBe(s.dev.digest());
      expectClean(d.dev);
      const first = log.indexOf("data_size done");
      const asked = log.slice(0, first).filter((e) => e === "next transaction").length;
      // Copying transport: the second buffer was asked for while the first one's data_size was in flight.
      expect(asked).toBe(copies ? 2 : 1);
    }
  });
});
