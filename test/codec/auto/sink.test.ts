// SinkMeter (how fast the encoder's output drains, as auto sees it) on a fake
// clock, also through the throttled link that simulates slow sinks; and
// AutoSink, the model an encoder holds (a fixed rate, or measured).
import { describe, expect, it } from "vitest";
import { AUTO_DEFAULT_SINK_RATE } from "../../../src/codec/auto/decide.js";
import {
  AUTO_UNSETTLED_IN_FLIGHT,
  AutoSink,
  SINK_RATE_GROWTH,
  SINK_WINDOW_BYTES,
  SINK_WINDOW_MAX_WRITES,
  SINK_WINDOW_MS,
  SinkMeter,
} from "../../../src/codec/auto/sink.js";
import { throttle } from "../../../src/migrate/throttle.js";
import { prng } from "../../format/helpers.js";
import { fakeClock as clock } from "../../migrate/clock.js";

const MIB = 1 << 20;

/** Records `n` writes of `bytes`, each after `produce` ms of the writer's own work and blocking `blocked` ms. */
function writes(
  m: SinkMeter,
  c: ReturnType<typeof clock>,
  n: number,
  bytes: number,
  produce: number,
  blocked: number,
): void {
  for (let i = 0; i < n; i++) {
    c.advance(produce);
    const start = c.now();
    c.advance(blocked);
    m.record(bytes, start, c.now());
  }
}

const within = (got: number, want: number, share: number) => expect(Math.abs(got / want - 1)).toBeLessThan(share);

describe("SinkMeter", () => {
  it("reports the initial rate until the sink has held the writer back", () => {
    const c = clock();
    expect(new SinkMeter({ now: c.now }).rate).toBe(Infinity);
    const m = new SinkMeter({ now: c.now, initialRate: 5e6 });
    expect(m.rate).toBe(5e6);
    writes(m, c, 6, MIB, 2, 0); // never blocked, less than a window
    expect(m.rate).toBe(5e6);
    expect(m.bytesWritten).toBe(6 * MIB);
    // Blocked from here on (the sink takes 1 MiB per 10 ms): the writes before went into its queue, not through it.
    writes(m, c, 1, MIB, 1, 9);
    expect(m.rate).toBe(5e6);
    // The first estimate needs only a quarter of a window after that first blocked write.
    writes(m, c, SINK_WINDOW_BYTES / 4 / MIB, MIB, 1, 9);
    within(m.rate, (MIB * 1000) / 10, 0.01);
    expect(() => new SinkMeter({ initialRate: 0 })).toThrow(expect.objectContaining({ code: "USAGE" }));
    // A bad record is refused, and leaves the meter as it was.
    for (const [b, s, e] of [
      [Number.NaN, 0, 1],
      [-1, 0, 1],
      [MIB, Number.NaN, 1],
      [MIB, 0, Infinity],
    ]) {
      expect(() => m.record(b, s, e)).toThrow(expect.objectContaining({ code: "USAGE", field: "record" }));
    }
    writes(m, c, SINK_WINDOW_BYTES / 4 / MIB, MIB, 1, 9);
    within(m.rate, (MIB * 1000) / 10, 0.01);
  });

  it("an initial guess gives way to unlimited once a whole window went by without the writer held back", () => {
    const c = clock();
    const m = new SinkMeter({ now: c.now, initialRate: 5e6 });
    writes(m, c, SINK_WINDOW_BYTES / MIB - 1, MIB, 5, 0);
    expect(m.rate).toBe(5e6);
    writes(m, c, 1, MIB, 5, 0);
    expect(m.rate).toBe(Infinity);
    // Held back later on: measured.
    writes(m, c, 16, MIB, 0, 10);
    within(m.rate, MIB * 100, 0.01);
  });

  it("measures a sink that holds the writer back: bytes over the window's time", () => {
    const c = clock();
    const m = new SinkMeter({ now: c.now });
    writes(m, c, 12, MIB, 1, 9);
    within(m.rate, (MIB * 1000) / 10, 0.03); // 1 MiB per 10 ms
    // The sink slows down: after a window of the new pace, the estimate is that pace.
    writes(m, c, 12, MIB, 1, 19);
    within(m.rate, (MIB * 1000) / 20, 0.03);
  });

  it("later estimates cover at least SINK_WINDOW_MS, so a fast sink's estimate spans many writes", () => {
    const c = clock();
    const m = new SinkMeter({ now: c.now });
    const ms = (MIB * 1000) / 1e9; // 1 MiB at 1 GB/s
    writes(m, c, 8, MIB, 0.1 * ms, 0.9 * ms);
    within(m.rate, 1e9, 0.01);
    // The sink halves its rate: 8 MiB take 16.8 ms, less than a window's least time, so older writes still count.
    writes(m, c, 8, MIB, 0.2 * ms, 1.8 * ms);
    expect(m.rate).toBeGreaterThan(0.55e9);
    writes(m, c, Math.ceil(SINK_WINDOW_MS / (2 * ms)) + 2, MIB, 0.2 * ms, 1.8 * ms);
    within(m.rate, 0.5e9, 0.01);
  });

  it("keeps at most SINK_WINDOW_MAX_WRITES writes, even ones that take no time", () => {
    const c = clock();
    const m = new SinkMeter({ now: c.now });
    writes(m, c, 3 * SINK_WINDOW_MAX_WRITES, 1, 0, 0);
    expect(
      (m as unknown as { writes: unknown[]; head: number }).writes.length - (m as unknown as { head: number }).head,
    ).toBe(SINK_WINDOW_MAX_WRITES);
    expect(m.rate).toBe(Infinity);
  });

  it("times writes through wrap(), sync or async", async () => {
    const c = clock();
    const m = new SinkMeter({ now: c.now });
    const slow = m.wrap(async () => c.advance(20));
    for (let i = 0; i < 2 * (SINK_WINDOW_BYTES / (MIB / 2)); i++) await slow(new Uint8Array(MIB / 2));
    within(m.rate, (MIB / 2) * 50, 0.01); // 0.5 MiB per 20 ms
    const fast = new SinkMeter({ now: c.now });
    const sync = fast.wrap(() => {});
    for (let i = 0; i < 40; i++) await sync(new Uint8Array(MIB));
    expect(fast.rate).toBe(Infinity);
  });

  it("a link whose waits oversleep by up to 1 ms is still measured within 10% (1 GB/s, 0.77 MB writes)", async () => {
    const c = clock();
    const rnd = prng(7);
    const link = throttle(1e9, undefined, { now: c.now, sleep: async (ms) => c.advance(ms + rnd()), buffer: 4 * MIB });
    const m = new SinkMeter({ now: c.now });
    const write = m.wrap(link);
    const sizes: number[] = [];
    for (let i = 0; i < 400; i++) {
      c.advance(0.2 * rnd()); // the writer's own work: faster than the link
      await write(new Uint8Array(786_596));
      if (i >= 100) sizes.push(m.rate);
    }
    for (const r of sizes) within(r, 1e9, 0.1);
  });

  it("once the sink stops holding the writer back, the estimate grows per window; in balance it stays", () => {
    const c = clock();
    const m = new SinkMeter({ now: c.now });
    writes(m, c, 16, MIB, 0, 10);
    const bound = m.rate;
    within(bound, MIB * 100, 0.01);
    // Held back now and then (a pipeline in balance): the estimate stays.
    for (let i = 0; i < 8; i++) {
      writes(m, c, 3, MIB, 10, 0);
      writes(m, c, 1, MIB, 2.5, 7.5);
    }
    expect(m.rate).toBe(bound);
    // The writer slows down (compressing harder): writes no longer block.
    writes(m, c, 3 * (SINK_WINDOW_BYTES / MIB), MIB, 40, 0);
    expect(m.rate).toBeGreaterThan(bound * SINK_RATE_GROWTH ** 2);
    expect(m.rate).toBeLessThanOrEqual(bound * SINK_RATE_GROWTH ** 3);
    // Held back again: measured afresh.
    writes(m, c, 16, MIB, 0, 10);
    within(m.rate, MIB * 100, 0.01);
  });
});

describe("AutoSink", () => {
  it("a fixed rate is what auto sees, on any number of threads; in flight stays at the most asked", () => {
    const s = new AutoSink(20e6);
    expect(s.context(3)).toEqual({ sinkRate: 20e6, threads: 3 });
    expect(new AutoSink().rate).toBe(AUTO_DEFAULT_SINK_RATE);
    expect(s.inFlight(32)).toBe(32);
    const w = () => {};
    expect(s.wrap(w)).toBe(w); // nothing to time
    for (const bad of [0, -1, Number.NaN, "fast"])
      expect(() => new AutoSink(bad as never)).toThrow(expect.objectContaining({ code: "USAGE", field: "sinkRate" }));
  });

  it("measured: times the writes; few chunks in flight until the sink has been measured", async () => {
    const s = new AutoSink("measured");
    expect(s.rate).toBe(Infinity); // RAW until measured
    expect(s.inFlight(32)).toBe(AUTO_UNSETTLED_IN_FLIGHT);
    // A link at 100 MB/s that blocks once 1 MiB is queued: 24 MiB through it.
    const write = s.wrap(throttle(100e6, undefined, { buffer: MIB }));
    for (let i = 0; i < 24; i++) await write(new Uint8Array(MIB));
    expect(s.inFlight(32)).toBe(32);
    // Never faster than the link (a busy machine's late timers only make it look slower).
    expect(s.rate).toBeLessThan(1.3 * 100e6);
    expect(s.context(2)).toEqual({ sinkRate: s.rate, threads: 2 });
  });
});
