// The chunk coder (codec/coder.ts), the one coding rule: ZERO first, then a
// dedup reference, then the codec, RAW when coding does not pay; every chunk
// carried as data recorded as the decoder records it; levels checked once
// (resolveCoding); in kernel memory, coded in place without allocating there.
import { beforeAll, describe, expect, it } from "vitest";
import {
  CODEC_DEDUP_REF,
  CODEC_LZ4,
  CODEC_RAW,
  CODEC_ZERO,
  CODEC_ZSTD,
  CODECS,
  DedupIndex,
  DedupWindow,
  decodeChunk,
  encodeChunk,
  init,
  maxCodedSize,
  reserveCoder,
  resolveCoding,
  resolveDedupRef,
  screenChunk,
  slotSize,
} from "../../src/codec/index.js";
import { makeImage } from "../../src/device/pages.js";
import { allocBuffer, kernelMemory } from "../../src/kernels/wasm.js";
import { xxh3_64 } from "../../src/kernels/xxh3.js";

beforeAll(async () => {
  await init();
});

const slot = (n: number) => new Uint8Array(slotSize(n));
const heap = (n: number, seed: number) => makeImage(n, seed, { zero: 0, code: 0, heap: 1, random: 0 });
const noise = (n: number, seed: number) => makeImage(n, seed, { zero: 0, code: 0, heap: 0, random: 1 });

describe("resolveCoding (levels checked once, here)", () => {
  it("fills in each codec's default level and refuses anything else with USAGE", () => {
    expect(resolveCoding("lz4")).toEqual({ codec: "lz4", level: 1 });
    expect(resolveCoding("zstd")).toEqual({ codec: "zstd", level: 3 });
    expect(resolveCoding("auto")).toEqual({ codec: "auto", level: 3 });
    expect(resolveCoding("raw")).toEqual({ codec: "raw", level: 0 });
    expect(resolveCoding("zstd", 19)).toEqual({ codec: "zstd", level: 19 });
    expect(resolveCoding("lz4", 65537)).toEqual({ codec: "lz4", level: 65537 });
    for (const [codec, level, field] of [
      ["nope", undefined, "codec"],
      ["zstd", 0, "level"],
      ["zstd", 20, "level"],
      ["auto", 1.5, "level"],
      ["lz4", 0, "level"],
      ["lz4", 65538, "level"],
      ["raw", 1, "level"],
      ["zero", 0, "level"],
      ["lz4", "9", "level"],
    ] as const) {
      expect(() => resolveCoding(codec, level), `${codec} ${level}`).toThrow(
        expect.objectContaining({ code: "USAGE", field }),
      );
    }
    expect([...CODECS]).toEqual(["raw", "zero", "lz4", "zstd", "auto"]);
  });
});

describe("encodeChunk", () => {
  it("ZERO before anything else: no payload, the hash of the zeros, nothing recorded", () => {
    const index = new DedupIndex(1 << 20);
    const z = new Uint8Array(10_000);
    const c = encodeChunk(z, slot(z.length), resolveCoding("zstd"), { index });
    expect(c).toMatchObject({ codec: CODEC_ZERO, level: 0, rawLength: 10_000, hash: xxh3_64(z) });
    expect(c.payload.length).toBe(0);
    expect(index.has(c.hash)).toBe(false);
  });

  it("a chunk equal to a recorded one is a reference the decoder resolves; coded chunks are recorded as the decoder records them", () => {
    const index = new DedupIndex(1 << 20);
    const window = new DedupWindow(1 << 20);
    const a = heap(20_000, 1);
    const b = noise(20_000, 2);
    for (const chunk of [a, b]) {
      const c = encodeChunk(chunk, slot(chunk.length), resolveCoding("lz4"), { index });
      expect(c.codec).toBe(chunk === a ? CODEC_LZ4 : CODEC_RAW);
      window.add(decodeChunk(c.codec, c.payload, chunk.length));
    }
    const again = encodeChunk(a.slice(), slot(a.length), resolveCoding("lz4"), { index });
    expect(again.codec).toBe(CODEC_DEDUP_REF);
    expect(Array.from(resolveDedupRef(window, again.payload, a.length))).toEqual(Array.from(a));
    // Only equal bytes are referenced: a chunk with the same length and one byte changed is coded.
    const near = a.slice();
    near[5] ^= 1;
    expect(encodeChunk(near, slot(near.length), resolveCoding("lz4"), { index }).codec).toBe(CODEC_LZ4);
  });

  it("screenChunk takes the same two steps for a chunk coded elsewhere, recording it", () => {
    const index = new DedupIndex(1 << 20);
    const a = heap(8192, 3);
    expect(screenChunk(new Uint8Array(100), index, null)).toMatchObject({ codec: CODEC_ZERO });
    const h = screenChunk(a, index, null);
    expect(h).toBe(xxh3_64(a));
    expect(screenChunk(a.slice(), index, null)).toMatchObject({ codec: CODEC_DEDUP_REF, hash: h });
  });

  it("falls back to RAW when coding saves less than maxCodedSize asks, whatever the codec", () => {
    for (const codec of ["lz4", "zstd", "auto"] as const) {
      const r = noise(65_536, 4);
      const c = encodeChunk(r, slot(r.length), resolveCoding(codec), { auto: { sinkRate: 1e6 } });
      expect(c.codec, codec).toBe(CODEC_RAW);
      expect(c.payload).toBe(r);
    }
    const h = heap(65_536, 5);
    const z = encodeChunk(h, slot(h.length), resolveCoding("zstd", 3));
    expect(z.codec).toBe(CODEC_ZSTD);
    expect(z.payload.length).toBeLessThanOrEqual(maxCodedSize(h.length));
  });

  it("codes a chunk in kernel memory in place, into a slot there, without growing kernel memory", () => {
    const n = 256 << 10;
    const data = makeImage(n, 6);
    for (const coding of [resolveCoding("lz4"), resolveCoding("zstd", 1), resolveCoding("auto")]) {
      const plain = encodeChunk(data, slot(n), coding, { auto: { sinkRate: 20e6 } });
      reserveCoder(n);
      const input = allocBuffer(n);
      const out = allocBuffer(slotSize(n));
      const memory = kernelMemory().buffer;
      const chunk = input.view();
      chunk.set(data);
      const c = encodeChunk(chunk, out.view(), coding, { auto: { sinkRate: 20e6 } });
      expect(kernelMemory().buffer).toBe(memory);
      expect([c.codec, c.level, c.hash], coding.codec).toEqual([plain.codec, plain.level, plain.hash]);
      expect(Buffer.compare(c.payload, plain.payload)).toBe(0);
      input.free();
      out.free();
    }
  });

  it("refuses a chunk above MAX_CHUNK_SIZE with LIMIT", () => {
    expect(() => encodeChunk(new Uint8Array((8 << 20) + 1), slot(8), resolveCoding("raw"))).toThrow(
      expect.objectContaining({ code: "LIMIT" }),
    );
  });
});
