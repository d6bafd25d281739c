// The driver on a pipelined transport (RegionIO.pipelined, as vfio-user): the
// accesses of a fixed sequence are issued back to back, and a transport that
// carries them out one at a time in issue order (as a vfio-user server does)
// must see exactly the accesses, in exactly the order, of a one-at-a-time
// run; a failure is reported as the first failed step; recovery is unchanged.
import { describe, expect, it } from "vitest";
import type { SimDeviceOptions } from "../../src/device/index.js";
import { MigstreamError } from "../../src/errors.js";
import { ERRNO, type RegionIO } from "../../src/protocol/region-io.js";
import { resume } from "../../src/protocol/resume.js";
import { save } from "../../src/protocol/save.js";
import { InProcessRegion } from "../../src/transport/in-process.js";
import { SimDevice } from "../../src/device/index.js";
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

/** A simulated device behind a trace, reached one access at a time or pipelined. */
function device(options: SimDeviceOptions, pipelined: boolean, maxAccess?: number) {
  const dev = new SimDevice(options);
  const traced = new TraceRegion(new InProcessRegion(dev, { maxAccess }));
  const io = pipelined ? new OrderedRegion(traced) : traced;
  return { dev, io, trace: traced.accesses, ordered: io instanceof OrderedRegion ? io : null };
}

const points = (t: Access[]) => t.map((a) => `${a.point}@${a.offset}+${a.count}`);

const CASES: Record<string, { src: SimDeviceOptions; maxAccess?: number; precopy?: boolean }> = {
  reference: { src: { stateSize: 96 * KiB, txnSize: 16 * KiB, seed: 3 } },
  "dirtying during pre-copy": { src: { stateSize: 96 * KiB, txnSize: 16 * KiB, seed: 4, dirtyPerTxn: 3 } },
  "data split at a 4 KiB access limit": { src: { stateSize: 64 * KiB, txnSize: 16 * KiB, seed: 5 }, maxAccess: 4 * KiB },
  "ack needs data_size (mlx5 v1 style)": { src: { stateSize: 64 * KiB, txnSize: 8 * KiB, seed: 6, ack: "data_size" } },
  "ack on the pending read after data_offset": { src: { stateSize: 64 * KiB, txnSize: 8 * KiB, seed: 7, ack: "data_offset" } },
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
        const d = device(destinationFor(s.dev), pipelined, c.maxAccess);
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
  for (const f of resumeFaults) {
    it(`resume: ${f.at} fails with ENOSPC; the destination ends STOP without the partial state`, async () => {
      const s = device(SRC, true);
      const sink = new ItemSink();
      await save(s.io, sink);
      const d = device(destinationFor(s.dev), true);
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
