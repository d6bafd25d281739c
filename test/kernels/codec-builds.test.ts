// The SIMD and scalar builds of the zero, chunk and LZ4 kernels give identical
// results, and the raw kernels stay inside their buffers: inputs are placed flush
// against the end of linear memory (any over-read traps) and outputs are
// followed by guard bytes (any over-write shows).
import { describe, expect, it } from "vitest";
import { makeImage } from "../../src/device/pages.js";
import { corpus, firstDiff, randomBytes, rng } from "./data.js";
import { lz4jsDecompress } from "./lz4-peers.js";
import { BUILDS, RawArena, type RawKernels, rawKernels } from "./raw-kernels.js";

const GUARD = 64;
const GUARD_BYTE = 0xa5;

const instances = BUILDS.map((b) => rawKernels(b));

function compress(k: RawKernels, a: RawArena, data: Uint8Array, accel = 1): Uint8Array {
  const cap = data.length + Math.floor(data.length / 255) + 16;
  const dst = a.alloc(cap);
  const src = a.put(data);
  const n = k.lz4_compress(src, data.length, dst, cap, accel) >>> 0;
  return a.u8().slice(dst, dst + n);
}

describe("SIMD and scalar builds", () => {
  it("really are a SIMD and a scalar build", () => {
    expect(instances.map((k) => k.simdEnabled())).toEqual([1, 0]);
  });

  it("compress to identical bytes and decode each other's blocks", () => {
    const [simd, scalar] = instances.map((k) => ({ k, a: new RawArena(k) }));
    for (const [name, data] of [...corpus(200_000, 1), ...corpus(100, 2)]) {
      for (const accel of [1, 3]) {
        simd.a.reset();
        scalar.a.reset();
        const c1 = compress(simd.k, simd.a, data, accel);
        const c2 = compress(scalar.k, scalar.a, data, accel);
        expect(firstDiff(c1, c2), name).toBe(-1);
        for (const { k, a } of [simd, scalar]) {
          const src = a.put(c1);
          const dst = a.alloc(data.length);
          expect(k.lz4_decompress(src, c1.length, dst, data.length)).toBe(data.length);
          expect(firstDiff(a.u8().subarray(dst, dst + data.length), data), name).toBe(-1);
        }
      }
    }
  });

  it("decode hand-made blocks of every short sequence shape as lz4js does", () => {
    // Every token with both lengths in its nibbles (0..14 literals, matches of
    // 4..18 bytes) at every offset 1..40, plus long ones around them: the
    // decoder's fast loop, its overlap patterns and its exits. Our compressor
    // makes only some of these shapes; lz4js (independent) gives the expected bytes.
    const r = rng(31);
    const block: number[] = [];
    let produced = 0;
    const literals = (n: number) => {
      for (let i = 0; i < n; i++) block.push(r() & 0xff);
      produced += n;
    };
    const length = (n: number) => {
      for (; n >= 255; n -= 255) block.push(255);
      block.push(n);
    };
    const sequence = (lit: number, offset: number, ml: number) => {
      block.push((Math.min(lit, 15) << 4) | Math.min(ml - 4, 15));
      if (lit >= 15) length(lit - 15);
      literals(lit);
      block.push(offset & 0xff, offset >> 8);
      if (ml - 4 >= 15) length(ml - 4 - 15);
      produced += ml;
    };
    sequence(40, 1, 4); // 40 bytes of history before the first short offset
    for (let offset = 1; offset <= 40; offset++)
      for (let lit = 0; lit <= 14; lit++) for (const ml of [4, 5, 8, 15, 16, 17, 18]) sequence(lit, offset, ml);
    for (const [lit, offset, ml] of [
      [15, 3, 19],
      [0, 1, 300],
      [14, 15, 600],
      [200, 33, 18],
      [3, 7, 18],
    ])
      sequence(lit, offset, ml);
    block.push(0x50); // the last sequence: 5 literals, no match
    literals(5);
    const c = Uint8Array.from(block);
    const expected = lz4jsDecompress(c, produced);
    expect(expected.length).toBe(produced);
    for (const k of instances) {
      const a = new RawArena(k);
      for (const slack of [0, 1, 47, 200]) {
        a.reset();
        const src = a.atMemoryEnd(c);
        const dst = a.alloc(produced + slack);
        expect(k.lz4_decompress(src, c.length, dst, produced + slack)).toBe(produced);
        expect(firstDiff(a.u8().subarray(dst, dst + produced), expected)).toBe(-1);
      }
    }
  });

  it("report the same zero maps, prefixes and chunk boundaries", () => {
    const r = rng(8);
    const inputs = [makeImage(300_000, 4), new Uint8Array(70_000), randomBytes(5000, 5)];
    const sparse = new Uint8Array(100_000);
    for (let i = 0; i < 20; i++) sparse[r() % sparse.length] = 1;
    inputs.push(sparse);
    for (const data of inputs) {
      const results = instances.map((k) => {
        const a = new RawArena(k);
        const p = a.put(data);
        const map = a.alloc(data.length);
        const st = a.alloc(16);
        const out = a.alloc(data.length);
        const zeros = k.zero_pageMap(p, data.length, 4096, map);
        const n = k.chunk_cdc(p, data.length, st, out, 256, 1024, 8192, 12, 8);
        return {
          isZero: k.zero_isZero(p, data.length),
          prefix: k.zero_prefixLength(p, data.length),
          zeros,
          count: k.zero_countPages(p, data.length, 1000),
          map: Array.from(a.u8().subarray(map, map + Math.ceil(data.length / 4096))),
          ends: Array.from(new Uint32Array(k.memory.buffer, out, n)),
        };
      });
      expect(results[1]).toEqual(results[0]);
    }
  });
});

describe("raw kernels stay inside their buffers", () => {
  for (const [i, build] of BUILDS.entries()) {
    const k = instances[i];

    it(`${build}: lz4_decompress on mutated blocks ending at the end of memory`, () => {
      const a = new RawArena(k);
      const data = makeImage(20_000, 14);
      const block = compress(k, a, data);
      const r = rng(99 + i);
      let rejected = 0;
      for (let t = 0; t < 2000; t++) {
        a.reset();
        const m = block.slice(0, block.length - (r() % 4 === 0 ? r() % block.length : 0));
        for (let e = r() % 5; e >= 0; e--) if (m.length) m[r() % m.length] = r() & 0xff;
        const cap = data.length - 100 + (r() % 200);
        const dst = a.alloc(cap + GUARD);
        a.u8().fill(GUARD_BYTE, dst + cap, dst + cap + GUARD);
        const src = a.atMemoryEnd(m);
        const n = k.lz4_decompress(src, m.length, dst, cap) | 0;
        if (n < 0) {
          rejected++;
          expect(-1 - n).toBeLessThanOrEqual(m.length);
          expect([1, 2, 3]).toContain(k.lz4_errorKind());
        } else {
          expect(n).toBeLessThanOrEqual(cap);
        }
        expect(
          a
            .u8()
            .subarray(dst + cap, dst + cap + GUARD)
            .every((b) => b === GUARD_BYTE),
        ).toBe(true);
      }
      expect(rejected).toBeGreaterThan(500);
    });

    it(`${build}: lz4_compress reads only its input and writes only its output`, () => {
      const a = new RawArena(k);
      for (const [name, data] of [...corpus(5000, 7), ...corpus(13, 8), ...corpus(64, 9)]) {
        a.reset();
        const ref = compress(k, a, data);
        for (const cap of [ref.length, ref.length - 1, Math.floor(ref.length / 2)]) {
          const dst = a.alloc(cap + GUARD);
          a.u8().fill(GUARD_BYTE, dst + cap, dst + cap + GUARD);
          const src = a.atMemoryEnd(data);
          const n = k.lz4_compress(src, data.length, dst, cap, 1) >>> 0;
          expect(n, name).toBe(cap === ref.length ? ref.length : 0);
          expect(
            a
              .u8()
              .subarray(dst + cap, dst + cap + GUARD)
              .every((b) => b === GUARD_BYTE),
            name,
          ).toBe(true);
        }
      }
    });

    it(`${build}: zero and chunk kernels on inputs ending at the end of memory`, () => {
      for (let n = 0; n < 300; n += 1 + (n >> 3)) {
        const a = new RawArena(k);
        const data = new Uint8Array(n);
        if (n) data[n - 1] = 1;
        const out = a.alloc(n + 16);
        const st = a.alloc(16);
        const p = a.atMemoryEnd(data);
        expect(k.zero_isZero(p, n)).toBe(n ? 0 : 1);
        expect(k.zero_prefixLength(p, n)).toBe(n ? n - 1 : 0);
        expect(k.zero_pageMap(p, n, 64, out)).toBe(Math.max(0, Math.ceil(n / 64) - 1));
        a.u8().fill(0, st, st + 16);
        expect(k.chunk_cdc(p, n, st, out, 64, 64, 128, 8, 4)).toBeLessThanOrEqual(Math.floor(n / 64));
      }
    });
  }
});
