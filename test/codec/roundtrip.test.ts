// Every codec round-trips chunks of every page kind and size through
// encodeChunk/decodeChunk, and compressible chunks really use the asked codec.
import { beforeAll, describe, expect, it } from "vitest";
import type { AutoContext } from "../../src/codec/auto/decide.js";
import {
  CODEC_LZ4,
  CODEC_RAW,
  CODEC_ZERO,
  CODEC_ZSTD,
  type CodecName,
  decodeChunk,
  encodeChunk,
  init,
  maxCodedSize,
  resolveCoding,
  slotSize,
  ZSTD_LEVEL_MAX_CHUNK,
  zstdAvailable,
} from "../../src/codec/index.js";
import { makeImage, PAGE_KINDS } from "../../src/device/pages.js";
import { chunkOf, SIZES } from "./peers.js";

/** Byte equality without vitest's per-element deep compare (slow on MiB buffers). */
function same(a: Uint8Array, b: Uint8Array): boolean {
  return (
    Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0
  );
}

beforeAll(async () => {
  await init();
});

interface Mode {
  codec: CodecName;
  level?: number;
  auto?: AutoContext;
}

/** Codes `chunk` as `mode` says, into a slot of its own. */
function encodeAs(chunk: Uint8Array, mode: Mode) {
  return encodeChunk(chunk, new Uint8Array(slotSize(chunk.length)), resolveCoding(mode.codec, mode.level), {
    auto: mode.auto,
  });
}

const MODES: Mode[] = [
  { codec: "raw" },
  { codec: "zero" },
  { codec: "lz4" },
  { codec: "lz4", level: 8 },
  { codec: "zstd", level: 1 },
  { codec: "zstd" },
  { codec: "zstd", level: 9 },
  { codec: "zstd", level: 19 },
  { codec: "auto" },
];

function label(o: Mode): string {
  return o.level === undefined ? o.codec : `${o.codec}:${o.level}`;
}

describe("round trip", () => {
  it("zstd loaded in Node", () => {
    expect(zstdAvailable()).toBe(true);
  });

  for (const mode of MODES) {
    it(`${label(mode)}: every page kind and size`, () => {
      for (const kind of [...PAGE_KINDS, "image" as const]) {
        for (const size of SIZES) {
          const chunk = kind === "image" ? makeImage(size, size) : chunkOf(kind, size, size);
          const copy = chunk.slice();
          const c = encodeAs(chunk, mode);
          const what = `${kind} ${size}: codec ${c.codec}`;
          expect(same(chunk, copy), what).toBe(true); // input untouched
          const allZero = chunk.every((b) => b === 0);
          if (allZero) expect(c.codec, what).toBe(CODEC_ZERO);
          if (c.codec === CODEC_ZERO) expect(c.payload.length).toBe(0);
          if (c.codec !== CODEC_RAW && c.codec !== CODEC_ZERO) {
            expect(c.payload.length, what).toBeLessThanOrEqual(maxCodedSize(size));
          }
          if (c.codec === CODEC_ZSTD) {
            expect(c.level).toBeGreaterThanOrEqual(1);
            expect(c.level).toBeLessThanOrEqual(mode.level ?? 3);
            expect(size).toBeLessThanOrEqual(ZSTD_LEVEL_MAX_CHUNK[c.level]);
          } else {
            expect(c.level).toBe(0);
          }
          // Compressible kinds of a page or more use the asked codec.
          if ((kind === "code" || kind === "heap") && size >= 4096) {
            if (mode.codec === "lz4") expect(c.codec, what).toBe(CODEC_LZ4);
            if (mode.codec === "zstd") expect(c.codec, what).toBe(CODEC_ZSTD);
          }
          if (mode.codec === "raw" || mode.codec === "zero")
            expect(c.codec, what).toBe(allZero ? CODEC_ZERO : CODEC_RAW);
          expect(same(decodeChunk(c.codec, c.payload, size), chunk), what).toBe(true);
          // Into a caller buffer larger than the chunk: only its prefix is written.
          const into = new Uint8Array(size + 5).fill(0xee);
          const out = decodeChunk(c.codec, c.payload, size, into);
          expect(out.buffer).toBe(into.buffer);
          expect(same(out, chunk), what).toBe(true);
          expect(Array.from(into.subarray(size))).toEqual([0xee, 0xee, 0xee, 0xee, 0xee]);
        }
      }
    });
  }

  it("a coded payload is a prefix of the slot, RAW the chunk itself, ZERO empty; the slot's old bytes never matter", () => {
    for (const kind of PAGE_KINDS) {
      const chunk = makeImage(256 << 10, 7 + kind.length, { zero: 0, code: 0, heap: 0, random: 0, [kind]: 1 });
      for (const mode of [
        { codec: "lz4" },
        { codec: "zstd", level: 1 },
        { codec: "zstd", level: 3 },
        { codec: "auto", auto: { sinkRate: 1e6 } },
      ] as Mode[]) {
        const want = encodeAs(chunk, mode);
        const slot = new Uint8Array(slotSize(chunk.length)).fill(0xa5);
        const got = encodeChunk(chunk, slot, resolveCoding(mode.codec, mode.level), { auto: mode.auto });
        expect([got.codec, got.level, got.hash], `${kind} ${mode.codec}`).toEqual([want.codec, want.level, want.hash]);
        expect(same(got.payload, want.payload)).toBe(true);
        if (got.codec === CODEC_RAW) expect(got.payload).toBe(chunk);
        else if (got.codec === CODEC_ZERO) expect(got.payload.length).toBe(0);
        else expect(got.payload.buffer === slot.buffer && got.payload.byteOffset === slot.byteOffset).toBe(true);
        expect(same(decodeChunk(got.codec, got.payload, chunk.length), chunk)).toBe(true);
      }
    }
  });

  it("an empty chunk is ZERO and decodes to nothing", () => {
    const c = encodeAs(new Uint8Array(0), { codec: "zstd" });
    expect(c.codec).toBe(CODEC_ZERO);
    expect(decodeChunk(CODEC_ZERO, c.payload, 0)).toEqual(new Uint8Array(0));
  });

  it("zero chunks decode into a dirty buffer as zeros", () => {
    const into = new Uint8Array(4096).fill(9);
    expect(decodeChunk(CODEC_ZERO, new Uint8Array(0), 4096, into).every((b) => b === 0)).toBe(true);
  });
});
