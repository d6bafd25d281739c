// The encoder's dedup index: copies kept in shared slabs across slab
// boundaries and evictions, hash collisions settled by the bytes, anchors
// (a recorded chunk found by its first bytes), and that it drops exactly what
// the decoder's window drops.
import { describe, expect, it } from "vitest";
import {
  ANCHOR_SIZE,
  anchorKey,
  DEDUP_ENTRY_MIN_COST,
  DEDUP_SLAB_SIZE,
  DedupIndex,
  DedupWindow,
  scanAnchors,
} from "../../src/codec/dedup.js";
import { lz4Compress } from "../../src/kernels/lz4.js";
// @ts-expect-error plain JS module shared with scripts/make-vectors.mjs
import { noise } from "../vectors/cases.mjs";

/** `n` deterministic, incompressible bytes for chunk `k`. */
const chunk = (k: number, n: number): Uint8Array => noise(n, (k * 2654435761) >>> 0 || 1);

describe("DedupIndex", () => {
  it("keeps copies across slab boundaries, finds them while live and drops exactly what the decoder drops", () => {
    const window = 3 * DEDUP_SLAB_SIZE; // several slabs fill and are released while chunks keep coming
    const idx = new DedupIndex(window);
    const dec = new DedupWindow(window);
    const sizes = [1, 7, 300, 4096, 65536, 200_000, 33];
    const live: { ord: number; bytes: Uint8Array }[] = [];
    for (let k = 0; k < 400; k++) {
      const c = chunk(k, sizes[k % sizes.length]);
      const ord = idx.add(c, BigInt(k));
      expect(dec.add(c)).toBe(ord);
      live.push({ ord, bytes: c });
      // The caller's buffer may change afterwards: the index holds its own copy.
      c.fill(0xee);
      expect(idx.oldest).toBe(dec.oldest);
      expect(idx.bytes).toBe(dec.bytes);
    }
    expect(idx.oldest).toBeGreaterThan(0);
    for (let k = 0; k < live.length; k++) {
      const original = chunk(k, sizes[k % sizes.length]);
      const found = idx.find(original, BigInt(k));
      if (live[k].ord >= idx.oldest) {
        expect(found).toBe(live[k].ord);
        expect(Buffer.compare(dec.get(found), original)).toBe(0);
      } else expect(found).toBe(-1);
    }
  });

  it("never trusts a hash alone: equal hashes with different bytes are told apart", () => {
    const idx = new DedupIndex(1 << 20);
    const a = chunk(1, 5000);
    const b = chunk(2, 5000);
    const ha = idx.add(a, 42n);
    const hb = idx.add(b, 42n); // a forced collision
    expect(idx.find(a, 42n)).toBe(ha);
    expect(idx.find(b, 42n)).toBe(hb);
    expect(idx.find(chunk(3, 5000), 42n)).toBe(-1);
    expect(idx.find(a.subarray(1), 42n)).toBe(-1);
    expect(idx.has(42n)).toBe(true);
    expect(idx.has(43n)).toBe(false);
  });

  it("compares unaligned views correctly", () => {
    const idx = new DedupIndex(1 << 20);
    const base = chunk(9, 10_003);
    const ord = idx.add(base.subarray(3), 7n);
    const copy = new Uint8Array(10_010);
    for (const shift of [0, 1, 2, 3, 5]) {
      copy.fill(0);
      copy.set(base.subarray(3), shift);
      expect(idx.find(copy.subarray(shift, shift + 10_000), 7n)).toBe(ord);
      copy[shift + 9_999] ^= 1;
      expect(idx.find(copy.subarray(shift, shift + 10_000), 7n)).toBe(-1);
    }
  });

  it("keeps an LZ4 copy when given one (after reserve), and still compares whole bytes", () => {
    const idx = new DedupIndex(1 << 20);
    const text = new TextEncoder().encode("pending bytes, data offset, data size; ".repeat(120));
    const packed = lz4Compress(text);
    expect(packed.length).toBeLessThan(text.length);
    // Without reserve() the index keeps the plain copy (no room to check a packed one).
    const plainOrd = idx.add(text.subarray(0, 1000), 1n, lz4Compress(text.subarray(0, 1000)));
    expect(idx.find(text.subarray(0, 1000), 1n)).toBe(plainOrd);
    idx.reserve(8192);
    const ord = idx.add(text, 2n, packed);
    expect(idx.find(text, 2n)).toBe(ord);
    const edited = text.slice();
    edited[2000] ^= 1;
    expect(idx.find(edited, 2n)).toBe(-1);
    expect(idx.find(text.subarray(0, text.length - 1), 2n)).toBe(-1);
    // Anchors check packed copies too.
    const hay = new Uint8Array(text.length + 500);
    hay.set(text, 321);
    expect(idx.findAnchored(hay, 0, hay.length)).toEqual({ at: 321, length: text.length });
    hay[321 + 4000] ^= 1;
    expect(idx.findAnchored(hay, 0, hay.length)?.at).not.toBe(321);
  });

  it("a chunk costing more than the window is counted but never kept", () => {
    const idx = new DedupIndex(4 * DEDUP_ENTRY_MIN_COST);
    const big = chunk(5, 5 * DEDUP_ENTRY_MIN_COST);
    const ord = idx.add(big, 1n);
    expect(ord).toBe(0);
    expect(idx.next).toBe(1);
    expect(idx.oldest).toBe(1);
    expect(idx.find(big, 1n)).toBe(-1);
    expect(idx.has(1n)).toBe(false);
  });
});

describe("anchors", () => {
  it("the rolling key equals the key of every window", () => {
    const bytes = chunk(11, 500);
    const keys: number[] = [];
    scanAnchors(bytes, (at, key) => {
      keys.push(key);
      expect(key).toBe(anchorKey(bytes, at));
      return false;
    });
    expect(keys.length).toBe(500 - ANCHOR_SIZE + 1);
    expect(scanAnchors(bytes.subarray(0, ANCHOR_SIZE - 1), () => true)).toBe(-1);
    expect(scanAnchors(bytes, (at) => at === 77)).toBe(77);
  });

  it("finds where a recorded chunk starts again inside other bytes, and only while it is live", () => {
    const idx = new DedupIndex(64 * 1024);
    const rec = chunk(21, 3000);
    idx.add(rec, 99n);
    const hay = new Uint8Array(10_000);
    hay.set(chunk(22, 10_000));
    hay.set(rec, 4321);
    const key = anchorKey(hay, 4321);
    expect(idx.mayHaveAnchor(key)).toBe(true);
    expect(idx.atAnchor(key, hay, 4321)).toBe(3000);
    // The same first bytes followed by something else are not the chunk.
    const other = hay.slice();
    other[4321 + 2999] ^= 0xff;
    expect(idx.atAnchor(key, other, 4321)).toBe(-1);
    // Too close to the end to hold it.
    expect(idx.atAnchor(key, hay.subarray(0, 4321 + 2999), 4321)).toBe(-1);
    const at = scanAnchors(hay, (s, k) => idx.mayHaveAnchor(k) && idx.atAnchor(k, hay, s) > 0);
    expect(at).toBe(4321);
    // Evicted: no longer found.
    for (let k = 0; k < 40; k++) idx.add(chunk(100 + k, 2000), BigInt(1000 + k));
    expect(idx.find(rec, 99n)).toBe(-1);
    expect(idx.atAnchor(key, hay, 4321)).toBe(-1);
  });
});
