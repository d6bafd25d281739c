// The `auto` decision rule (codec/auto/decide.ts) on fixed probe results: which probe
// it asks for, and which codec it picks for a sink rate, thread count and
// machine speed. Pure arithmetic: no timing involved.
import { describe, expect, it } from "vitest";
import {
  AUTO_BASE_NS,
  AUTO_DEFAULT_SINK_RATE,
  AUTO_LZ4_NS,
  AUTO_PIPELINE_NS,
  type AutoContext,
  type AutoDecision,
  type AutoProbe,
  autoDecide,
} from "../../../src/codec/auto/decide.js";

const N = 256 << 10;
const PAGE = 4096;
const limits = { maxLevel: 3 };

/** Probe results for a chunk of `live` non-zero bytes whose sampled pages behave as given (shares of the sample). */
function probe(live: number, o: { lz4: number; zstd?: number; flat?: number }): AutoProbe {
  const sampled = 2 * PAGE;
  const flat = (o.flat ?? 0) * sampled;
  const comp = sampled - flat;
  return {
    n: N,
    live,
    sampled,
    flat,
    lz4: flat + o.lz4 * comp,
    zstd: o.zstd === undefined ? undefined : flat + o.zstd * comp,
  };
}
const HEAP = { lz4: 0.45, zstd: 0.29 };
const CODE = { lz4: 0.57, zstd: 0.46 };
const RANDOM = { lz4: 1, flat: 1 };

/** Runs autoDecide to a codec, answering probes from `p` (and counting them). */
function decide(p: AutoProbe, ctx: AutoContext, lim = limits): { d: AutoDecision; probes: string[] } {
  const probes: string[] = [];
  const asked: AutoProbe = { n: p.n, live: p.live };
  for (;;) {
    const d = autoDecide(asked, lim, ctx);
    if (!("probe" in d)) return { d, probes };
    probes.push(d.probe);
    if (d.probe === "lz4") Object.assign(asked, { sampled: p.sampled, flat: p.flat, lz4: p.lz4 });
    else asked.zstd = p.zstd;
    expect(probes.length).toBeLessThanOrEqual(2);
  }
}

describe("autoDecide", () => {
  it("an all-zero chunk is ZERO, without probes", () => {
    expect(decide(probe(0, HEAP), {})).toEqual({ d: { codec: "zero" }, probes: [] });
  });

  it("an unlimited sink gets RAW without any probe (nothing beats not coding)", () => {
    for (const threads of [1, 2, 64]) {
      expect(decide(probe(N, HEAP), { sinkRate: Infinity, threads })).toEqual({ d: { codec: "raw" }, probes: [] });
    }
    // A sink far faster than any codec: the same.
    expect(decide(probe(N, HEAP), { sinkRate: 50e9, threads: 2 }).probes).toEqual([]);
  });

  it("a slow sink gets zstd for compressible pages, at the highest level allowed when the sink is the bottleneck", () => {
    expect(decide(probe(N, HEAP), { sinkRate: 10e6, threads: 2 })).toEqual({
      d: { codec: "zstd", level: 3 },
      probes: ["lz4", "zstd"],
    });
    expect(decide(probe(N, CODE), { sinkRate: 10e6, threads: 2 }, { maxLevel: 1 }).d).toEqual({
      codec: "zstd",
      level: 1,
    });
    // zstd unavailable (or the chunk too large for it): LZ4.
    expect(decide(probe(N, HEAP), { sinkRate: 10e6, threads: 2 }, { maxLevel: 0 })).toEqual({
      d: { codec: "lz4" },
      probes: ["lz4"],
    });
  });

  it("incompressible pages go RAW whatever the sink, without a zstd probe", () => {
    for (const sinkRate of [10e6, 125e6, 1e9]) {
      const { d, probes } = decide(probe(N, RANDOM), { sinkRate, threads: 2 });
      expect(d).toEqual({ codec: "raw" });
      expect(probes).toEqual(["lz4"]);
    }
  });

  it("a 1 GB/s sink with two threads: RAW for a mixed chunk (LZ4 would not beat it by the margin), LZ4 for a mostly-zero one", () => {
    const mixed = probe(0.6 * N, { lz4: 0.5, flat: 0.25 });
    expect(decide(mixed, { sinkRate: 1e9, threads: 2 })).toEqual({ d: { codec: "raw" }, probes: ["lz4"] });
    expect(decide(mixed, { sinkRate: 300e6, threads: 2 })).toEqual({ d: { codec: "lz4" }, probes: ["lz4"] });
    expect(decide(probe(0.1 * N, { lz4: 0.5 }), { sinkRate: 1e9, threads: 2 }).d).toEqual({ codec: "lz4" });
    // Once the CPU is 3× slower, the mostly-zero chunk goes RAW too.
    expect(decide(probe(0.1 * N, { lz4: 0.5 }), { sinkRate: 1e9, threads: 2, speed: 1 / 3 }).d).toEqual({
      codec: "raw",
    });
    // More threads make the same chunk worth more coding: zstd at a slower sink.
    expect(decide(probe(N, HEAP), { sinkRate: 125e6, threads: 1 }).d).toEqual({ codec: "lz4" });
    expect(decide(probe(N, HEAP), { sinkRate: 125e6, threads: 8 }).d).toMatchObject({ codec: "zstd" });
  });

  it("counts every thread in full, and the pipeline's own cost per byte (heap pages, 100 MB/s link)", () => {
    // ns/B — one thread: LZ4 max(1.25 + 2.4, 4.5) beats zstd-1 max(1.25 + 4.3, 2.9).
    expect(decide(probe(N, HEAP), { sinkRate: 100e6, threads: 1 }).d).toEqual({ codec: "lz4" });
    // Two: zstd-1 max(2.78, 2.9) beats zstd-3 max(3.2, 2.55); three: zstd-3 max(2.14, 2.55).
    expect(decide(probe(N, HEAP), { sinkRate: 100e6, threads: 2 }).d).toEqual({ codec: "zstd", level: 1 });
    expect(decide(probe(N, HEAP), { sinkRate: 100e6, threads: 3 }).d).toEqual({ codec: "zstd", level: 3 });
    // 1 GB/s, two threads: LZ4 (1.83 ns/B) is slower than sending raw (1 ns/B).
    expect(decide(probe(N, HEAP), { sinkRate: 1e9, threads: 2 }).d).toEqual({ codec: "raw" });
  });

  it("follows the model: the chosen codec has the least estimated time", () => {
    // At the default rate on one thread, LZ4's estimate for heap pages is wire-bound and beats raw's by far.
    const perNs = AUTO_DEFAULT_SINK_RATE / 1e9;
    const tRaw = N / perNs;
    const tLz4 = Math.max((AUTO_BASE_NS + AUTO_PIPELINE_NS) * N + AUTO_LZ4_NS * N, (0.45 * N) / perNs);
    expect(tLz4).toBeLessThan(tRaw);
    expect(decide(probe(N, HEAP), {}).d).toEqual({ codec: "lz4" });
  });

  it("is deterministic and monotone in the sink rate: slower sinks never get cheaper codecs", () => {
    const rank = (d: AutoDecision) =>
      "codec" in d ? { zero: 0, raw: 1, lz4: 2, zstd: 3 }[d.codec] * 100 + ("level" in d ? d.level : 0) : -1;
    for (const p of [probe(N, HEAP), probe(N, CODE), probe(0.5 * N, { lz4: 0.6, zstd: 0.4, flat: 0.5 })]) {
      let last = -1;
      for (const rate of [50e9, 5e9, 2e9, 1e9, 500e6, 250e6, 125e6, 60e6, 30e6, 10e6]) {
        const r = rank(decide(p, { sinkRate: rate, threads: 2 }).d);
        expect(r).toBeGreaterThanOrEqual(last);
        expect(rank(decide(p, { sinkRate: rate, threads: 2 }).d)).toBe(r);
        last = r;
      }
      expect(last).toBeGreaterThanOrEqual(300); // zstd at 10 MB/s
    }
  });
});
