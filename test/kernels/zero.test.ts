import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { makeImage } from "../../src/device/pages.js";
import { isMigstreamError } from "../../src/errors.js";
import { allocBuffer } from "../../src/kernels/wasm.js";
import { countZeroPages, isZero, ZERO_MAX_PAGE_SIZE, zeroPageMap, zeroPrefixLength } from "../../src/kernels/zero.js";
import { rng } from "./data.js";

// Plain JS references.
function refPrefix(d: Uint8Array): number {
  let i = 0;
  while (i < d.length && d[i] === 0) i++;
  return i;
}
function refPageMap(d: Uint8Array, page: number): Uint8Array {
  const out = new Uint8Array(Math.ceil(d.length / page));
  for (let p = 0; p < out.length; p++)
    out[p] = refPrefix(d.subarray(p * page, (p + 1) * page)) === Math.min(page, d.length - p * page) ? 1 : 0;
  return out;
}

/** Mostly-zero buffers with a few non-zero bytes at random places. */
const sparse = fc
  .tuple(
    fc.integer({ min: 0, max: 20_000 }),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 6 }),
  )
  .map(([n, marks]) => {
    const d = new Uint8Array(n);
    for (const [at, v] of marks) if (n) d[at % n] = v;
    return d;
  });

describe("zero detection", () => {
  it("finds a single non-zero byte at every position of small buffers", () => {
    for (const n of [1, 7, 15, 16, 17, 63, 64, 65, 127, 128, 129, 200, 257]) {
      const d = new Uint8Array(n);
      expect(isZero(d)).toBe(true);
      expect(zeroPrefixLength(d)).toBe(n);
      for (let i = 0; i < n; i++) {
        d[i] = 1 + (i % 255);
        expect(isZero(d), `n=${n} i=${i}`).toBe(false);
        expect(zeroPrefixLength(d), `n=${n} i=${i}`).toBe(i);
        expect(zeroPageMap(d, 32)).toEqual(refPageMap(d, 32));
        d[i] = 0;
      }
    }
  });

  it("treats an empty buffer as zero with an empty page map", () => {
    expect(isZero(new Uint8Array(0))).toBe(true);
    expect(zeroPrefixLength(new Uint8Array(0))).toBe(0);
    expect(zeroPageMap(new Uint8Array(0)).length).toBe(0);
    expect(countZeroPages(new Uint8Array(0))).toBe(0);
  });

  it("matches the JS reference on sparse buffers and odd page sizes (property)", () => {
    fc.assert(
      fc.property(sparse, fc.constantFrom(1, 3, 16, 64, 100, 512, 4096, 4097), (d, page) => {
        expect(isZero(d)).toBe(refPrefix(d) === d.length);
        expect(zeroPrefixLength(d)).toBe(refPrefix(d));
        const ref = refPageMap(d, page);
        expect(zeroPageMap(d, page)).toEqual(ref);
        expect(countZeroPages(d, page)).toBe(ref.reduce((a, b) => a + b, 0));
      }),
      { numRuns: 400 },
    );
  });

  it("maps a device image's zero pages, with a short last page", () => {
    const r = rng(5);
    for (const n of [1 << 20, (1 << 20) + 1000, 3 * 4096 - 1]) {
      const img = makeImage(n, r());
      const map = zeroPageMap(img);
      expect(map).toEqual(refPageMap(img, 4096));
      expect(countZeroPages(img)).toBe(map.reduce((a, b) => a + b, 0));
      if (n >= 1 << 20) expect(countZeroPages(img)).toBeGreaterThan(50); // the 40% zero mix
    }
  });

  it("works in place on kernel buffers and at any alignment", () => {
    const buf = allocBuffer(10_000);
    const v = buf.view();
    v.fill(0);
    v[9_999] = 9;
    for (let off = 0; off < 70; off++) {
      expect(zeroPrefixLength(buf.view(off))).toBe(9_999 - off);
      expect(isZero(buf.view(off, 9_999))).toBe(true);
    }
    buf.free();
  });

  it("rejects bad page sizes with USAGE", () => {
    for (const p of [0, -1, 1.5, Number.NaN, ZERO_MAX_PAGE_SIZE + 1]) {
      for (const f of [() => zeroPageMap(new Uint8Array(10), p), () => countZeroPages(new Uint8Array(10), p)]) {
        let code = "";
        try {
          f();
        } catch (e) {
          if (isMigstreamError(e)) code = e.code;
        }
        expect(code, `page size ${p}`).toBe("USAGE");
      }
    }
  });
});
