// The encoder's per-chunk codec choice.
//
// Every mode sends an all-zero chunk as ZERO and falls back to RAW when coding
// does not save at least max(RAW_MIN_SAVING, n / 2^RAW_SAVING_SHIFT) bytes.
// `auto` probes, then asks codec/auto.ts which codec gets the chunk through
// soonest given the sink rate: the zero-page map first (all zero: ZERO), then
// LZ4 on a few sampled live pages (which also tells flat pages apart), then
// zstd level 1 on the compressible ones — each only if its codec could still
// win. Probes sample about 1/AUTO_PROBE_SHARE of a chunk's live pages
// (1..PROBE_PAGES pages), so they cost a few percent of coding it.

import { MigstreamError } from "../errors.js";
import { zeroPageMap } from "../kernels/zero.js";
import { lz4CompressInto } from "../kernels/lz4.js";
import { allocBuffer, inKernelMemory, kernelMemory, type KernelBuffer } from "../kernels/wasm.js";
import { CODEC_LZ4, CODEC_RAW, CODEC_ZERO, CODEC_ZSTD } from "./ids.js";
import { checkLz4Acceleration, encodeLz4, LZ4_DEFAULT_ACCELERATION } from "./lz4.js";
import { isZeroChunk, ZERO_PAYLOAD } from "./zero.js";
import { AUTO_FLAT_RATIO, AUTO_ZSTD_LEVEL, autoDecide, type AutoContext, type AutoProbe } from "./auto.js";
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
  /** zstd: level 1..19 (default 3; `auto`: the highest it may use, default AUTO_ZSTD_LEVEL); lz4: acceleration (default 1). */
  level?: number;
  /** `auto` only: sink rate, threads and speed (see codec/auto.ts). Default: AUTO_DEFAULT_SINK_RATE, one thread. */
  auto?: AutoContext;
  /**
   * Room for a zstd payload, used when it fits (else RAW): saves allocating
   * one per chunk (auto also puts there the LZ4 payload of a chunk it coded
   * in kernel memory). zstd copies its input first, so this may be the chunk's own
   * bytes (they are then overwritten by the payload when zstd wins).
   */
  into?: Uint8Array;
}

/** Hard limit for one chunk, whatever the codec (zstd has lower ones: zstdMaxChunk). */
export const MAX_CHUNK_SIZE = 8 << 20;
/** Coding must save at least this many bytes... */
export const RAW_MIN_SAVING = 8;
/** ...and at least n >> RAW_SAVING_SHIFT bytes (1/64) of an n-byte chunk, else RAW. */
export const RAW_SAVING_SHIFT = 6;
/** Page granularity of the auto probe. */
export const PROBE_PAGE = 4096;
/** Most pages the auto probe samples from one chunk. */
export const PROBE_PAGES = 4;
/** Most bytes the auto probe samples. */
export const PROBE_BYTES = PROBE_PAGE * PROBE_PAGES;
/** The auto probe samples one live page in this many (at least one). */
export const AUTO_PROBE_SHARE = 16;

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
function zstdChoice(chunk: Uint8Array, level: number, into?: Uint8Array, lz4 = (c: Uint8Array) => lz4Choice(c, LZ4_DEFAULT_ACCELERATION)): EncodeChoice {
  const l = zstdLevelFor(chunk.length, level);
  if (l === 0 || !zstdAvailable()) return lz4(chunk);
  let p: Uint8Array;
  // A payload must save what maxCodedSize asks: `into` holds no more, so a larger one is refused (LIMIT) before anything is written.
  const room = into?.subarray(0, Math.min(into.length, maxCodedSize(chunk.length)));
  try {
    p = encodeZstd(chunk, l, room);
  } catch (e) {
    if (room !== undefined && e instanceof MigstreamError && e.code === "LIMIT") return raw(chunk);
    // The instance died mid-call (it is being replaced): code this chunk with LZ4.
    if (e instanceof MigstreamError && e.code === "CODEC") return lz4(chunk);
    throw e;
  }
  return p.length <= maxCodedSize(chunk.length) ? { codec: CODEC_ZSTD, level: l, payload: p } : raw(chunk);
}

// Reused buffer holding the sampled compressible pages for the zstd probe.
const sample = new Uint8Array(PROBE_BYTES);
// Kernel memory the LZ4 probe writes into (its output is only counted).
let probeOut: KernelBuffer | null = null;
// Kernel memory for the LZ4 block of a chunk that itself lies in kernel memory.
let blockOut: KernelBuffer | null = null;

/** LZ4 size of one sampled page, or 0 when it does not shrink below AUTO_FLAT_RATIO (flat). */
function probeLz4(page: Uint8Array): number {
  return lz4CompressInto(page, probeOut!.view(0, Math.floor(page.length * AUTO_FLAT_RATIO)), LZ4_DEFAULT_ACCELERATION);
}

/**
 * Runs the probes autoDecide asks for, then codes the chunk as it decides.
 * A chunk in kernel memory is used in place (no copies in): its view is taken
 * afresh after every step that may grow the memory.
 */
function autoChoice(input: Uint8Array, level: number, ctx: AutoContext | undefined, into?: Uint8Array): EncodeChoice {
  // Where the chunk is, taken before anything may grow kernel memory (which detaches views).
  const n = input.length;
  const inKernel = inKernelMemory(input);
  const ptr = input.byteOffset;
  const chunk = (): Uint8Array => (inKernel ? new Uint8Array(kernelMemory().buffer, ptr, n) : input);
  probeOut ??= allocBuffer(PROBE_PAGE);
  if (inKernel && (blockOut === null || blockOut.length < n)) {
    blockOut?.free();
    blockOut = allocBuffer(n);
  }
  const map = zeroPageMap(chunk(), PROBE_PAGE);
  const live: number[] = [];
  for (let i = 0; i < map.length; i++) if (map[i] === 0) live.push(i);
  const page = (i: number) => chunk().subarray(i * PROBE_PAGE, Math.min(n, (i + 1) * PROBE_PAGE));
  let liveBytes = 0;
  for (const i of live) liveBytes += Math.min(n, (i + 1) * PROBE_PAGE) - i * PROBE_PAGE;
  const limits = { maxLevel: zstdAvailable() ? zstdLevelFor(n, level) : 0 };
  const p: AutoProbe = { n, live: liveBytes };
  let d = autoDecide(p, limits, ctx);
  const compressible: number[] = [];
  if ("probe" in d) {
    // LZ4 on sampled live pages spread over the chunk, one at a time.
    const take = Math.min(PROBE_PAGES, Math.max(1, Math.round(live.length / AUTO_PROBE_SHARE)));
    p.sampled = p.flat = p.lz4 = 0;
    for (let k = 0; k < take; k++) {
      const i = live[Math.floor(((k + 0.5) * live.length) / take)];
      const part = page(i);
      const coded = probeLz4(part);
      p.sampled += part.length;
      if (coded === 0) {
        p.flat += part.length;
        p.lz4 += part.length;
      } else {
        p.lz4 += coded;
        compressible.push(i);
      }
    }
    d = autoDecide(p, limits, ctx);
  }
  if ("probe" in d) {
    let len = 0;
    for (const i of compressible) {
      const part = page(i);
      sample.set(part, len);
      len += part.length;
    }
    try {
      p.zstd = p.flat! + encodeZstd(sample.subarray(0, len), ZSTD_MIN_LEVEL).length;
      d = autoDecide(p, limits, ctx);
    } catch (e) {
      // zstd is restarting after an abort: decide without it.
      if (!(e instanceof MigstreamError && e.code === "CODEC")) throw e;
      d = autoDecide(p, { maxLevel: 0 }, ctx);
    }
  }
  if ("probe" in d) throw new MigstreamError("INTERNAL", `auto asked for a second ${d.probe} probe`);
  let c: EncodeChoice;
  switch (d.codec) {
    case "zero":
      c = { codec: CODEC_ZERO, level: 0, payload: ZERO_PAYLOAD };
      break;
    case "raw":
      c = raw(chunk());
      break;
    case "lz4":
      c = inKernel ? lz4InKernel(chunk(), into) : lz4Choice(chunk(), LZ4_DEFAULT_ACCELERATION);
      break;
    default:
      // zstd copies its input into its own memory; its LZ4 fallback codes a chunk in kernel memory in place.
      c = zstdChoice(chunk(), d.level, into, inKernel ? (k) => lz4InKernel(k, into) : undefined);
  }
  return c;
}

/** LZ4 for a chunk in kernel memory: into blockOut (already sized), then copied out into `into` if it has room, else a new array. */
function lz4InKernel(chunk: Uint8Array, into?: Uint8Array): EncodeChoice {
  const limit = maxCodedSize(chunk.length);
  const m = limit > 0 ? lz4CompressInto(chunk, blockOut!.view(0, limit), LZ4_DEFAULT_ACCELERATION) : 0;
  if (m === 0) return raw(chunk);
  const block = blockOut!.view(0, m);
  if (into === undefined || into.length < m) return { codec: CODEC_LZ4, level: 0, payload: block.slice() };
  into.set(block);
  return { codec: CODEC_LZ4, level: 0, payload: into.subarray(0, m) };
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
      return zstdChoice(chunk, level as number, opts.into);
    default:
      return autoChoice(chunk, level as number, opts.auto, opts.into);
  }
}
