// The encoder's per-chunk codec choice.
//
// Every mode sends an all-zero chunk as ZERO and falls back to RAW when coding
// does not save at least max(RAW_MIN_SAVING, n / 2^RAW_SAVING_SHIFT) bytes.
// `auto` probes first: the zero-page map says how much of the chunk is zero
// pages; LZ4 (and zstd, when loaded) on a few sampled non-zero pages estimate
// the rest. Then:
//   estimated LZ4 size ≥ AUTO_RAW_RATIO of the chunk   → RAW (nothing is tried)
//   zstd sample ≤ AUTO_ZSTD_GAIN × LZ4 sample          → zstd at level 1 (pointer-
//                                                        heavy heap pages: ~30% smaller)
//   otherwise                                          → LZ4 (code-like pages:
//                                                        zstd saves only ~6%, at half the speed)
// Chunks of at most PROBE_BYTES are coded whole by both instead of sampled.

import { MigstreamError } from "../errors.js";
import { zeroPageMap } from "../kernels/zero.js";
import { CODEC_LZ4, CODEC_RAW, CODEC_ZERO, CODEC_ZSTD } from "./ids.js";
import { checkLz4Acceleration, encodeLz4, LZ4_DEFAULT_ACCELERATION } from "./lz4.js";
import { isZeroChunk, ZERO_PAYLOAD } from "./zero.js";
import {
  checkZstdLevel,
  encodeZstd,
  ZSTD_DEFAULT_LEVEL,
  ZSTD_LEVEL_MAX_CHUNK,
  ZSTD_MIN_LEVEL,
  zstdAvailable,
  zstdLoaded,
} from "./zstd.js";

export type CodecName = "raw" | "zero" | "lz4" | "zstd";
export const CODEC_CHOICES: readonly (CodecName | "auto")[] = ["raw", "zero", "lz4", "zstd", "auto"];

export interface EncodeChoice {
  /** Codec id (ids.ts). */
  codec: number;
  /** The zstd level actually used for CODEC_ZSTD; 0 for every other codec. */
  level: number;
  /** The coded chunk. For RAW it is the input array itself (not copied). */
  payload: Uint8Array;
}

export interface ChunkEncoderOptions {
  /** `zero` only detects zero chunks (the rest go RAW); `auto` probes each chunk. */
  codec: CodecName | "auto";
  /** zstd: level 1..19 (default 3; `auto` uses 1); lz4: acceleration (default 1). */
  level?: number;
}

/** Hard limit for one chunk, whatever the codec (zstd has lower ones: zstdMaxChunk). */
export const MAX_CHUNK_SIZE = 8 << 20;
/** Coding must save at least this many bytes... */
export const RAW_MIN_SAVING = 8;
/** ...and at least n >> RAW_SAVING_SHIFT bytes (1/64) of an n-byte chunk, else RAW. */
export const RAW_SAVING_SHIFT = 6;
/** Page granularity of the auto probe. */
export const PROBE_PAGE = 4096;
/** Pages sampled by the auto probe. */
export const PROBE_PAGES = 4;
/** Bytes the auto probe codes; smaller chunks are coded whole. */
export const PROBE_BYTES = PROBE_PAGE * PROBE_PAGES;
/** auto sends RAW when LZ4 is estimated to keep at least this share of the bytes. */
export const AUTO_RAW_RATIO = 0.95;
/** auto prefers zstd when its sample is at most this share of LZ4's. */
export const AUTO_ZSTD_GAIN = 0.85;
/** zstd level used by auto unless `level` says otherwise. */
export const AUTO_ZSTD_LEVEL = ZSTD_MIN_LEVEL;

/** Largest coded size worth sending for an n-byte chunk (RAW otherwise). */
export function maxCodedSize(n: number): number {
  return n - Math.max(RAW_MIN_SAVING, n >>> RAW_SAVING_SHIFT);
}

const raw = (chunk: Uint8Array): EncodeChoice => ({ codec: CODEC_RAW, level: 0, payload: chunk });

/** Highest level ≤ `level` whose zstd chunk limit admits n bytes, or 0 if none. */
function zstdLevelFor(n: number, level: number): number {
  for (let l = level; l >= ZSTD_MIN_LEVEL; l--) if (n <= ZSTD_LEVEL_MAX_CHUNK[l]) return l;
  return 0;
}

function lz4Choice(chunk: Uint8Array, acceleration: number): EncodeChoice {
  const p = encodeLz4(chunk, maxCodedSize(chunk.length), acceleration);
  return p === null ? raw(chunk) : { codec: CODEC_LZ4, level: 0, payload: p };
}

/**
 * zstd at `level`, lowered to the highest level whose chunk limit admits the
 * chunk; LZ4 above the level-1 limit or while zstd restarts after an abort.
 */
function zstdChoice(chunk: Uint8Array, level: number): EncodeChoice {
  const l = zstdLevelFor(chunk.length, level);
  if (l === 0 || !zstdAvailable()) return lz4Choice(chunk, LZ4_DEFAULT_ACCELERATION);
  let p: Uint8Array;
  try {
    p = encodeZstd(chunk, l);
  } catch (e) {
    // The instance died mid-call (it is being replaced): code this chunk with LZ4.
    if (e instanceof MigstreamError && e.code === "CODEC") return lz4Choice(chunk, LZ4_DEFAULT_ACCELERATION);
    throw e;
  }
  return p.length <= maxCodedSize(chunk.length) ? { codec: CODEC_ZSTD, level: l, payload: p } : raw(chunk);
}

// Reused buffer holding the sampled pages.
const sample = new Uint8Array(PROBE_BYTES);

function autoChoice(chunk: Uint8Array, level: number): EncodeChoice {
  const n = chunk.length;
  const zstdLevel = zstdAvailable() ? zstdLevelFor(n, level) : 0;
  if (n <= PROBE_BYTES) {
    // Small chunk: code it whole with both and keep the better.
    const l = lz4Choice(chunk, LZ4_DEFAULT_ACCELERATION);
    if (zstdLevel === 0 || l.codec === CODEC_RAW) return l;
    const z = zstdChoice(chunk, zstdLevel);
    return z.codec === CODEC_ZSTD && z.payload.length <= AUTO_ZSTD_GAIN * l.payload.length ? z : l;
  }
  // Sample PROBE_PAGES non-zero pages spread over the chunk.
  const map = zeroPageMap(chunk, PROBE_PAGE);
  const live: number[] = [];
  for (let i = 0; i < map.length; i++) if (map[i] === 0) live.push(i);
  const take = Math.min(PROBE_PAGES, live.length);
  let len = 0;
  for (let k = 0; k < take; k++) {
    const page = live[Math.floor(((k + 0.5) * live.length) / take)];
    const part = chunk.subarray(page * PROBE_PAGE, Math.min(n, (page + 1) * PROBE_PAGE));
    sample.set(part, len);
    len += part.length;
  }
  const s = sample.subarray(0, len);
  const lz = encodeLz4(s, len)?.length ?? len;
  const liveShare = live.length / map.length;
  if ((liveShare * lz) / len >= AUTO_RAW_RATIO) return raw(chunk);
  if (zstdLevel > 0) {
    try {
      if (encodeZstd(s, zstdLevel).length <= AUTO_ZSTD_GAIN * lz) return zstdChoice(chunk, zstdLevel);
    } catch (e) {
      if (!(e instanceof MigstreamError && e.code === "CODEC")) throw e;
    }
  }
  return lz4Choice(chunk, LZ4_DEFAULT_ACCELERATION);
}

/**
 * Codes one chunk: ZERO for an all-zero chunk, else the asked codec, falling
 * back to RAW when coding does not pay (see maxCodedSize). zstd needs
 * `await ready()` first; if it is unavailable, `zstd` throws CODEC and `auto`
 * uses LZ4. Throws LIMIT above MAX_CHUNK_SIZE and USAGE on bad options.
 */
export function encodeChunk(chunk: Uint8Array, opts: ChunkEncoderOptions): EncodeChoice {
  if (chunk.length > MAX_CHUNK_SIZE) {
    throw new MigstreamError("LIMIT", `chunk of ${chunk.length} bytes exceeds ${MAX_CHUNK_SIZE}`);
  }
  const codec = opts.codec;
  if (!CODEC_CHOICES.includes(codec)) throw new MigstreamError("USAGE", `unknown codec ${String(codec)}`);
  let level = opts.level;
  if (codec === "zstd" || codec === "auto") {
    level ??= codec === "zstd" ? ZSTD_DEFAULT_LEVEL : AUTO_ZSTD_LEVEL;
    checkZstdLevel(level);
  } else if (codec === "lz4") {
    level ??= LZ4_DEFAULT_ACCELERATION;
    checkLz4Acceleration(level);
  } else if (level !== undefined) {
    throw new MigstreamError("USAGE", `codec ${codec} takes no level`);
  }
  if (isZeroChunk(chunk)) return { codec: CODEC_ZERO, level: 0, payload: ZERO_PAYLOAD };
  switch (codec) {
    case "raw":
    case "zero":
      return raw(chunk);
    case "lz4":
      return lz4Choice(chunk, level as number);
    case "zstd":
      if (!zstdLoaded()) throw new MigstreamError("CODEC", "zstd is unavailable in this runtime (await ready() first)");
      return zstdChoice(chunk, level as number);
    default:
      return autoChoice(chunk, level as number);
  }
}
