import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { makeImage } from "../../src/device/pages.js";
import { isMigstreamError } from "../../src/errors.js";
import {
  CDC_MAX_SIZE,
  CDC_NORMALIZATION,
  CdcChunker,
  type CdcOptions,
  cdcBoundaries,
  fixedBoundaries,
} from "../../src/kernels/chunk.js";
import { allocBuffer } from "../../src/kernels/wasm.js";
import { randomBytes, textBytes } from "./data.js";

// Reference chunker written from the description in assembly/chunk.ts, with its
// own gear table (splitmix64 from the documented seed) and BigInt arithmetic.
const GEAR = (() => {
  const M = (1n << 64n) - 1n;
  let s = 0x6d6967737472656dn;
  const out: bigint[] = [];
  for (let i = 0; i < 256; i++) {
    s = (s + 0x9e3779b97f4a7c15n) & M;
    let z = s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
    out.push(z ^ (z >> 31n));
  }
  return out;
})();

function refCdc(data: Uint8Array, o: CdcOptions): number[] {
  const bits = Math.log2(o.avgSize);
  const top = (b: number) => ((1n << BigInt(b)) - 1n) << BigInt(64 - b);
  const maskS = top(bits + CDC_NORMALIZATION);
  const maskL = top(bits - CDC_NORMALIZATION);
  const ends: number[] = [];
  let start = 0;
  while (start < data.length) {
    const end = Math.min(start + o.maxSize, data.length);
    let cut = end;
    let fp = 0n;
    for (let i = start + o.minSize; i < end; i++) {
      fp = BigInt.asUintN(64, (fp << 1n) + GEAR[data[i]]);
      if ((fp & (i + 1 - start <= o.avgSize ? maskS : maskL)) === 0n) {
        cut = i + 1;
        break;
      }
    }
    ends.push(cut);
    start = cut;
  }
  return ends;
}

const SMALL: CdcOptions = { minSize: 64, avgSize: 256, maxSize: 1024 };
const MEDIUM: CdcOptions = { minSize: 2048, avgSize: 8192, maxSize: 65536 };

function checkShape(ends: Uint32Array | number[], length: number, o: CdcOptions): void {
  if (length === 0) {
    expect(ends.length).toBe(0);
    return;
  }
  expect(ends[ends.length - 1]).toBe(length);
  let prev = 0;
  for (let i = 0; i < ends.length; i++) {
    const size = ends[i] - prev;
    expect(size).toBeGreaterThan(0);
    expect(size).toBeLessThanOrEqual(o.maxSize);
    if (i < ends.length - 1) expect(size).toBeGreaterThanOrEqual(o.minSize);
    prev = ends[i];
  }
}

function chunkHashes(data: Uint8Array, ends: Uint32Array): string[] {
  let prev = 0;
  return Array.from(ends, (e) => {
    const h = createHash("sha256").update(data.subarray(prev, e)).digest("hex");
    prev = e;
    return h;
  });
}

describe("content-defined chunking", () => {
  it("matches the reference chunker on random, text and image data", () => {
    const cases: [Uint8Array, CdcOptions][] = [
      [randomBytes(100_000, 1), SMALL],
      [textBytes(60_000, 2), SMALL],
      [makeImage(300_000, 3), MEDIUM],
      [randomBytes(300_000, 4), MEDIUM],
      [randomBytes(50_000, 5), { minSize: 64, avgSize: 64, maxSize: 64 }],
      [randomBytes(50_000, 6), { minSize: 100, avgSize: 128, maxSize: 5000 }],
    ];
    for (const [data, o] of cases) {
      const ends = cdcBoundaries(data, o);
      expect(Array.from(ends)).toEqual(refCdc(data, o));
      checkShape(ends, data.length, o);
    }
  });

  it("is deterministic, strictly increasing, ends at the length and keeps sizes in [min, max]", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 20_000 }), (data) => {
        const a = cdcBoundaries(data, SMALL);
        expect(cdcBoundaries(data, SMALL)).toEqual(a);
        checkShape(a, data.length, SMALL);
      }),
      { numRuns: 200 },
    );
  });

  it("averages near avgSize on random data and cuts zero runs at maxSize", () => {
    const data = randomBytes(2 << 20, 9);
    const ends = cdcBoundaries(data, MEDIUM);
    const mean = data.length / ends.length;
    expect(mean).toBeGreaterThan(MEDIUM.avgSize / 2);
    expect(mean).toBeLessThan(MEDIUM.avgSize * 2);
    const zeros = cdcBoundaries(new Uint8Array(200_000), MEDIUM);
    expect(Array.from(zeros)).toEqual([65536, 131072, 196608, 200000]);
  });

  it("streams to the same boundaries as one shot for any split (property)", () => {
    const data = makeImage(120_000, 17);
    const rnd = randomBytes(120_000, 18);
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.constantFrom(SMALL, MEDIUM),
        fc.array(fc.nat({ max: 120_000 }), { maxLength: 30 }),
        (useImage, o, cuts) => {
          const d = useImage ? data : rnd;
          const points = [...new Set(cuts)].sort((x, y) => x - y);
          const c = new CdcChunker(o);
          const got: number[] = [];
          let prev = 0;
          for (const p of [...points, d.length]) {
            got.push(...c.push(d.subarray(prev, p)));
            prev = p;
          }
          got.push(...c.finish());
          expect(got).toEqual(Array.from(cdcBoundaries(d, o)));
        },
      ),
      { numRuns: 150 },
    );
  });

  it("streams byte by byte, and a finished chunker starts a new stream", () => {
    const d = randomBytes(3000, 3);
    const c = new CdcChunker(SMALL);
    const got: number[] = [];
    for (let i = 0; i < d.length; i++) got.push(...c.push(d.subarray(i, i + 1)));
    got.push(...c.finish());
    expect(got).toEqual(Array.from(cdcBoundaries(d, SMALL)));
    expect(c.finish()).toEqual([]);
    expect([...c.push(d), ...c.finish()]).toEqual(got);
  });

  it("re-synchronises after an insertion near the start of a 4 MiB buffer", () => {
    const original = randomBytes(4 << 20, 21);
    const edited = new Uint8Array(original.length + 7);
    edited.set(original.subarray(0, 1000));
    edited.set([1, 2, 3, 4, 5, 6, 7], 1000);
    edited.set(original.subarray(1000), 1007);
    const before = new Set(chunkHashes(original, cdcBoundaries(original, MEDIUM)));
    const after = chunkHashes(edited, cdcBoundaries(edited, MEDIUM));
    const shared = after.filter((h) => before.has(h)).length;
    expect(after.length).toBeGreaterThan(200);
    expect(shared / after.length).toBeGreaterThan(0.95);
    // Fixed-size chunks, by contrast, all change after the insertion.
    const fixedBefore = new Set(chunkHashes(original, fixedBoundaries(original.length, 8192)));
    const fixedAfter = chunkHashes(edited, fixedBoundaries(edited.length, 8192));
    expect(fixedAfter.filter((h) => fixedBefore.has(h)).length).toBe(0);
  });

  it("finds the same chunks for content shifted inside a kernel buffer", () => {
    const content = randomBytes(200_000, 30);
    const buf = allocBuffer(content.length + 5000);
    buf.view().set(randomBytes(5000, 31));
    buf.view().set(content, 5000);
    const inPlace = chunkHashes(buf.view(), cdcBoundaries(buf.view(), MEDIUM));
    const alone = new Set(chunkHashes(content, cdcBoundaries(content, MEDIUM)));
    expect(inPlace.filter((h) => alone.has(h)).length).toBeGreaterThanOrEqual(inPlace.length - 3);
    buf.free();
  });

  it("rejects invalid options with USAGE", () => {
    const bad: CdcOptions[] = [
      { minSize: 32, avgSize: 256, maxSize: 1024 },
      { minSize: 64, avgSize: 300, maxSize: 1024 },
      { minSize: 512, avgSize: 256, maxSize: 1024 },
      { minSize: 64, avgSize: 2048, maxSize: 1024 },
      { minSize: 64, avgSize: 256, maxSize: CDC_MAX_SIZE + 1 },
      { minSize: 64.5, avgSize: 256, maxSize: 1024 },
      { minSize: 64, avgSize: Number.NaN, maxSize: 1024 },
      {} as CdcOptions,
    ];
    for (const o of bad) {
      for (const f of [() => cdcBoundaries(new Uint8Array(10), o), () => new CdcChunker(o)]) {
        let code = "";
        try {
          f();
        } catch (e) {
          if (isMigstreamError(e)) code = e.code;
        }
        expect(code, JSON.stringify(o)).toBe("USAGE");
      }
    }
  });
});

describe("fixed-size boundaries", () => {
  it("cuts every size bytes with a short last chunk", () => {
    expect(Array.from(fixedBoundaries(0, 4096))).toEqual([]);
    expect(Array.from(fixedBoundaries(1, 4096))).toEqual([1]);
    expect(Array.from(fixedBoundaries(8192, 4096))).toEqual([4096, 8192]);
    expect(Array.from(fixedBoundaries(10_000, 4096))).toEqual([4096, 8192, 10_000]);
    expect(Array.from(fixedBoundaries(5, 1))).toEqual([1, 2, 3, 4, 5]);
  });

  it("rejects bad arguments with USAGE", () => {
    for (const [len, size] of [
      [-1, 10],
      [10, 0],
      [10, 1.5],
      [1.5, 10],
      [2 ** 32, 10],
    ]) {
      let code = "";
      try {
        fixedBoundaries(len, size);
      } catch (e) {
        if (isMigstreamError(e)) code = e.code;
      }
      expect(code).toBe("USAGE");
    }
  });
});
