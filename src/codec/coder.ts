// The chunk coder: the one place that decides how a chunk of the stream is
// coded. Every path that codes chunks — the encoder on its own thread
// (format/inline.ts) and the worker pool's jobs (parallel/codec-job.ts) —
// calls encodeChunk, so they produce the same bytes by construction.
//
// The rule, in order:
//   1. ZERO: an all-zero chunk (an empty one too) has no payload.
//   2. DEDUP_REF: with a dedup index (encoder side, stream order), a chunk
//      equal to a live recorded one is sent as a reference to it.
//   3. The asked codec: LZ4, zstd (lowered to a level whose chunk limit admits
//      the chunk; LZ4 where none does or while zstd restarts), or auto, which
//      picks RAW, LZ4 or zstd per chunk (auto/).
//   4. RAW when coding does not save at least max(RAW_MIN_SAVING,
//      n >> RAW_SAVING_SHIFT) bytes (maxCodedSize).
// Every chunk coded as data (RAW, LZ4, zstd) is then recorded in the dedup
// index, as the decoder records it.
//
// Where bytes go: a coded payload is written into the `slot` the caller gives
// (at least slotSize(n) bytes); the result's payload is the chunk itself
// (RAW), empty (ZERO) or a prefix of the slot (everything else). When the
// chunk and the slot lie in kernel memory (the fast paths: hashed, tested and
// compressed in place), the caller calls reserveCoder(n) first, and the coder
// allocates nothing in kernel memory — views stay attached (INTERNAL if that
// was broken).

import { MigstreamError } from "../errors.js";
import { lz4CompressInto } from "../kernels/lz4.js";
import { inKernelMemory, kernelMemory } from "../kernels/wasm.js";
import { xxh3_64 } from "../kernels/xxh3.js";
import type { AutoContext } from "./auto/decide.js";
import { autoChoose, reserveProbes } from "./auto/probe.js";
import type { Coding } from "./coding.js";
import { DEDUP_REF_SIZE, type DedupIndex, encodeDedupRef } from "./dedup.js";
import { CODEC_DEDUP_REF, CODEC_LZ4, CODEC_RAW, CODEC_ZERO, CODEC_ZSTD } from "./ids.js";
import { LZ4_DEFAULT_ACCELERATION } from "./lz4.js";
import { hashOfZeros, isZeroChunk, ZERO_PAYLOAD } from "./zero.js";
import { encodeZstd, zstdAvailable, zstdLevelFor, zstdUnavailable } from "./zstd.js";

/** One coded chunk: what a CHUNK frame carries. */
export interface CodedChunk {
  /** Wire codec id (ids.ts). */
  codec: number;
  /** The zstd level used for CODEC_ZSTD; 0 for every other codec. */
  level: number;
  /** The coded bytes (see "Where bytes go" above for what they are a view of). */
  payload: Uint8Array;
  rawLength: number;
  /** XXH3-64 (seed 0) of the raw bytes. */
  hash: bigint;
}

/** What the encoder's dedup plan already learned about a chunk's bytes, so the coder need not look again. */
export interface ChunkFacts {
  zero: boolean;
  /** XXH3-64 of the bytes (unused for a zero chunk). */
  hash: bigint;
}

/** What the coder may use besides the chunk and the slot. */
export interface CoderContext {
  /** The device's dedup index (encoder side, chunks in stream order); absent: no DEDUP_REF, nothing recorded. */
  index?: DedupIndex | null;
  facts?: ChunkFacts | null;
  /** auto only: the sink rate and threads it weighs (auto/decide.ts). */
  auto?: AutoContext;
}

/** Hard limit for one chunk, whatever the codec (zstd has lower ones: ZSTD_LEVEL_MAX_CHUNK). */
export const MAX_CHUNK_SIZE = 8 << 20;
/** Coding must save at least this many bytes... */
const RAW_MIN_SAVING = 8;
/** ...and at least n >> RAW_SAVING_SHIFT bytes (1/64) of an n-byte chunk, else RAW. */
const RAW_SAVING_SHIFT = 6;

/** Largest coded size worth sending for an n-byte chunk (RAW otherwise). */
export function maxCodedSize(n: number): number {
  return n - Math.max(RAW_MIN_SAVING, n >>> RAW_SAVING_SHIFT);
}

/** Room a slot needs for an n-byte chunk: any coded payload, or a dedup reference. */
export function slotSize(n: number): number {
  return Math.max(n, DEDUP_REF_SIZE);
}

/** Makes the coder ready to code chunks of up to n bytes lying in kernel memory without allocating there. */
export function reserveCoder(n: number): void {
  reserveProbes(n);
}

const chunkOf = (codec: number, level: number, payload: Uint8Array, chunk: Uint8Array, hash: bigint): CodedChunk => ({
  codec,
  level,
  payload,
  rawLength: chunk.length,
  hash,
});

/**
 * Codes one chunk by the rule above, its payload written into `slot`
 * (slotSize(chunk.length) bytes at least). Throws LIMIT above
 * MAX_CHUNK_SIZE, CODEC for `zstd` where zstd did not load (see init()).
 */
export function encodeChunk(chunk: Uint8Array, slot: Uint8Array, coding: Coding, ctx: CoderContext = {}): CodedChunk {
  if (chunk.length > MAX_CHUNK_SIZE)
    throw new MigstreamError("LIMIT", `chunk of ${chunk.length} bytes exceeds ${MAX_CHUNK_SIZE}`);
  const memory = inKernelMemory(chunk) ? kernelMemory().buffer : null;
  const index = ctx.index ?? null;
  const screened = screen(chunk, slot, index, ctx.facts ?? null);
  let c: CodedChunk;
  if (typeof screened !== "bigint") c = screened;
  else {
    c = code(chunk, screened, slot, coding, ctx.auto);
    // Recorded as the decoder will (every chunk carried as data); the index keeps the smaller LZ4 copy when there is one.
    index?.add(chunk, screened, c.codec === CODEC_LZ4 ? c.payload : undefined);
  }
  if (memory !== null && kernelMemory().buffer !== memory)
    throw new MigstreamError("INTERNAL", "kernel memory moved while a chunk was being coded (reserveCoder first)");
  return c;
}

/**
 * Steps 1 and 2 alone, for a chunk that is coded elsewhere (a worker, which
 * then runs encodeChunk without an index): the ZERO or DEDUP_REF chunk, or
 * the chunk's hash — after recording it in `index`, since it will be carried
 * as data.
 */
export function screenChunk(chunk: Uint8Array, index: DedupIndex, facts: ChunkFacts | null): CodedChunk | bigint {
  const s = screen(chunk, null, index, facts);
  if (typeof s === "bigint") index.add(chunk, s);
  return s;
}

/** ZERO, or DEDUP_REF (its payload in `slot`, or a new array), or the hash of a chunk still to code. */
function screen(
  chunk: Uint8Array,
  slot: Uint8Array | null,
  index: DedupIndex | null,
  facts: ChunkFacts | null,
): CodedChunk | bigint {
  if (facts?.zero ?? isZeroChunk(chunk)) return chunkOf(CODEC_ZERO, 0, ZERO_PAYLOAD, chunk, hashOfZeros(chunk));
  const hash = facts?.hash ?? xxh3_64(chunk);
  const ord = index === null ? -1 : index.find(chunk, hash);
  if (ord < 0) return hash;
  let ref = encodeDedupRef(ord);
  if (slot !== null) {
    slot.set(ref);
    ref = slot.subarray(0, DEDUP_REF_SIZE);
  }
  return chunkOf(CODEC_DEDUP_REF, 0, ref, chunk, hash);
}

/** Steps 3 and 4: the chunk (not zero, not a reference) coded as `coding` says. */
function code(
  chunk: Uint8Array,
  hash: bigint,
  slot: Uint8Array,
  coding: Coding,
  auto: AutoContext | undefined,
): CodedChunk {
  switch (coding.codec) {
    case "raw":
    case "zero":
      return chunkOf(CODEC_RAW, 0, chunk, chunk, hash);
    case "lz4":
      return lz4(chunk, hash, slot, coding.level);
    case "zstd":
      if (!zstdAvailable()) throw zstdUnavailable();
      return zstd(chunk, hash, slot, coding.level);
    default: {
      const d = autoChoose(chunk, coding.level, auto);
      if (d.codec === "zstd") return zstd(chunk, hash, slot, d.level);
      if (d.codec === "lz4") return lz4(chunk, hash, slot, LZ4_DEFAULT_ACCELERATION);
      return chunkOf(CODEC_RAW, 0, chunk, chunk, hash);
    }
  }
}

/** LZ4 into the slot when it saves enough, else RAW. */
function lz4(chunk: Uint8Array, hash: bigint, slot: Uint8Array, acceleration: number): CodedChunk {
  const limit = maxCodedSize(chunk.length);
  const m = limit > 0 ? lz4CompressInto(chunk, slot.subarray(0, limit), acceleration) : 0;
  return m === 0 ? chunkOf(CODEC_RAW, 0, chunk, chunk, hash) : chunkOf(CODEC_LZ4, 0, slot.subarray(0, m), chunk, hash);
}

/**
 * zstd at `level`, lowered to the highest level whose chunk limit admits the
 * chunk, into the slot when it saves enough, else RAW; LZ4 above the level-1
 * limit or while zstd restarts after an abort.
 */
function zstd(chunk: Uint8Array, hash: bigint, slot: Uint8Array, level: number): CodedChunk {
  const l = zstdLevelFor(chunk.length, level);
  if (l === 0 || !zstdAvailable()) return lz4(chunk, hash, slot, LZ4_DEFAULT_ACCELERATION);
  // The slot offers no more than a payload may take: a larger one is refused (LIMIT) before anything is written.
  const room = slot.subarray(0, Math.max(0, maxCodedSize(chunk.length)));
  let p: Uint8Array;
  try {
    p = encodeZstd(chunk, l, room);
  } catch (e) {
    if (e instanceof MigstreamError && e.code === "LIMIT") return chunkOf(CODEC_RAW, 0, chunk, chunk, hash);
    // The instance died mid-call (it is being replaced): code this chunk with LZ4.
    if (e instanceof MigstreamError && e.code === "CODEC") return lz4(chunk, hash, slot, LZ4_DEFAULT_ACCELERATION);
    throw e;
  }
  return chunkOf(CODEC_ZSTD, l, p, chunk, hash);
}
