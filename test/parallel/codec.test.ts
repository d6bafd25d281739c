// Codec jobs through the pool: workers and inline give byte-identical results,
// hashes match an independent XXH3, LZ4 payloads decode with an independent
// decoder, and bad chunks fail with the same typed error on both paths.
import { createRequire } from "node:module";
import { xxhash3 } from "hash-wasm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CodecName, isMigstreamError } from "../../dist/index.js";
import { type CodedChunk, WorkerPool } from "../../dist/pool.js";
import { makeImage } from "../../src/device/pages.js";
import { ensureDist, rng, within } from "./dist.js";

const lz4js = createRequire(import.meta.url)("lz4js") as {
  decompressBlock(src: Uint8Array, dst: Uint8Array, sIndex: number, sLength: number, dIndex: number): number;
};

const CODEC_RAW = 0;
const CODEC_ZERO = 1;
const CODEC_LZ4 = 2;
const CODEC_ZSTD = 3;

let inline: WorkerPool;
let workers: WorkerPool;
beforeAll(async () => {
  ensureDist();
  inline = new WorkerPool({ threads: 1 });
  workers = new WorkerPool({ threads: 2, maxInFlight: 6 });
  await workers.start();
});
afterAll(async () => {
  await Promise.all([inline.close(), workers.close()]);
});

/** Chunks of a mixed-page image, sizes varied (including empty and odd sizes). */
function chunks(seed: number): Uint8Array[] {
  const image = makeImage(3 << 20, seed);
  const sizes = [0, 1, 4096, 10_000, 65_536, 262_144, 65_537, 131_072, 4096 * 9, 1 << 20];
  const out: Uint8Array[] = [];
  let off = 0;
  for (let i = 0; off < image.length; i++) {
    const n = Math.min(sizes[i % sizes.length], image.length - off);
    out.push(image.slice(off, off + n));
    off += n;
  }
  out.push(new Uint8Array(50_000)); // all zero
  return out;
}

/** auto's context in these tests: a slow sink, where zstd pays for heap-like pages. */
const SLOW_SINK = { sinkRate: 20e6 };

async function encodeAll(pool: WorkerPool, raws: Uint8Array[], codec: CodecName): Promise<CodedChunk[]> {
  const out: CodedChunk[] = [];
  const auto = codec === "auto" ? SLOW_SINK : undefined;
  // copy: true keeps `raws` usable for the other pool.
  for await (const c of pool.mapOrdered(
    raws.map((raw) => ({ op: "encode" as const, raw, options: { codec, copy: true, auto } })),
  )) {
    out.push(c);
  }
  return out;
}

const hex = (h: bigint) => h.toString(16).padStart(16, "0");

describe("codec jobs", () => {
  it("copy: true copies a Node Buffer view (whose slice() would alias it) and never detaches the caller's buffer", async () => {
    const whole = Buffer.from(makeImage(1 << 20, 4));
    const ref = Buffer.from(whole);
    for (const pool of [inline, workers]) {
      const c = await pool.encode(whole.subarray(0, 65_536), { codec: "lz4", copy: true });
      expect(c.rawLength).toBe(65_536);
      const back = await pool.decode({ ...c, copy: true });
      expect(Buffer.compare(back, ref.subarray(0, 65_536))).toBe(0);
    }
    expect(whole.byteLength).toBe(1 << 20);
    expect(Buffer.compare(whole, ref)).toBe(0);
  });

  it("batches: each chunk coded as alone, results in place; decode batches verify; the first failure is named", async () => {
    const raws = chunks(21)
      .filter((c) => c.length > 0 && c.length <= 262_144)
      .slice(0, 6);
    for (const codec of ["lz4", "zstd", "auto"] as const) {
      const single = await encodeAll(inline, raws, codec);
      const total = raws.reduce((n, r) => n + r.length, 0);
      const buffer = new Uint8Array(total);
      const spans: { offset: number; length: number }[] = [];
      let at = 0;
      for (const r of raws) {
        buffer.set(r, at);
        spans.push({ offset: at, length: r.length });
        at += r.length;
      }
      const auto = codec === "auto" ? SLOW_SINK : undefined;
      const res = await workers.submit({ op: "encodeBatch", buffer, spans, options: { codec, auto } });
      expect(buffer.byteLength).toBe(0); // moved
      expect(res.failed).toBeUndefined();
      res.items.forEach((it, i) => {
        expect([it.codec, it.level, it.hash]).toEqual([single[i].codec, single[i].level, single[i].hash]);
        const payload = res.buffer.subarray(spans[i].offset, spans[i].offset + it.length);
        expect(Buffer.compare(payload, single[i].payload)).toBe(0);
      });
      // Decode them back in one batch, each payload at the start of a room of its raw size.
      const room = new Uint8Array(total);
      const dspans = spans.map((sp, i) => {
        room.set(single[i].payload, sp.offset);
        return {
          offset: sp.offset,
          coded: single[i].payload.length,
          codec: single[i].codec,
          rawLength: sp.length,
          hash: single[i].hash,
        };
      });
      dspans[3] = { ...dspans[3], hash: dspans[3].hash ^ 1n };
      const back = await workers.submit({ op: "decodeBatch", buffer: room, spans: dspans });
      expect(back.items.length).toBe(3);
      for (const [i, it] of back.items.entries())
        expect(Buffer.compare(back.buffer.subarray(spans[i].offset, spans[i].offset + it.length), raws[i])).toBe(0);
      expect(back.failed).toMatchObject({ index: 3, error: { code: "CHECKSUM" } });
    }
  });

  for (const codec of ["raw", "zero", "lz4", "zstd", "auto"] as const) {
    it(`${codec}: workers and inline produce byte-identical chunks that decode back`, async () => {
      const raws = chunks(codec.length);
      const a = await encodeAll(inline, raws, codec);
      const b = await encodeAll(workers, raws, codec);
      expect(b.length).toBe(raws.length);
      for (let i = 0; i < raws.length; i++) {
        expect({ ...b[i], payload: null }).toEqual({ ...a[i], payload: null });
        expect(Buffer.from(b[i].payload).equals(Buffer.from(a[i].payload))).toBe(true);
        expect(b[i].rawLength).toBe(raws[i].length);
      }
      // Every chunk decodes back through the workers, verified against its hash.
      const back: Uint8Array[] = [];
      for await (const r of workers.decodeOrdered(b)) back.push(r);
      back.forEach((r, i) => {
        expect(Buffer.from(r).equals(Buffer.from(raws[i]))).toBe(true);
      });
      if (codec === "zero")
        expect(b.some((c) => c.codec === CODEC_ZERO) && b.some((c) => c.codec === CODEC_RAW)).toBe(true);
      if (codec === "lz4") expect(b.some((c) => c.codec === CODEC_LZ4)).toBe(true);
      // zstd loads in every worker as it does inline (auto picks it for a slow sink).
      if (codec === "zstd" || codec === "auto") expect(b.some((c) => c.codec === CODEC_ZSTD)).toBe(true);
    });
  }

  it("hashes are XXH3-64 (checked against hash-wasm) and LZ4 payloads decode with lz4js", async () => {
    const raws = chunks(5);
    const coded = await encodeAll(workers, raws, "lz4");
    for (let i = 0; i < raws.length; i++) {
      expect(hex(coded[i].hash)).toBe(await xxhash3(raws[i]));
      if (coded[i].codec !== CODEC_LZ4) continue;
      const dst = new Uint8Array(raws[i].length);
      const n = lz4js.decompressBlock(coded[i].payload, dst, 0, coded[i].payload.length, 0);
      expect(n).toBe(raws[i].length);
      expect(Buffer.from(dst).equals(Buffer.from(raws[i]))).toBe(true);
    }
  });

  it("moves the input and returns payloads that own their buffers", async () => {
    const raw = makeImage(65_536, 3);
    const ref = raw.slice();
    const c = await workers.encode(raw, { codec: "raw" });
    expect(raw.byteLength).toBe(0); // detached at submission
    expect(c.codec).toBe(CODEC_RAW);
    expect(c.payload.buffer.byteLength).toBe(c.payload.length);
    expect(Buffer.from(c.payload).equals(Buffer.from(ref))).toBe(true);
    const z = await workers.encode(new Uint8Array(8192), { codec: "lz4" });
    const z2 = await workers.encode(new Uint8Array(8192), { codec: "lz4" }); // empty payload moved twice
    expect([z.codec, z.payload.length, z2.codec, z2.payload.length]).toEqual([CODEC_ZERO, 0, CODEC_ZERO, 0]);
  });

  it("bad chunks fail with the same typed error inline and in workers", async () => {
    const raw = makeImage(65_536, 11);
    const good = await inline.encode(raw, { codec: "lz4", copy: true });
    expect(good.codec).toBe(CODEC_LZ4);
    const cases: [string, () => Parameters<WorkerPool["decode"]>[0], string][] = [
      ["wrong hash", () => ({ ...good, payload: good.payload.slice(), hash: good.hash ^ 1n }), "CHECKSUM"],
      ["corrupt payload", () => ({ ...good, payload: good.payload.slice(0, good.payload.length - 9) }), "CODEC"],
      ["unknown codec", () => ({ ...good, payload: good.payload.slice(), codec: 77 }), "CODEC"],
      ["raw length beyond the limit", () => ({ ...good, payload: good.payload.slice(), rawLength: 1 << 30 }), "LIMIT"],
    ];
    for (const [what, make, code] of cases) {
      for (const pool of [inline, workers]) {
        const err = await within(pool.decode(make()), 10_000, what).catch((e) => e);
        expect(isMigstreamError(err, code as never), `${what} (${pool.inline ? "inline" : "workers"}): ${err}`).toBe(
          true,
        );
      }
    }
    const bad = await workers.encode(raw.slice(), { codec: "nope" as CodecName }).catch((e) => e);
    expect(isMigstreamError(bad, "USAGE")).toBe(true);
    expect(workers.workers).toBe(2); // job errors never cost a worker
  });

  it("a corrupted chunk in a decode stream fails the pipeline, after an in-order prefix", async () => {
    const r = rng(3);
    const raws = chunks(9).filter((c) => c.length > 0);
    const coded = await encodeAll(workers, raws, "lz4");
    const bad = 3 + Math.floor(r() * (coded.length - 4));
    coded[bad] = { ...coded[bad], hash: coded[bad].hash + 1n };
    const got: Uint8Array[] = [];
    const err = await within(
      (async () => {
        for await (const v of workers.decodeOrdered(coded)) got.push(v);
      })(),
      15_000,
      "decode pipeline",
    ).catch((e) => e);
    expect(isMigstreamError(err, "CHECKSUM")).toBe(true);
    expect(got.length).toBeLessThanOrEqual(bad);
    got.forEach((v, i) => {
      expect(Buffer.from(v).equals(Buffer.from(raws[i]))).toBe(true);
    });
  });
});
