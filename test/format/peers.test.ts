// Chunk payloads against independent codecs: every zstd chunk of a stream
// decodes with the zstd CLI and every LZ4 chunk with lz4js to the bytes its
// raw_hash names; and streams whose chunks were made by those peers decode.
import { createRequire } from "node:module";
import { beforeAll, describe, expect, it } from "vitest";
import { CODEC_LZ4, CODEC_ZSTD, init } from "../../src/codec/index.js";
import { type DeviceInput, decodeStream, encodeStream } from "../../src/format/index.js";
import { xxh3_64 } from "../../src/kernels/xxh3.js";
import { lz4jsDecode, zstdCliDecode, zstdCliEncode } from "../codec/peers.js";
import { editHeader, expectSameDevices, image, reframe, same, splitFrames } from "./helpers.js";

const lz4js = createRequire(import.meta.url)("lz4js") as {
  compressBlock(src: Uint8Array, dst: Uint8Array, sIndex: number, sLength: number, hashTable: Uint32Array): number;
};

beforeAll(async () => {
  await init();
});

const IMG = image(1_500_000, 31);
const input: DeviceInput[] = [
  {
    id: 0,
    items: [
      { kind: "phase", phase: "stopcopy", iteration: 0 },
      { kind: "transaction", data: IMG.subarray(0, 1_000_000) },
      { kind: "transaction", data: IMG.subarray(1_000_000) },
    ],
  },
];

/** Raw bytes of each chunk in stream order, cut from the input by the chunk lengths. */
function chunkPayloads(s: Uint8Array) {
  const all = Buffer.concat([IMG.subarray(0, 1_000_000), IMG.subarray(1_000_000)]);
  let at = 0;
  return splitFrames(s)
    .frames.filter((f) => f.type === 4)
    .map((f) => {
      const dv = new DataView(f.payload.buffer);
      const n = dv.getUint32(4, true);
      const raw = all.subarray(at, at + n);
      at += n;
      return { codec: f.payload[0], raw, hash: dv.getBigUint64(12, true), coded: f.payload.subarray(20) };
    });
}

describe("independent codecs", () => {
  it("zstd chunks decode with the zstd CLI", () => {
    for (const level of [1, 3, 9]) {
      const s = encodeStream(input, { codec: "zstd", level, chunkSize: 128 << 10 });
      const zs = chunkPayloads(s).filter((c) => c.codec === CODEC_ZSTD);
      expect(zs.length).toBeGreaterThan(4);
      // One CLI call for all frames of this level: concatenated zstd frames decode to the concatenated content.
      const out = zstdCliDecode(Buffer.concat(zs.map((c) => c.coded)));
      expect(same(out, Buffer.concat(zs.map((c) => c.raw)))).toBe(true);
      for (const c of zs) expect(xxh3_64(c.raw)).toBe(c.hash);
    }
  });

  it("LZ4 chunks decode with lz4js", () => {
    const s = encodeStream(input, { codec: "lz4", chunkSize: 64 << 10 });
    const ls = chunkPayloads(s).filter((c) => c.codec === CODEC_LZ4);
    expect(ls.length).toBeGreaterThan(8);
    for (const c of ls) {
      expect(same(lz4jsDecode(c.coded, c.raw.length), c.raw)).toBe(true);
      expect(xxh3_64(c.raw)).toBe(c.hash);
    }
  });

  it("a stream whose chunks were coded by the zstd CLI and lz4js decodes", async () => {
    const base = splitFrames(encodeStream(input, { codec: "raw", chunkSize: 64 << 10 }));
    const raws = chunkPayloads(encodeStream(input, { codec: "raw", chunkSize: 64 << 10 }));
    let k = 0;
    const frames = base.frames.map((f) => {
      if (f.type !== 4 || f.payload[0] !== 0) return f;
      const c = raws[k++];
      let codec: number;
      let coded: Uint8Array;
      if (k % 2 === 0) {
        codec = CODEC_ZSTD;
        coded = zstdCliEncode(c.raw, ["-5"]);
      } else {
        codec = CODEC_LZ4;
        const dst = new Uint8Array(c.raw.length + (c.raw.length >> 8) + 64);
        coded = dst.slice(0, lz4js.compressBlock(c.raw, dst, 0, c.raw.length, new Uint32Array(1 << 16)));
      }
      const p = new Uint8Array(20 + coded.length);
      p.set(f.payload.subarray(0, 20));
      p[0] = codec;
      p[1] = codec === CODEC_ZSTD ? 5 : 0;
      new DataView(p.buffer).setUint32(8, coded.length, true);
      p.set(coded, 20);
      return { ...f, payload: p };
    });
    // Coded lengths changed: fix the device trailer's coded_bytes and the stream's (the digest does not depend on codecs).
    const coded = frames.filter((f) => f.type === 4).reduce((n, f) => n + f.payload.length - 20, 0);
    for (const f of frames) {
      if (f.type === 5) new DataView(f.payload.buffer).setBigUint64(32, BigInt(coded), true);
      if (f.type === 6) new DataView(f.payload.buffer).setBigUint64(40, BigInt(coded), true);
    }
    expect(k).toBe(raws.length);
    const s = await reframe(
      editHeader(base.header, () => {}),
      frames,
    );
    expectSameDevices(decodeStream(s), input);
  });
});
