// The save path beyond the conformance cases: cancel, sink failures, the
// suspend path, the pre-copy policy, progress events and option checks.
import { describe, expect, it } from "vitest";
import { MigstreamError } from "../../src/errors.js";
import type { Progress } from "../../src/protocol/progress.js";
import { resume } from "../../src/protocol/resume.js";
import { save } from "../../src/protocol/save.js";
import type { Phase, SaveSink } from "../../src/protocol/types.js";
import { destinationFor, expectClean, failure, ItemSink, KiB, low, roundTrip, sim } from "./helpers.js";
import { setState } from "./raw.js";

const small = { stateSize: 32 * KiB, txnSize: 8 * KiB, seed: 9 };
const transitions = (dev: { stateWrites: Array<{ from: number; value: number }> }) =>
  dev.stateWrites.map((w) => `${low(w.from)}>${low(w.value)}`);

describe("cancel", () => {
  it("an already aborted signal fails before any device access", async () => {
    const s = sim(small);
    const ac = new AbortController();
    ac.abort(new Error("operator"));
    const e = await failure(save(s.io, new ItemSink(), { signal: ac.signal }));
    expect(e.code).toBe("ABORTED");
    expect(s.trace).toEqual([]);
    expectClean(s.dev);
  });

  it("abort in stop-and-copy: 2 → 1, the state kept", async () => {
    const s = sim(small);
    const before = s.dev.digest();
    const ac = new AbortController();
    const sink = new ItemSink();
    let phase = "";
    const aborting: SaveSink = {
      phase: (p, i) => {
        phase = p;
        sink.phase(p, i);
      },
      transaction: (d) => {
        if (phase === "stopcopy") ac.abort(); // the first stop-and-copy buffer
        sink.transaction(d);
      },
    };
    const e = await failure(save(s.io, aborting, { signal: ac.signal }));
    expect(e.code).toBe("ABORTED");
    expect(e.step).toMatch(/^save: /);
    expect(transitions(s.dev)).toEqual(["1>3", "3>2", "2>1"]);
    expect(s.dev.digest()).toBe(before);
    expectClean(s.dev);
  });

  it("abort while the vendor blocks in data_offset is honoured at the next step", async () => {
    const s = sim({ ...small, dataOffsetDelayMs: 40 });
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 10);
    const e = await failure(save(s.io, new ItemSink(), { signal: ac.signal }));
    clearTimeout(timer);
    expect(e.code).toBe("ABORTED");
    expect(e.step).toBe("save: read data_size");
    expect(low(s.dev.state)).toBe(1);
    expectClean(s.dev);
  });
});

describe("sink failures", () => {
  it("a sink that rejects a pre-copy transaction: 3 → 1, IO error naming the step", async () => {
    const s = sim(small);
    const before = s.dev.digest();
    const sink: SaveSink = {
      phase: () => undefined,
      transaction: async () => {
        throw new Error("EPIPE: peer went away");
      },
    };
    const e = await failure(save(s.io, sink));
    expect(e.code).toBe("IO");
    expect(e.step).toBe("save: sink transaction");
    expect(e.message).toMatch(/EPIPE: peer went away.*device back in RUNNING/);
    expect(transitions(s.dev)).toEqual(["1>3", "3>1"]);
    expect(s.dev.digest()).toBe(before);
    expectClean(s.dev);
  });

  it("keeps the code of a MigstreamError the sink throws", async () => {
    const s = sim(small);
    const sink: SaveSink = {
      phase: (p: Phase) => {
        if (p === "precopy") throw new MigstreamError("LIMIT", "stream size limit reached");
      },
      transaction: () => undefined,
    };
    const e = await failure(save(s.io, sink));
    expect(e.code).toBe("LIMIT");
    expect(e.step).toBe("save: sink phase");
    expect(low(s.dev.state)).toBe(1);
    expectClean(s.dev);
  });

  it("an onProgress listener that throws fails the save and the source runs on", async () => {
    const s = sim(small);
    const e = await failure(
      save(s.io, new ItemSink(), {
        onProgress: (p) => {
          if (p.transactions === 1) throw new Error("listener bug");
        },
      }),
    );
    expect(e.code).toBe("USAGE");
    expect(low(s.dev.state)).toBe(1);
    expectClean(s.dev);
  });
});

describe("suspend path", () => {
  it("RUNNING → stop-and-copy → STOP, no pre-copy phase", async () => {
    const r = await roundTrip(small, {}, { precopy: false });
    expect(transitions(r.src)).toEqual(["1>2", "2>0"]);
    expect(r.sink.phases).toEqual(["setup", "stopcopy", "end"]);
    expect(r.summary.precopyEnd).toBe("none");
    expect(r.summary.iterations).toBe(0);
    expect(r.summary.stopcopy.bytes).toBe(r.summary.bytes);
  });

  it("refuses to start from a state other than RUNNING, touching nothing", async () => {
    const s = sim(small);
    await setState(s.dev, 0);
    const e = await failure(save(s.io, new ItemSink()));
    expect(e.code).toBe("USAGE");
    expect(e.message).toMatch(/device_state is STOP/);
    expect(s.trace.map((a) => a.point)).toEqual(["read device_state"]);
    expect(low(s.dev.state)).toBe(0);
  });
});

describe("pre-copy policy", () => {
  const dirty = { ...small, dirtyPerTxn: 4 }; // never converges on its own

  it("maxIterations caps the passes", async () => {
    const r = await roundTrip(dirty, {}, { policy: { maxIterations: 3 } });
    expect(r.summary.iterations).toBe(3);
    expect(r.summary.precopyEnd).toBe("iterations");
    expect(r.sink.phases).toEqual(["setup", "precopy0", "precopy1", "precopy2", "stopcopy", "end"]);
  });

  it("maxIterations 0 enters pre-copy and goes straight to stop-and-copy", async () => {
    const r = await roundTrip(dirty, {}, { policy: { maxIterations: 0 } });
    expect(transitions(r.src)).toEqual(["1>3", "3>2", "2>0"]);
    expect(r.summary.precopy.transactions).toBe(0);
    expect(r.summary.precopyEnd).toBe("iterations");
  });

  it("pendingThreshold ends pre-copy once pending_bytes is at or below it", async () => {
    const r = await roundTrip(small, {}, { policy: { pendingThreshold: small.stateSize } });
    expect(r.summary.precopyEnd).toBe("converged");
    expect(r.summary.precopy.transactions).toBe(0);
    const r2 = await roundTrip(
      { ...small, dirtyPerTxn: 1 },
      {},
      { policy: { pendingThreshold: 12 * KiB, maxIterations: 50 } },
    );
    expect(r2.summary.precopyEnd).toBe("converged");
    expect(r2.summary.precopy.transactions).toBeGreaterThan(0);
  });

  it("the time budget ends pre-copy at a transaction boundary", async () => {
    const t0 = performance.now();
    const r = await roundTrip(
      { ...dirty, dataOffsetDelayMs: 15 },
      {},
      { policy: { timeBudgetMs: 40, maxIterations: 1000 } },
    );
    expect(r.summary.precopyEnd).toBe("time");
    expect(r.summary.precopy.transactions).toBeGreaterThanOrEqual(2);
    expect(r.summary.precopy.transactions).toBeLessThanOrEqual(4);
    expect(r.summary.times.precopy).toBeGreaterThanOrEqual(40);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it("the VMM's stop signal (a flag or a promise) ends pre-copy", async () => {
    const flag = { aborted: false };
    const r = await roundTrip(
      dirty,
      {},
      {
        stopCopy: flag,
        policy: { maxIterations: 1000 },
        onProgress: (p) => {
          if (p.transactions === 5) flag.aborted = true;
        },
      },
    );
    expect(r.summary.precopyEnd).toBe("stop-signal");
    expect(r.summary.precopy.transactions).toBe(5);

    let vmStopped!: () => void;
    const stopped = new Promise<void>((res) => (vmStopped = res));
    const s = sim({ ...dirty, dataOffsetDelayMs: 5 });
    const d = sim(destinationFor(s.dev));
    const sink = new ItemSink();
    setTimeout(() => vmStopped(), 20);
    const summary = await save(s.io, sink, { stopCopy: stopped, policy: { maxIterations: 1000 } });
    expect(summary.precopyEnd).toBe("stop-signal");
    await resume(d.io, sink.verified());
    expect(d.dev.digest()).toBe(s.dev.digest());
    expectClean(s.dev, d.dev);
  });

  it("rejects a bad policy before touching the device", async () => {
    for (const policy of [{ maxIterations: -1 }, { pendingThreshold: Number.NaN }, { timeBudgetMs: -5 }]) {
      const s = sim(small);
      const e = await failure(save(s.io, new ItemSink(), { policy }));
      expect(e.code).toBe("USAGE");
      expect(s.trace).toEqual([]);
    }
  });
});

describe("progress and buffers", () => {
  it("reports every phase and transaction with growing byte counts", async () => {
    const events: Progress[] = [];
    const r = await roundTrip(
      { ...small, dirtyPerTxn: 2 },
      {},
      { policy: { maxIterations: 2 }, onProgress: (p) => events.push({ ...p }) },
    );
    expect(events.every((e) => e.direction === "save")).toBe(true);
    expect(events.map((e) => e.phase).filter((p, i, a) => p !== a[i - 1])).toEqual([
      "setup",
      "precopy",
      "stopcopy",
      "end",
    ]);
    for (let i = 1; i < events.length; i++) expect(events[i].bytes).toBeGreaterThanOrEqual(events[i - 1].bytes);
    const last = events.at(-1)!;
    expect(last.transactions).toBe(r.summary.transactions);
    expect(last.bytes).toBe(r.summary.bytes);
    expect(last.pending).toBe(0);
    expect(r.summary.pendingReads).toBe(r.summary.transactions + 2); // one per ack + one per phase start
  });

  it("reads into a caller's buffer factory, and refuses one that is too small", async () => {
    const pool = new Uint8Array(64 * KiB);
    let calls = 0;
    const r = await roundTrip(
      small,
      {},
      {
        buffer: (n) => {
          calls++;
          return pool.subarray(0, n);
        },
      },
    );
    expect(calls).toBe(r.summary.transactions);
    const s = sim(small);
    const e = await failure(save(s.io, new ItemSink(), { buffer: () => new Uint8Array(16) }));
    expect(e.code).toBe("USAGE");
    expect(low(s.dev.state)).toBe(1);
    expectClean(s.dev);
  });

  it("zero copy: reads each buffer into one the sink lends (sink.buffer), and hands that very buffer over", async () => {
    const lent = new Set<ArrayBufferLike>();
    const got: Uint8Array[] = [];
    let sizes = 0;
    const inner = new ItemSink();
    const lending: SaveSink = {
      phase: (p, i) => inner.phase(p, i),
      transaction: (d) => {
        got.push(d);
        inner.transaction(d);
        sizes += d.length;
        structuredClone(d.buffer, { transfer: [d.buffer as ArrayBuffer] }); // taken over: detached, as when moved to a worker
      },
      buffer: (n) => {
        const b = new Uint8Array(n);
        lent.add(b.buffer);
        return b;
      },
    };
    const s = sim(small);
    const before = s.dev.digest();
    const summary = await save(s.io, lending);
    expect(got.length).toBeGreaterThan(2);
    expect(summary.bytes).toBe(sizes); // counted before the sink took the buffer
    expect(summary.transactions).toBe(got.length);
    expect(lent.size).toBe(got.length); // one fresh buffer per transaction, none reused
    for (const d of got) expect(lent.has(d.buffer)).toBe(true);
    // The bytes are the device's: restoring them gives the same digest.
    const dst = sim(destinationFor(s.dev));
    await resume(dst.io, inner.verified());
    expect(dst.dev.digest()).toBe(before);
    // A `buffer` option wins over the sink's.
    let option = 0;
    lent.clear();
    await save(sim(small).io, lending, { buffer: (n) => (option++, new Uint8Array(n)) });
    expect(option).toBeGreaterThan(0);
    expect(lent.size).toBe(0);
  });
});
