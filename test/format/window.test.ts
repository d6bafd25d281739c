// WindowTracker (src/format/window.ts): the dedup window's bookkeeping without
// the bytes. A tracker made from a decoder's DedupWindow part-way through a
// stream (WindowTracker.of, where a decoder with a pool hands over) must go on
// exactly as one that followed the stream from its start.
import { describe, expect, it } from "vitest";
import { DedupWindow } from "../../src/codec/dedup.js";
import { WindowTracker } from "../../src/format/window.js";

/** Deterministic lengths: mostly chunk-sized, some tiny, a few larger than the window (which empties it). */
function lengths(seed: number, n: number, windowBytes: number): number[] {
  let x = seed;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    const r = x % 100;
    out.push(r < 3 ? windowBytes + 1 + (x % 1000) : r < 20 ? 1 + (x % 64) : 1 + (x % 9000));
  }
  return out;
}

/** Every ordinal's answer, a few past the end too. */
function state(t: WindowTracker): unknown {
  return { oldest: t.oldest, next: t.next, lengths: Array.from({ length: t.next + 3 }, (_, o) => t.lengthOf(o)) };
}

describe("WindowTracker.of", () => {
  it("a tracker taken from a DedupWindow at any point goes on as one that saw every chunk", () => {
    for (const windowBytes of [20_000, 64 << 10]) {
      const seq = lengths(windowBytes, 300, windowBytes);
      for (let at = 0; at <= seq.length; at += 17) {
        const w = new DedupWindow(windowBytes);
        const whole = new WindowTracker(windowBytes);
        for (const n of seq.slice(0, at)) {
          w.add(new Uint8Array(n));
          whole.add(n);
        }
        const taken = WindowTracker.of(w);
        expect(state(taken), `window ${windowBytes}, taken after ${at}`).toEqual(state(whole));
        for (const n of seq.slice(at)) {
          expect(taken.add(n)).toBe(whole.add(n));
          expect(state(taken), `window ${windowBytes}, taken after ${at}`).toEqual(state(whole));
        }
      }
    }
  });
});
