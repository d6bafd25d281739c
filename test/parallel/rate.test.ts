// SinkMeter (how fast the encoder's output drains, as auto sees it) and the
// throttled link used to simulate slow sinks, on a fake clock.
import { describe, expect, it } from "vitest";
import {
  SINK_MIN_SAMPLE_BYTES,
  SINK_MIN_WRITES,
  SINK_RATE_GROWTH,
  SINK_WINDOW_BYTES,
  SinkMeter,
  SPEED_LIMIT,
  SPEED_MIN_MS,
  SpeedMeter,
  throttle,
  THROTTLE_BUFFER,
} from "../../src/parallel/rate.js";

const MIB = 1 << 20;

function clock() {
  let t = 1000;
  return {
    now: () => t,
    advance: (ms: number) => void (t += ms),
    sleep: async (ms: number) => void (t += ms),
  };
}

describe("SinkMeter", () => {
  it("reports the initial rate until it has seen the sink hold the writer back", () => {
    const c = clock();
    expect(new SinkMeter({ now: c.now }).rate).toBe(Infinity);
    const m = new SinkMeter({ now: c.now, initialRate: 5e6 });
    expect(m.rate).toBe(5e6);
    // Writes that never block, 2 ms of producing between them: no bound seen.
    for (let i = 0; i < 20; i++) {
      c.advance(2);
      m.record(MIB, c.now(), c.now());
    }
    expect(m.rate).toBe(5e6);
    expect(m.bytesWritten).toBe(20 * MIB);
    expect(() => new SinkMeter({ initialRate: 0 })).toThrow(expect.objectContaining({ code: "USAGE" }));
  });

  it("measures a sink that holds the writer back: bytes over elapsed time", () => {
    const c = clock();
    const m = new SinkMeter({ now: c.now });
    for (let i = 0; i < 12; i++) {
      c.advance(1); // producing
      const start = c.now();
      c.advance(9); // blocked in the write
      m.record(MIB, start, c.now());
    }
    // 1 MiB per 10 ms (the first write's span has no predecessor: within 3%).
    expect(Math.abs(m.rate / ((MIB * 1000) / 10) - 1)).toBeLessThan(0.03);
  });

  it("times writes through wrap(), sync or async", async () => {
    const c = clock();
    const m = new SinkMeter({ now: c.now });
    const slow = m.wrap(async () => c.advance(20));
    for (let i = 0; i < SINK_MIN_WRITES + 2; i++) await slow(new Uint8Array(MIB / 2));
    expect(m.rate).toBeCloseTo((MIB / 2) * 50, -3); // 0.5 MiB per 20 ms
    const fast = new SinkMeter({ now: c.now });
    const sync = fast.wrap(() => {});
    for (let i = 0; i < 10; i++) await sync(new Uint8Array(1000));
    expect(fast.rate).toBe(Infinity);
  });

  it("once the sink stops holding the writer back, the estimate grows per window (at least to what it showed)", () => {
    const c = clock();
    const m = new SinkMeter({ now: c.now });
    for (let i = 0; i < 8; i++) {
      const start = c.now();
      c.advance(10);
      m.record(MIB, start, c.now());
    }
    const bound = m.rate;
    expect(bound).toBeCloseTo(MIB * 100, -3);
    // The writer slows down (compressing harder): writes no longer block, 40 ms apart.
    const windows = 2;
    for (let written = 0; written < windows * SINK_WINDOW_BYTES; written += MIB) {
      c.advance(40);
      m.record(MIB, c.now(), c.now());
    }
    expect(m.rate).toBeCloseTo(bound * SINK_RATE_GROWTH ** windows, -3);
    expect(m.rate).toBeGreaterThan(bound);
  });
});

describe("SinkMeter: what is not a sample", () => {
  it("small writes and a first blocked write after free ones do not set the rate", () => {
    const c = clock();
    const m = new SinkMeter({ now: c.now });
    // Small writes whose await is all overhead look blocked; they are not samples.
    for (let i = 0; i < 10; i++) {
      const start = c.now();
      c.advance(0.05);
      m.record(SINK_MIN_SAMPLE_BYTES - 1, start, c.now());
    }
    expect(m.rate).toBe(Infinity);
    // Free writes, then one blocked write: the queue was not full all along its span.
    for (let i = 0; i < 5; i++) {
      c.advance(3);
      m.record(MIB, c.now(), c.now());
    }
    const start = c.now();
    c.advance(8);
    m.record(MIB, start, c.now());
    expect(m.rate).toBe(Infinity);
    // A second one in a row is a sample: 1 MiB over its 8 ms span.
    const s2 = c.now();
    c.advance(8);
    m.record(MIB, s2, c.now());
    expect(m.rate).toBeCloseTo((MIB * 1000) / 8, -3);
  });
});

describe("SpeedMeter", () => {
  it("starts at its initial guess, then reports expected over actual time, within limits", () => {
    const s = new SpeedMeter(1);
    s.record(SPEED_MIN_MS / 10, SPEED_MIN_MS / 10);
    expect(s.speed).toBe(1); // not enough measured yet
    const slow = new SpeedMeter();
    for (let i = 0; i < 20; i++) slow.record(1, 4); // the probes took 4× the model's time
    expect(slow.speed).toBeCloseTo(0.25, 5);
    const fast = new SpeedMeter();
    for (let i = 0; i < 20; i++) fast.record(100, 1);
    expect(fast.speed).toBe(SPEED_LIMIT);
    fast.record(Number.NaN, 1); // ignored
    expect(fast.speed).toBe(SPEED_LIMIT);
  });
});

describe("throttle", () => {
  it("drains at the given rate: writes block once the buffer is full; drained() waits for the rest", async () => {
    const c = clock();
    const seen: number[] = [];
    const link = throttle(100e6, (b) => void seen.push(b.length), { now: c.now, sleep: c.sleep });
    const t0 = c.now();
    for (let i = 0; i < 10; i++) await link(new Uint8Array(MIB));
    // 10 MiB at 100 MB/s is 104.9 ms; the last THROTTLE_BUFFER bytes are still queued.
    expect(c.now() - t0).toBeCloseTo(((10 * MIB - THROTTLE_BUFFER) / 100e6) * 1000, 3);
    await link.drained();
    expect(c.now() - t0).toBeCloseTo(((10 * MIB) / 100e6) * 1000, 3);
    expect(seen).toEqual(Array(10).fill(MIB));
  });

  it("a writer slower than the link never waits", async () => {
    const c = clock();
    const link = throttle(1e9, undefined, { now: c.now, sleep: c.sleep, buffer: MIB });
    let waited = 0;
    for (let i = 0; i < 5; i++) {
      c.advance(5); // 1 MiB takes ~1 ms on the link, the writer needs 5
      const t = c.now();
      await link(new Uint8Array(MIB));
      waited += c.now() - t;
    }
    expect(waited).toBe(0);
    expect(() => throttle(0)).toThrow(expect.objectContaining({ code: "USAGE" }));
  });
});
