// The seeded page generator behind the simulated device, the tests and the benches.
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_MIX,
  fillImage,
  fillPage,
  makeImage,
  PAGE_KINDS,
  PAGE_SIZE,
  pageKindAt,
} from "../../src/device/pages.js";

const lz4js = createRequire(import.meta.url)("lz4js") as {
  compressBound(n: number): number;
  compressBlock(src: Uint8Array, dst: Uint8Array, sIndex: number, sLength: number, hashTable: Uint32Array): number;
};

describe("device-state pages", () => {
  it("is deterministic in (seed, page index), so any window regenerates alone", () => {
    const a = makeImage(64 * PAGE_SIZE, 42);
    expect(Buffer.compare(a, makeImage(64 * PAGE_SIZE, 42))).toBe(0);
    expect(Buffer.compare(a, makeImage(64 * PAGE_SIZE, 43))).not.toBe(0);
    const window = new Uint8Array(10 * PAGE_SIZE);
    fillImage(window, 42, DEFAULT_MIX, 17);
    expect(Buffer.compare(window, a.subarray(17 * PAGE_SIZE, 27 * PAGE_SIZE))).toBe(0);
  });

  it("mixes the page kinds in about the configured shares", () => {
    const n = 20_000;
    const counts = Object.fromEntries(PAGE_KINDS.map((k) => [k, 0])) as Record<string, number>;
    for (let p = 0; p < n; p++) counts[pageKindAt(5, p)]++;
    for (const k of PAGE_KINDS) expect(Math.abs(counts[k] / n - DEFAULT_MIX[k])).toBeLessThan(0.02);
    const onlyCode = { zero: 0, code: 1, heap: 0, random: 0 };
    for (let p = 0; p < 100; p++) expect(pageKindAt(5, p, onlyCode)).toBe("code");
  });

  it("gives each kind its character: zero, repetitive code, pointer-heavy heap, random", () => {
    const page = (kind: (typeof PAGE_KINDS)[number]) => {
      const b = new Uint8Array(PAGE_SIZE).fill(0xaa);
      fillPage(b, kind, 1234);
      return b;
    };
    expect(page("zero").every((x) => x === 0)).toBe(true);
    const distinct = (b: Uint8Array) => new Set(b).size;
    // Compressibility, measured by an independent LZ4 (lz4js): code and heap shrink, random does not.
    const ratio = (b: Uint8Array) => {
      const out = new Uint8Array(lz4js.compressBound(b.length));
      return b.length / lz4js.compressBlock(b, out, 0, b.length, new Uint32Array(1 << 16));
    };
    expect(ratio(page("code"))).toBeGreaterThan(1.5);
    expect(ratio(page("heap"))).toBeGreaterThan(1.5);
    expect(distinct(page("random"))).toBe(256);
    const heap = new DataView(page("heap").buffer);
    let pointers = 0;
    for (let i = 0; i < PAGE_SIZE; i += 8) if (heap.getUint32(i + 4, true) === 0x5555) pointers++;
    expect(pointers).toBeGreaterThan(PAGE_SIZE / 8 / 4);
    const odd = new Uint8Array(PAGE_SIZE + 3);
    fillImage(odd, 9); // a short last page is fine
    expect(odd.length).toBe(PAGE_SIZE + 3);
  });
});
