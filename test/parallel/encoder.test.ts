// The stream encoder on the worker pool (its `pool` option): the same bytes as
// the encoder coding inline, for every codec with and without dedup, also
// when batches finish in random order; auto's sink model the same inline and
// pooled; a worker that throws, exits or dies mid stream ends the encode with
// a typed error, never a hang. A batch too small to pay for a post (one
// 64 KiB transaction) is coded on the calling thread, with the same bytes;
// lent small transactions given one per task gather into batches worth a
// post, each transaction's size and order kept.
import { describe, expect, it } from "vitest";
import { decodeStream, type EncoderOptions, init, isMigstreamError, StreamEncoder } from "../../dist/index.js";
import { type ChunkCoder, type CodingPool, type FaultPlan, WorkerPool } from "../../dist/pool.js";
import { throttle } from "../../dist/sim.js";
import { AUTO_UNSETTLED_IN_FLIGHT } from "../../src/codec/auto/sink.js";
import { makeImage } from "../../src/device/pages.js";
import { CODER_IN_FLIGHT } from "../../src/format/encoder.js";
import { SMALL_BATCH_BYTES } from "../../src/parallel/batch.js";
import { rng, usePools, within } from "./dist.js";

const SID = Uint8Array.from({ length: 16 }, (_, i) => 0x40 + i);
const CODEC_LZ4 = 2;
const CODEC_ZSTD = 3;

const pools = usePools(WorkerPool, () => init());

/** `pool`, its coder made with a fault plan per batch (the faulty pool allows them). */
const faulty = (pool: WorkerPool, plan: (batch: number) => FaultPlan | undefined): CodingPool => ({
  threads: pool.threads,
  coder: () => pool.coder({ __test: plan }),
  decoder: () => pool.decoder(),
});

/** Two devices, interleaved, pre-copy then stop-and-copy; transactions of awkward sizes (≈3 MiB in all). */
const IMAGE = makeImage(3 << 20, 5);
const PLAN: [number, number[]][] = [
  [0, [300_000, 1, 700_000]],
  [1, [1 << 20, 4096 * 9 + 5, 0, 65_536]],
];

/**
 * Encodes PLAN on `pool` (or inline); with `borrow`, each transaction is
 * copied into a buffer it gets from the device (the zero-copy path); `write`
 * also sees every output block.
 */
async function encode(
  opts: EncoderOptions,
  pool?: CodingPool,
  borrow?: (d: { buffer?(n: number): Uint8Array }, n: number) => Uint8Array,
  write?: (b: Uint8Array) => void | Promise<void>,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const enc = new StreamEncoder(
    (b) => {
      parts.push(b.slice());
      return write?.(b);
    },
    { ...opts, pool, streamId: SID, maxDevices: 2, maxTransaction: 1 << 20 },
  );
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

/**
 * One device, one stop-and-copy phase, `count` transactions of `size` bytes
 * (each awaited); with `lend` read into the device's buffer() (the zero-copy
 * path a save takes); `paced`: one transaction per task, as a device over a
 * socket gives them.
 */
async function encodeSized(
  opts: EncoderOptions,
  size: number,
  count: number,
  pool?: WorkerPool,
  lend = false,
  paced = false,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const enc = new StreamEncoder((b) => void parts.push(b.slice()), {
    ...opts,
    pool,
    streamId: SID,
    maxTransaction: 1 << 20,
  });
  const dev = enc.device(0, { name: "sized" });
  await dev.phase("stopcopy", 0);
  for (let i = 0; i < count; i++) {
    const at = (i * 777_777) % (IMAGE.length - size);
    const data = IMAGE.subarray(at, at + size);
    if (!lend) await dev.transaction(data);
    else {
      const b = dev.buffer!(size);
      b.set(data);
      await dev.transaction(b);
    }
    if (paced) await new Promise((r) => setImmediate(r));
  }
  await dev.end();
  await enc.finish();
  return Buffer.concat(parts);
}

describe("StreamEncoder with a pool", () => {
  const cases: [string, EncoderOptions][] = [
    ["raw", { codec: "raw" }],
    ["lz4", { codec: "lz4" }],
    ["zstd 1", { codec: "zstd", level: 1 }],
    ["auto", { codec: "auto" }],
  ];
  for (const [name, opts] of cases) {
    for (const dedup of [false, true]) {
      it(`${name}${dedup ? " + dedup" : ""}: workers, caller-runs and inline produce the same bytes (auto: for the same threads)`, async () => {
        const o = { ...opts, dedup, chunkSize: dedup ? 16_384 : 65_536 };
        const inline = await encode(o);
        const a = await encode(o, pools.workers);
        const b = await encode(o, pools.caller);
        expect(same(a, b)).toBe(true);
        // auto weighs coding cost by the threads sharing it: on two threads it may choose otherwise than on one (one-thread pool vs inline: below).
        if (opts.codec !== "auto") expect(same(a, inline)).toBe(true);
        // And it decodes back to the input (checked once per case).
        const back = decodeStream(inline);
        expect(back.devices.map((d) => d.items.length)).toEqual([2 + 3 + 3, 2 + 4 + 4]);
      });
    }
  }

  it("auto with a given sink rate: the same bytes on every pool of the same size; the rate decides the codecs", async () => {
    const slow = await encode({ codec: "auto", sinkRate: 20e6 }, pools.workers);
    expect(same(slow, await encode({ codec: "auto", sinkRate: 20e6 }, pools.caller))).toBe(true);
    const fast = await encode({ codec: "auto", sinkRate: Infinity }, pools.workers);
    const codecs = (s: Uint8Array) => new Set(chunkCodecs(s));
    expect(codecs(slow).has(CODEC_ZSTD)).toBe(true);
    // An unlimited sink: nothing is worth compressing (ZERO and RAW only).
    expect([...codecs(fast)].some((c) => c === CODEC_LZ4 || c === CODEC_ZSTD)).toBe(false);
    expect(fast.length).toBeGreaterThan(slow.length);
  });

  it("auto's sink model is the same inline and pooled: one thread on a pool gives the inline bytes, for any rate", async () => {
    const one = new WorkerPool({ threads: 1 });
    try {
      for (const sinkRate of [10e6, 100e6, 1e9]) {
        for (const dedup of [false, true]) {
          const o: EncoderOptions = { codec: "auto", sinkRate, dedup, chunkSize: dedup ? 16_384 : 65_536 };
          expect(same(await encode(o, one), await encode(o)), `${sinkRate} B/s dedup=${dedup}`).toBe(true);
        }
      }
    } finally {
      await one.close();
    }
  });

  it("with a measured sink, keeps few chunks in flight until the encoder has measured its writes, then CODER_IN_FLIGHT", async () => {
    let now = 0;
    let most = 0;
    // Every chunk through encode (no lent buffers), counted while in flight.
    const counted: CodingPool = {
      threads: 2,
      coder: () => {
        const base = pools.workers.coder();
        return {
          encode(raw, coding, auto) {
            most = Math.max(most, ++now);
            return base.encode(raw, coding, auto).finally(() => now--);
          },
          release: base.release,
        } satisfies ChunkCoder;
      },
      decoder: () => pools.workers.decoder(),
    };
    // Writes that never hold the encoder back (and too few bytes to show it): never measured.
    await encode({ codec: "auto", sinkRate: "measured", chunkSize: 16_384 }, counted);
    expect(most).toBe(AUTO_UNSETTLED_IN_FLIGHT);
    // A 10 MB/s link (slower than the pool codes) that blocks once 256 KiB are queued: measured after a few MiB.
    most = 0;
    await encode(
      { codec: "auto", sinkRate: "measured", chunkSize: 16_384 },
      counted,
      undefined,
      throttle(10e6, undefined, { buffer: 256 << 10 }),
    );
    expect(most).toBe(CODER_IN_FLIGHT);
    // Other codecs measure nothing: all of CODER_IN_FLIGHT from the start.
    most = 0;
    await encode({ codec: "lz4", chunkSize: 16_384 }, counted);
    expect(most).toBe(CODER_IN_FLIGHT);
  });

  it("keeps stream order when batches finish in random order", async () => {
    const r = rng(17);
    const pool = faulty(pools.faulty, () => ({ delayMs: Math.floor(r() * 8) }));
    for (const opts of [
      { codec: "lz4" },
      { codec: "zstd", level: 1, dedup: true, chunkSize: 16_384 },
    ] as EncoderOptions[]) {
      expect(same(await encode(opts, pool), await encode(opts))).toBe(true);
    }
  });

  for (const crash of ["throw", "exit", "uncaught"] as const) {
    it(`a worker that fails (${crash}) mid stream ends the encode with a typed error`, async () => {
      const r = rng(crash.length);
      for (let round = 0; round < 2; round++) {
        const bad = 2 + Math.floor(r() * 6);
        const pool = faulty(pools.faulty, (n) =>
          n === bad ? { crashAfter: 0, crash } : { delayMs: Math.floor(r() * 4) },
        );
        const err = await within(encode({ codec: "lz4", chunkSize: 65_536 }, pool), 15_000, `encode (${crash})`).then(
          () => null,
          (e) => e,
        );
        expect(isMigstreamError(err, "INTERNAL"), String(err)).toBe(true);
      }
      // The pool carries on with fresh workers.
      expect(same(await encode({ codec: "lz4" }, pools.faulty), await encode({ codec: "lz4" }))).toBe(true);
    });
  }

  it("zero copy: a transaction read into device.buffer() moves to a worker whole and gives the same bytes", async () => {
    for (const opts of [
      { codec: "lz4" },
      { codec: "zstd", level: 1 },
      { codec: "auto" },
      { codec: "raw", dedup: true, chunkSize: 16_384 },
    ] as EncoderOptions[]) {
      // auto: compared with a copying encode on two threads too (it weighs threads).
      const copied = await encode(opts, opts.codec === "auto" ? pools.workers : undefined);
      for (const pool of [pools.workers, pools.caller]) {
        const lent: Uint8Array[] = [];
        const asked: number[] = [];
        const borrow = (d: { buffer?(n: number): Uint8Array }, n: number) => {
          expect(typeof d.buffer).toBe("function");
          const b = d.buffer!(n);
          lent.push(b);
          asked.push(n);
          return b;
        };
        const owned = await encode(opts, pool, borrow);
        expect(same(owned, copied), `${opts.codec} dedup=${opts.dedup === true}`).toBe(true);
        // Without dedup every transaction of at least SMALL_BATCH_BYTES went out whole as one batch:
        // moved, so detached here — no copy; smaller non-empty ones (1 B, 36 869 B, 64 KiB: 3 per phase)
        // were copied into a batch that gathers them (their buffers lent again). With dedup the
        // encoder copies chunk by chunk.
        // (A buffer taken back after its copy is reused, lent again or as a batch's, and may move later.)
        const detached = lent.map((b) => b.buffer.byteLength === 0);
        expect(lent.length).toBe(14);
        if (opts.dedup === true) expect(detached.filter(Boolean).length).toBe(0);
        else {
          const large = asked.flatMap((n, i) => (n >= SMALL_BATCH_BYTES ? [i] : []));
          expect(large.length).toBe(6);
          for (const i of large) expect(detached[i], `transaction ${i} (${asked[i]} B) moved`).toBe(true);
        }
      }
    }
  });

  it("zero copy: buffer() is absent when coding inline, and refuses sizes beyond maxTransaction", async () => {
    const inline = new StreamEncoder(() => {}, { codec: "lz4" });
    expect(inline.device(0).buffer).toBeUndefined();
    const enc = new StreamEncoder(() => {}, { codec: "lz4", pool: pools.workers, maxTransaction: 1 << 20 });
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

  it("64 KiB and 1 MiB transactions: the same bytes inline, on workers and caller-runs, lent or copied", async () => {
    for (const opts of [
      { codec: "lz4" },
      { codec: "zstd", level: 1 },
      { codec: "raw", dedup: true },
    ] as EncoderOptions[]) {
      for (const size of [64 << 10, 1 << 20]) {
        const inline = await encodeSized(opts, size, 6);
        for (const pool of [pools.workers, pools.caller]) {
          for (const lend of [false, true]) {
            const pooled = await encodeSized(opts, size, 6, pool, lend);
            expect(same(pooled, inline), `${opts.codec} ${size} B, lend=${lend}`).toBe(true);
          }
        }
      }
    }
  });

  it("a batch too small to pay for a post is coded on the calling thread; lent 64 KiB transactions gather into batches worth one; 1 MiB ones post each", async () => {
    const posts = async (pool: WorkerPool, size: number, count: number, lend: boolean, paced: boolean) => {
      const before = pool.posted;
      await encodeSized({ codec: "lz4" }, size, count, pool, lend, paced);
      return pool.posted - before;
    };
    for (const pool of [pools.workers, pools.caller]) {
      // Copied, one transaction per task: each is a batch of its own, coded here.
      expect(await posts(pool, 64 << 10, 8, false, true)).toBe(0);
      // Lent, one per task, as a device over a socket gives them: held across tasks, 8 chunks make one
      // batch (512 KiB), worth a post (with callerRuns the calling thread may take it: no worker ready).
      const gathered = [await posts(pool, 64 << 10, 8, true, true), await posts(pool, 64 << 10, 16, true, true)];
      if (pool === pools.workers) expect(gathered).toEqual([1, 2]);
      else {
        expect(gathered[0]).toBeLessThanOrEqual(1);
        expect(gathered[1]).toBeLessThanOrEqual(2);
      }
      // Copied transactions given within one task gather into one batch (8 chunks, 512 KiB): worth a post.
      expect(await posts(pool, 64 << 10, 8, false, false)).toBe(1);
      // A lent 1 MiB transaction goes out whole: one job each, posted, unless (callerRuns) it
      // found every worker's queue full and the calling thread took it.
      const big = await posts(pool, 1 << 20, 4, true, true);
      if (pool === pools.workers) expect(big).toBe(4);
      else {
        expect(big).toBeGreaterThanOrEqual(1);
        expect(big).toBeLessThanOrEqual(4);
      }
    }
  });

  it("gathered small transactions (lent, one per task) keep every transaction's size and order, and the inline bytes", async () => {
    // Sizes a device may give: small ones gather, a 0-byte and a 1-byte one among them, a large one in between goes out whole.
    const sizes = [65_536, 1, 40_000, 0, 65_536, 300_000, 4096, 65_536, 65_536, 12_345, 65_536, 65_536, 7];
    const run = async (pool?: WorkerPool) => {
      const parts: Uint8Array[] = [];
      const enc = new StreamEncoder((b) => void parts.push(b.slice()), {
        codec: "lz4",
        pool,
        streamId: SID,
        maxTransaction: 1 << 20,
      });
      const dev = enc.device(0, { name: "gathered" });
      await dev.phase("precopy", 0);
      for (const [i, size] of sizes.entries()) {
        if (i === 6) await dev.phase("stopcopy", 0); // a phase in the middle flushes what is held
        const b = dev.buffer ? dev.buffer(size) : new Uint8Array(size);
        b.set(IMAGE.subarray(i * 10_007, i * 10_007 + size));
        await dev.transaction(b);
        await new Promise((r) => setImmediate(r));
      }
      await dev.end();
      await enc.finish();
      return Buffer.concat(parts);
    };
    const inline = await run();
    for (const pool of [pools.workers, pools.caller]) {
      const pooled = await run(pool);
      expect(same(pooled, inline)).toBe(true);
      const items = decodeStream(pooled).devices[0].items;
      const txns = items.flatMap((it) => (it.kind === "transaction" ? [it.data] : []));
      expect(txns.map((d) => d.length)).toEqual(sizes);
      for (const [i, d] of txns.entries())
        expect(same(d, IMAGE.subarray(i * 10_007, i * 10_007 + sizes[i]))).toBe(true);
      expect(items.map((it) => (it.kind === "phase" ? it.phase : "t")).join(" ")).toBe(
        `precopy ${"t ".repeat(6)}stopcopy ${"t ".repeat(7)}`.trim(),
      );
    }
  });

  it("the encoder has its coder send held chunks before it waits on them (phase, end, a full pipeline)", async () => {
    // A coder that counts flush() calls and what was held when each came.
    const pool = pools.workers;
    let flushes = 0;
    const counting: CodingPool = {
      threads: pool.threads,
      coder: () => {
        const c = pool.coder();
        return { ...c, flush: () => (flushes++, c.flush?.()) } as ChunkCoder;
      },
      decoder: () => pool.decoder(),
    };
    const enc = new StreamEncoder(() => {}, { codec: "lz4", pool: counting, streamId: SID, maxTransaction: 1 << 20 });
    const dev = enc.device(0);
    await dev.phase("stopcopy", 0);
    const afterPhase = flushes;
    // More lent transactions than the pipeline holds: room() must flush, or this would only go on by the hold timer.
    for (let i = 0; i < CODER_IN_FLIGHT; i++) {
      const b = dev.buffer!(1000);
      b.fill(i);
      await dev.transaction(b);
    }
    expect(flushes).toBeGreaterThan(afterPhase);
    const beforeEnd = flushes;
    await dev.end();
    expect(flushes).toBeGreaterThan(beforeEnd);
    await enc.finish();
  });

  it("rejects a chunk above the limit, a bad sink rate and a bad level with typed errors", async () => {
    const coder = pools.workers.coder();
    await expect(coder.encode(new Uint8Array((8 << 20) + 1), { codec: "lz4", level: 1 })).rejects.toMatchObject({
      code: "LIMIT",
    });
    expect(() => new StreamEncoder(() => {}, { codec: "auto", sinkRate: 0, pool: pools.workers })).toThrow(
      expect.objectContaining({ code: "USAGE", field: "sinkRate" }),
    );
    expect(() => new StreamEncoder(() => {}, { codec: "lz4", level: 0, pool: pools.workers })).toThrow(
      expect.objectContaining({ code: "USAGE", field: "level" }),
    );
    await expect(pools.workers.encode(new Uint8Array(10), { codec: "lz4", level: 0 })).rejects.toMatchObject({
      code: "USAGE",
    });
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
