// The worker pool as a stream encoder's ChunkCoder and a stream decoder's
// ChunkDecoder (the seam: format/chunk-coders.ts), which WorkerPool.coder()
// and WorkerPool.decoder() hand out:
//
//   const pool = new WorkerPool();                    // one worker per core
//   const enc = new StreamEncoder(write, { codec: "auto", sinkRate: "measured", pool });
//   ...
//   await enc.finish();
//   for await (const ev of new StreamDecoder({ pool }).events(source)) ...
//   await pool.close();
//
// Chunks are copied into batches (batch.ts) and coded on the pool's threads
// (inline when it has one); the encoder frames them in stream order, the
// decoder releases them in stream order. auto's context comes with each chunk
// from the encoder (its sink rate, the pool's threads); a batch is coded with
// the context of its first chunk. An owned buffer too small to be a batch of
// its own (a device's 64 KiB transaction) is copied into a batch that gathers
// the next ones too, across tasks, until it is full or the encoder flushes it
// before waiting (batch.ts, `hold`): the coding work is paid per batch, and
// the buffer goes back to be lent again.

import type { AutoContext } from "../codec/auto/decide.js";
import { type CodedChunk, MAX_CHUNK_SIZE } from "../codec/coder.js";
import type { Coding } from "../codec/coding.js";
import { CODEC_LZ4, CODEC_RAW, CODEC_ZSTD } from "../codec/ids.js";
import { init } from "../codec/index.js";
import { zstdAvailable } from "../codec/zstd.js";
import { MigstreamError } from "../errors.js";
import type { ChunkCoder, ChunkDecodeRequest, ChunkDecoder } from "../format/chunk-coders.js";
import { CODER_IN_FLIGHT } from "../format/encoder.js";
import { PARALLEL_DECODE_IN_FLIGHT } from "../format/parallel-decode.js";
import { BATCH_MAX_CHUNKS, Batcher, SMALL_BATCH_BYTES } from "./batch.js";
import { decodeIntoRoom } from "./codec-job.js";
import {
  type DecodeSpan,
  type EncodeOptions,
  type EncodeSpan,
  type FaultPlan,
  fromWireError,
  toWireError,
} from "./jobs.js";
import type { WorkerPool } from "./pool.js";

/** Chunks per batch: enough to save messages, few enough that every thread has work queued. */
function batchChunks(pool: WorkerPool, inFlight: number): number {
  return Math.max(1, Math.min(BATCH_MAX_CHUNKS, Math.floor(inFlight / (2 * pool.threads))));
}

function tooLarge(n: number): MigstreamError {
  return new MigstreamError("LIMIT", `chunk of ${n} bytes exceeds ${MAX_CHUNK_SIZE}`);
}

/** An encode job's options for `coding` (raw and zero take no level). */
const jobOptions = (coding: Coding, auto: AutoContext | undefined, test: FaultPlan | undefined): EncodeOptions => ({
  codec: coding.codec,
  level: coding.level === 0 ? undefined : coding.level,
  auto: coding.codec === "auto" ? auto : undefined,
  __test: test,
});

/** Options of WorkerPool.coder(). */
export interface PoolCoderOptions {
  /** Test only: a fault plan for the n-th batch sent (the pool must allow fault injection). */
  __test?: (batch: number) => FaultPlan | undefined;
}

/** A ChunkCoder that codes on `pool`, in batches (WorkerPool.coder). */
export function poolCoder(
  pool: WorkerPool,
  options: PoolCoderOptions = {},
): ChunkCoder & { lend(n: number): Uint8Array } {
  const faults = options.__test;
  let sent = 0;
  const batcher = new Batcher<EncodeSpan, CodedChunk, EncodeOptions>(
    batchChunks(pool, CODER_IN_FLIGHT),
    (buffer, spans, options) =>
      pool.submit({ op: "encodeBatch", buffer, spans, options: { ...options, __test: faults?.(sent++) } }),
    (r, i, span) => {
      const it = r.items[i];
      return {
        codec: it.codec,
        level: it.level,
        payload: r.buffer.subarray(span.offset, span.offset + it.length),
        rawLength: span.length,
        hash: it.hash,
      };
    },
  );
  return {
    encode(raw, coding, auto) {
      if (!(raw instanceof Uint8Array))
        return Promise.reject(new MigstreamError("USAGE", "raw must be a Uint8Array", { field: "raw" }));
      const n = raw.length;
      if (n > MAX_CHUNK_SIZE) return Promise.reject(tooLarge(n));
      // A batch holds one coding and is coded with auto's context as it stood when the batch began.
      return batcher.add(
        n,
        `${coding.codec}/${coding.level}`,
        (offset) => ({ offset, length: n }),
        (into) => into.set(raw),
        () => jobOptions(coding, auto, undefined),
      );
    },
    lend(n) {
      if (!Number.isSafeInteger(n) || n < 0 || n > MAX_CHUNK_SIZE * BATCH_MAX_CHUNKS)
        throw new MigstreamError("USAGE", `cannot lend a ${n}-byte buffer`, { field: "size" });
      return batcher.lend(n);
    },
    encodeOwned(buffer, chunks, coding, auto) {
      if (!batcher.adoptable(buffer, chunks.length) || chunks.some((c) => c.length > MAX_CHUNK_SIZE)) return null;
      if (buffer.length < SMALL_BATCH_BYTES) {
        // Too small to be worth a post alone: gathered with the next ones (copied), the buffer lent again.
        const key = `${coding.codec}/${coding.level}`;
        const meta = () => jobOptions(coding, auto, undefined);
        const out = chunks.map((c) => {
          const raw = buffer.subarray(c.offset, c.offset + c.length);
          return batcher.add(
            c.length,
            key,
            (offset) => ({ offset, length: c.length }),
            (into) => into.set(raw),
            meta,
            true,
          );
        });
        batcher.reclaim(buffer);
        return out;
      }
      return batcher.adopt(
        buffer,
        chunks.map((c) => ({ offset: c.offset, length: c.length })),
        jobOptions(coding, auto, undefined),
      );
    },
    flush() {
      batcher.flush();
    },
    release(chunk) {
      batcher.release(chunk.payload);
    },
  };
}

/** Options of WorkerPool.decoder(). */
export interface PoolDecoderOptions {
  /** Chunks in flight the batch size is planned for; default PARALLEL_DECODE_IN_FLIGHT. */
  inFlight?: number;
  /**
   * Decode LZ4 and RAW chunks on the calling thread (default true): the LZ4
   * kernel decodes and verifies a chunk about as fast as it can be copied
   * into a batch, posted and returned, so a second thread gains little on
   * them and costs a worker's start-up. zstd chunks go to the pool. Either
   * way a chunk is decoded on the calling thread when no worker has room for
   * it (WorkerPool.hasWorkerRoom): the calling thread takes its share of the
   * work instead of waiting.
   */
  cheapInline?: boolean;
}

/** Output buffers kept for reuse by poolDecoder's inline path (one per chunk in flight). */
const INLINE_SPARE_BUFFERS = PARALLEL_DECODE_IN_FLIGHT + 4;
/** Smallest such buffer: one default chunk, so that buffers fit later chunks. */
const MIN_INLINE_BUFFER = 256 << 10;

/** A ChunkDecoder that decodes and verifies chunks on `pool`, in batches (see the example above). */
export function poolDecoder(
  pool: WorkerPool,
  options: PoolDecoderOptions = {},
): ChunkDecoder & {
  copiesInput: true;
  decodeNow(req: ChunkDecodeRequest): Uint8Array | null;
  decodesHere(codec: number): boolean;
} {
  const cheapInline = options.cheapInline ?? true;
  const spare: ArrayBuffer[] = [];
  const mine = new WeakSet<ArrayBuffer>();
  let zstdAsked = false;
  /**
   * Decodes one chunk here, straight into a recycled buffer, before it returns
   * (the payload is a view the caller reuses: copiesInput). Same checks and
   * errors as a worker's. The codec must be loaded here (see usable()).
   */
  const here = (req: ChunkDecodeRequest): Uint8Array => {
    const { codec, payload, rawLength, hash } = req;
    const room = Number.isSafeInteger(rawLength) && rawLength > 0 && rawLength <= MAX_CHUNK_SIZE ? rawLength : 0;
    const i = spare.findIndex((b) => b.byteLength >= room);
    const buf = i >= 0 ? spare.splice(i, 1)[0] : new ArrayBuffer(Math.max(room, MIN_INLINE_BUFFER));
    try {
      const out = decodeIntoRoom(codec, payload, rawLength, hash, new Uint8Array(buf, 0, room));
      mine.add(buf);
      return out;
    } catch (e) {
      if (spare.length < INLINE_SPARE_BUFFERS) spare.push(buf);
      throw fromWireError(toWireError(e)); // the same typed error a worker would send
    }
  };
  /**
   * True when `codec` decodes on this thread now. LZ4 and RAW need only the
   * kernels, which the decoder loaded before it read a frame; zstd is loaded
   * here on first need, in the background (chunks go to the pool meanwhile).
   */
  const usable = (codec: number): boolean => {
    if (codec !== CODEC_ZSTD) return true;
    if (zstdAvailable()) return true;
    if (!zstdAsked) {
      zstdAsked = true;
      init().catch(() => {}); // where it cannot load, every zstd chunk goes to the pool
    }
    return false;
  };
  const batcher = new Batcher<DecodeSpan, Uint8Array>(
    batchChunks(pool, options.inFlight ?? PARALLEL_DECODE_IN_FLIGHT),
    (buffer, spans) => pool.submit({ op: "decodeBatch", buffer, spans }),
    (r, i, span) => r.buffer.subarray(span.offset, span.offset + r.items[i].length),
  );
  const none = () => undefined;
  const alwaysHere = (codec: number) => cheapInline && (codec === CODEC_LZ4 || codec === CODEC_RAW);
  return {
    copiesInput: true,
    decodesHere: alwaysHere,
    decodeNow(req: ChunkDecodeRequest) {
      const cheap = alwaysHere(req.codec);
      // A chunk goes to a worker (joining the batch being gathered, if any) unless none has room:
      // then this thread decodes it rather than wait.
      if (!cheap && (batcher.gathering || pool.hasWorkerRoom())) return null;
      return usable(req.codec) ? here(req) : null;
    },
    decode(req: ChunkDecodeRequest) {
      const { codec, payload, rawLength, hash } = req;
      if (alwaysHere(codec)) {
        try {
          return Promise.resolve(here(req));
        } catch (e) {
          return Promise.reject(e);
        }
      }
      // Room for the raw bytes where the payload goes (a claimed size beyond the chunk limit gets none: the job fails with LIMIT).
      const room = Math.max(
        payload.length,
        Number.isSafeInteger(rawLength) && rawLength > 0 && rawLength <= MAX_CHUNK_SIZE ? rawLength : 0,
      );
      return batcher.add(
        room,
        "decode",
        (offset) => ({ offset, coded: payload.length, codec, rawLength, hash }),
        (into) => into.set(payload),
        none,
      );
    },
    release(data) {
      const buf = data.buffer as ArrayBuffer;
      if (mine.has(buf)) {
        mine.delete(buf);
        if (spare.length < INLINE_SPARE_BUFFERS) spare.push(buf);
      } else batcher.release(data);
    },
  };
}
