// The chunk codecs layer: codes and decodes one chunk of the stream format.
//   encodeChunk(raw, opts)                 -> { codec, level, payload }
//   decodeChunk(codec, payload, rawLength) -> exactly rawLength bytes, or CODEC
//   DedupIndex / DedupWindow               -> repeated chunks as DEDUP_REF
// Everything is synchronous once `await ready()` has loaded zstd (optional).

import { MigstreamError, isMigstreamError } from "../errors.js";
import { init as initKernels } from "../kernels/wasm.js";
import { CODEC_DEDUP_REF, CODEC_LZ4, CODEC_RAW, CODEC_ZERO, CODEC_ZSTD, codecName } from "./ids.js";
import { decodeLz4 } from "./lz4.js";
import { decodeRaw } from "./raw.js";
import { MAX_CHUNK_SIZE } from "./select.js";
import { decodeZero } from "./zero.js";
import { decodeZstd, loadZstd } from "./zstd.js";

export * from "./ids.js";
export {
  encodeChunk,
  maxCodedSize,
  MAX_CHUNK_SIZE,
  RAW_MIN_SAVING,
  RAW_SAVING_SHIFT,
  PROBE_BYTES,
  type CodecName,
  type ChunkEncoderOptions,
  type EncodeChoice,
} from "./select.js";
export {
  autoDecide,
  AUTO_DEFAULT_SINK_RATE,
  AUTO_ZSTD_LEVEL,
  type AutoContext,
  type AutoDecision,
  type AutoProbe,
} from "./auto.js";
export {
  zstdAvailable,
  zstdLoaded,
  zstdMaxChunk,
  ZSTD_MIN_LEVEL,
  ZSTD_MAX_LEVEL,
  ZSTD_DEFAULT_LEVEL,
  ZSTD_MAX_DECODE_SIZE,
  ZSTD_LEVEL_MAX_CHUNK,
} from "./zstd.js";
export { LZ4_DEFAULT_ACCELERATION, LZ4_ACCELERATION_MAX } from "./lz4.js";
export {
  DedupIndex,
  DedupWindow,
  MAX_DEDUP_WINDOW,
  DEDUP_ENTRY_MIN_COST,
  DEDUP_REF_SIZE,
  dedupCost,
  encodeDedupRef,
  decodeDedupRef,
  resolveDedupRef,
} from "./dedup.js";

/**
 * Initialises the kernels and, unless `zstd: false`, loads zstd once (where it
 * cannot load, zstdAvailable() stays false and the rest works). Also waits for
 * a zstd instance being replaced after an abort.
 */
export async function ready(opts: { zstd?: boolean } = {}): Promise<void> {
  await initKernels();
  if (opts.zstd !== false) await loadZstd();
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
