// The chunk codecs layer: codes and decodes one chunk of the stream format.
//   encodeChunk(chunk, slot, coding, ctx) -> CodedChunk (coder.ts: the one coding rule)
//   decodeChunk(codec, payload, rawLength) -> exactly rawLength bytes, or CODEC
//   DedupIndex / DedupWindow               -> repeated chunks as DEDUP_REF
// Everything is synchronous once `await init()` has loaded the kernels and zstd.

import { isMigstreamError, MigstreamError } from "../errors.js";
import { init as initKernels } from "../kernels/wasm.js";
import { MAX_CHUNK_SIZE } from "./coder.js";
import { CODEC_DEDUP_REF, CODEC_LZ4, CODEC_RAW, CODEC_ZERO, CODEC_ZSTD, codecName } from "./ids.js";
import { decodeLz4 } from "./lz4.js";
import { decodeRaw } from "./raw.js";
import { decodeZero } from "./zero.js";
import { decodeZstd, loadZstd } from "./zstd.js";

export {
  type ChunkFacts,
  type CodedChunk,
  type CoderContext,
  encodeChunk,
  MAX_CHUNK_SIZE,
  maxCodedSize,
  reserveCoder,
  screenChunk,
  slotSize,
} from "./coder.js";
export { type Coding, resolveCoding } from "./coding.js";
export { DedupIndex, DedupWindow, decodeDedupRef, encodeDedupRef, resolveDedupRef } from "./dedup.js";
export * from "./ids.js";
export {
  ZSTD_DEFAULT_LEVEL,
  ZSTD_LEVEL_MAX_CHUNK,
  ZSTD_MAX_DECODE_SIZE,
  ZSTD_MAX_LEVEL,
  ZSTD_MIN_LEVEL,
  zstdAvailable,
} from "./zstd.js";

/** Options of init(). */
export interface InitOptions {
  /** Load zstd too (default true); where it cannot load, zstd streams fail with CODEC and `auto` does without it. */
  zstd?: boolean;
}

/**
 * Loads the WebAssembly kernels and, unless `zstd: false`, zstd (once; later
 * calls wait for the first). The synchronous APIs need it first for zstd;
 * everything asynchronous calls it itself. Where zstd cannot load it stays
 * unavailable and the rest works. Also waits for a zstd instance being
 * replaced after an abort.
 */
export async function init(options: InitOptions = {}): Promise<void> {
  await initKernels();
  if (options.zstd !== false) await loadZstd();
}

/**
 * Decodes one chunk payload to exactly `rawLength` bytes (into `into`, which
 * must hold at least rawLength bytes, when given; the result is then its
 * prefix). Throws CODEC for any payload that does not decode to exactly that,
 * LIMIT when rawLength exceeds MAX_CHUNK_SIZE (or ZSTD_MAX_DECODE_SIZE for zstd),
 * USAGE for DEDUP_REF (use resolveDedupRef). Allocates nothing beyond the
 * output and codec scratch of at most rawLength bytes.
 */
export function decodeChunk(codec: number, payload: Uint8Array, rawLength: number, into?: Uint8Array): Uint8Array {
  if (!Number.isSafeInteger(rawLength) || rawLength < 0) {
    throw new MigstreamError("CODEC", `chunk raw length ${rawLength} is invalid`);
  }
  if (rawLength > MAX_CHUNK_SIZE) {
    throw new MigstreamError("LIMIT", `chunk of ${rawLength} bytes exceeds ${MAX_CHUNK_SIZE}`);
  }
  try {
    switch (codec) {
      case CODEC_RAW:
        return decodeRaw(payload, rawLength, into);
      case CODEC_ZERO:
        return decodeZero(payload, rawLength, into);
      case CODEC_LZ4:
        return decodeLz4(payload, rawLength, into);
      case CODEC_ZSTD:
        return decodeZstd(payload, rawLength, into);
      case CODEC_DEDUP_REF:
        throw new MigstreamError("USAGE", "DEDUP_REF chunks are resolved with resolveDedupRef and a DedupWindow");
      default:
        throw new MigstreamError("CODEC", `unknown codec ${codecName(codec)}`);
    }
  } catch (e) {
    if (isMigstreamError(e)) throw e;
    throw new MigstreamError("CODEC", `${codecName(codec)} chunk failed to decode: ${String(e)}`, { cause: e });
  }
}
