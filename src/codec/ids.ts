// On-wire chunk codec ids (one byte in the chunk header), and the codec names
// an encoder may be asked for. Never renumber the ids: they are part of the
// stream format. The zstd level travels in a separate field; it is
// informational for decoding.

export const CODEC_RAW = 0; // payload is the raw bytes
export const CODEC_ZERO = 1; // all-zero chunk, empty payload
export const CODEC_LZ4 = 2; // one LZ4 block (no frame), raw length known from the header
export const CODEC_ZSTD = 3; // one zstd frame with its content size declared
export const CODEC_DEDUP_REF = 4; // payload names an earlier chunk in the dedup window

/** Highest id this version knows; larger ids are rejected as CODEC errors. */
export const CODEC_MAX_ID = CODEC_DEDUP_REF;

/** Labels of the wire ids, by id (statistics, messages). */
export const CODEC_NAMES: readonly string[] = ["raw", "zero", "lz4", "zstd", "dedup-ref"];

/** Label of a wire codec id (`unknown(n)` for ids this version does not know). */
export function codecName(id: number): string {
  return CODEC_NAMES[id] ?? `unknown(${id})`;
}

/**
 * The codecs an encoder can be asked for: `raw` (zero chunks still go ZERO),
 * `zero` (the same; kept as a name for "zero detection only"), `lz4`, `zstd`,
 * and `auto`, which picks RAW, LZ4 or zstd per chunk. Every option parser
 * checks against this list.
 */
export const CODECS = ["raw", "zero", "lz4", "zstd", "auto"] as const;

/** One of CODECS. */
export type CodecName = (typeof CODECS)[number];
