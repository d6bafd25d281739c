// The throttled link that simulates slow sinks, on a fake clock.
import { describe, expect, it } from "vitest";
import { THROTTLE_BUFFER, throttle } from "../../src/migrate/throttle.js";
import { fakeClock as clock } from "./clock.js";

const MIB = 1 << 20;

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
