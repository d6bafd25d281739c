// The stream encoder on the worker pool (poolCoder): the same bytes as the
// encoder coding inline, for every codec with and without dedup, also when
// batches finish in random order; a worker that throws, exits or dies mid
// stream ends the encode with a typed error, never a hang.
import { describe, expect, it } from "vitest";
import {
  CODER_IN_FLIGHT,
  decodeStream,
  isMigstreamError,
  poolCoder,
  ready,
  SinkMeter,
  StreamEncoder,
  UNSETTLED_IN_FLIGHT,
  WorkerPool,
  type ChunkCoder,
  type EncoderOptions,
} from "../../dist/index.js";
import { makeImage } from "../../src/device/pages.js";
import { rng, usePools, within } from "./dist.js";

const SID = Uint8Array.from({ length: 16 }, (_, i) => 0x40 + i);
const CODEC_LZ4 = 2;
const CODEC_ZSTD = 3;

const pools = usePools(WorkerPool, () => ready());

/** Two devices, interleaved, pre-copy then stop-and-copy; transactions of awkward sizes (≈3 MiB in all). */
const IMAGE = makeImage(3 << 20, 5);
const PLAN: [number, number[]][] = [
  [0, [300_000, 1, 700_000]],
  [1, [1 << 20, 4096 * 9 + 5, 0, 65_536]],
];

/** Encodes PLAN; with `borrow`, each transaction is copied into a buffer it gets from the device (the zero-copy path). */
async function encode(opts: EncoderOptions, coder?: ChunkCoder, borrow?: (d: { buffer?(n: number): Uint8Array }, n: number) => Uint8Array): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const enc = new StreamEncoder((b) => void parts.push(b.slice()), { ...opts, coder, streamId: SID, maxDevices: 2, maxTransaction: 1 << 20 });
  const devs = [enc.device(0, { name: "a" }), enc.device(1, { name: "b", metadata: new Uint8Array([1, 2, 3]) })];
  let at = 0;
  for (const phase of ["precopy", "stopcopy"] as const) {
    for (let d = 0; d < 2; d++) await devs[d].phase(phase, 0);
    for (const [d, sizes] of PLAN) {
      for (const n of sizes) {
        const data = IMAGE.subarray(at % (IMAGE.length - n), (at % (IMAGE.length - n)) + n);
        at += n + 12_345;
        if (borrow === undefined) await devs[d].transaction(data);
        else {
          const b = borrow(devs[d], n);
          b.set(data);
          await devs[d].transaction(b);
        }
      }
    }
  }
  for (const d of devs) await d.end();
  await enc.finish();
  return Buffer.concat(parts);
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;


describe("StreamEncoder with poolCoder", () => {
  const cases: [string, EncoderOptions][] = [
    ["raw", { codec: "raw" }],
    ["lz4", { codec: "lz4" }],
    ["zstd 1", { codec: "zstd", level: 1 }],
    ["auto", { codec: "auto" }],
  ];
  for (const [name, opts] of cases) {
    for (const dedup of [false, true]) {
      it(`${name}${dedup ? " + dedup" : ""}: workers, caller-runs and inline produce the same bytes`, async () => {
        const o = { ...opts, dedup, chunkSize: dedup ? 16_384 : 65_536 };
        const inline = await encode(o);
        const a = await encode(o, poolCoder(pools.workers));
        const b = await encode(o, poolCoder(pools.caller));
        expect(same(a, inline)).toBe(true);
        expect(same(b, inline)).toBe(true);
        // And it decodes back to the input (checked once per case).
        const back = decodeStream(inline);
        expect(back.devices.map((d) => d.items.length)).toEqual([2 + 3 + 3, 2 + 4 + 4]);
      });
    }
  }

  it("auto with a given sink rate: the same bytes on every pool of the same size; the rate decides the codecs", async () => {
    const slow = await encode({ codec: "auto" }, poolCoder(pools.workers, { sink: 20e6 }));
    expect(same(slow, await encode({ codec: "auto" }, poolCoder(pools.caller, { sink: 20e6 })))).toBe(true);
    const fast = await encode({ codec: "auto" }, poolCoder(pools.workers, { sink: Infinity }));
    const codecs = (s: Uint8Array) => new Set(chunkCodecs(s));
    expect(codecs(slow).has(CODEC_ZSTD)).toBe(true);
    // An unlimited sink: nothing is worth compressing (ZERO and RAW only).
    expect([...codecs(fast)].some((c) => c === CODEC_LZ4 || c === CODEC_ZSTD)).toBe(false);
    expect(fast.length).toBeGreaterThan(slow.length);
  });

  it("with a SinkMeter, keeps UNSETTLED_IN_FLIGHT chunks in flight until the meter has measured the sink, then CODER_IN_FLIGHT", async () => {
    const meter = new SinkMeter();
    const base = poolCoder(pools.faulty, { sink: meter, __test: () => ({ delayMs: 2 }) });
    let now = 0;
    let most = 0;
    // Every chunk through encode (no lent buffers), counted while in flight.
    const counted: ChunkCoder = {
      copiesInput: true,
      encode(raw, codec, level) {
        most = Math.max(most, ++now);
        return base.encode(raw, codec, level).finally(() => now--);
      },
      release: base.release,
      inFlight: base.inFlight,
    };
    await encode({ codec: "auto", chunkSize: 16_384 }, counted);
    expect(most).toBe(UNSETTLED_IN_FLIGHT);
    // The sink holds the writer back: 1 MiB per 10 ms, 16 times.
    for (let i = 0, t = 0; i < 16; i++, t += 10) meter.record(1 << 20, t, t + 10);
    expect(meter.settled).toBe(true);
    most = 0;
    await encode({ codec: "auto", chunkSize: 16_384 }, counted);
    expect(most).toBe(CODER_IN_FLIGHT);
    // A limit that is no number of chunks leaves the encoder's own.
    most = 0;
    await encode({ codec: "auto", chunkSize: 16_384 }, { ...counted, inFlight: () => Number.NaN });
    expect(most).toBe(CODER_IN_FLIGHT);
  });

  it("keeps stream order when batches finish in random order", async () => {
    const r = rng(17);
    const coder = poolCoder(pools.faulty, { __test: () => ({ delayMs: Math.floor(r() * 8) }) });
    for (const opts of [{ codec: "lz4" }, { codec: "zstd", level: 1, dedup: true, chunkSize: 16_384 }] as EncoderOptions[]) {
      expect(same(await encode(opts, coder), await encode(opts))).toBe(true);
    }
  });

  for (const crash of ["throw", "exit", "uncaught"] as const) {
    it(`a worker that fails (${crash}) mid stream ends the encode with a typed error`, async () => {
      const r = rng(crash.length);
      for (let round = 0; round < 2; round++) {
        const bad = 2 + Math.floor(r() * 6);
        const coder = poolCoder(pools.faulty, { __test: (n) => (n === bad ? { crashAfter: 0, crash } : { delayMs: Math.floor(r() * 4) }) });
        const err = await within(encode({ codec: "lz4", chunkSize: 65_536 }, coder), 15_000, `encode (${crash})`).then(
          () => null,
          (e) => e,
        );
        expect(isMigstreamError(err, "INTERNAL"), String(err)).toBe(true);
      }
      // The pool carries on with fresh workers.
      expect(same(await encode({ codec: "lz4" }, poolCoder(pools.faulty)), await encode({ codec: "lz4" }))).toBe(true);
    });
  }

  it("zero copy: a transaction read into device.buffer() moves to a worker whole and gives the same bytes", async () => {
    for (const opts of [{ codec: "lz4" }, { codec: "zstd", level: 1 }, { codec: "auto" }, { codec: "raw", dedup: true, chunkSize: 16_384 }] as EncoderOptions[]) {
      const copied = await encode(opts);
      for (const pool of [pools.workers, pools.caller]) {
        const lent: Uint8Array[] = [];
        const borrow = (d: { buffer?(n: number): Uint8Array }, n: number) => {
          expect(typeof d.buffer).toBe("function");
          const b = d.buffer!(n);
          lent.push(b);
          return b;
        };
        const owned = await encode(opts, poolCoder(pool), borrow);
        expect(same(owned, copied), `${opts.codec} dedup=${opts.dedup === true}`).toBe(true);
        // Without dedup every non-empty transaction (PLAN has two empty ones) went out whole as one
        // batch: moved, so detached here — no copy. With dedup the encoder copies chunk by chunk.
        const moved = lent.filter((b) => b.buffer.byteLength === 0).length;
        expect(lent.length).toBe(14);
        expect(moved).toBe(opts.dedup === true ? 0 : lent.length - 2);
      }
    }
  });

  it("zero copy: buffer() is absent when coding inline, and refuses sizes beyond maxTransaction", async () => {
    const inline = new StreamEncoder(() => {}, { codec: "lz4" });
    expect(inline.device(0).buffer).toBeUndefined();
    const enc = new StreamEncoder(() => {}, { codec: "lz4", coder: poolCoder(pools.workers), maxTransaction: 1 << 20 });
    const d = enc.device(0);
    expect(() => d.buffer!((1 << 20) + 1)).toThrow(expect.objectContaining({ code: "USAGE" }));
    expect(d.buffer!(1000).length).toBe(1000);
    // A lent buffer goes over once: passing it again (now detached, 0 bytes) is refused, not an empty transaction.
    await d.phase("stopcopy", 0);
    const b = d.buffer!(300_000);
    b.fill(7);
    await d.transaction(b);
    expect(b.buffer.byteLength).toBe(0);
    await expect(d.transaction(b)).rejects.toMatchObject({ code: "USAGE", field: "data" });
  });

  it("rejects a chunk above the limit and a bad sink rate with typed errors", async () => {
    const coder = poolCoder(pools.workers);
    await expect(coder.encode(new Uint8Array((8 << 20) + 1), "lz4")).rejects.toMatchObject({ code: "LIMIT" });
    expect(() => poolCoder(pools.workers, { sink: 0 })).toThrow(expect.objectContaining({ code: "USAGE" }));
    await expect(coder.encode(new Uint8Array(10), "lz4", 0)).rejects.toMatchObject({ code: "USAGE" });
  });
});

/** Codec ids of a stream's CHUNK frames, read off the frame layer (type 4, payload byte 0). */
function chunkCodecs(s: Uint8Array): number[] {
  const out: number[] = [];
  const dv = new DataView(s.buffer, s.byteOffset, s.byteLength);
  let at = 64; // stream header
  while (at + 16 <= s.length) {
    const type = s[at];
    const len = dv.getUint32(at + 8, true);
    if (type === 4) out.push(s[at + 16]);
    at += 16 + len + 8;
  }
  return out;
}
