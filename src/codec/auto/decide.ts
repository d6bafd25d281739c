// The `auto` codec's decision rule: for one chunk, given what a cheap probe
// learned about it and how fast the sink drains, the codec that gets the chunk
// through the pipeline soonest. Pure arithmetic (no kernels, no clocks), so it
// is unit-tested with fixed inputs; probe.ts runs the probes it asks for.
//
// Model: coding and sending overlap (a pipeline), so one chunk costs
//   time(codec) = max(cpu(codec) / (threads × speed), coded bytes / sink rate)
// and the codec with the least time wins (ties go to the cheaper codec, in the
// order raw, lz4, zstd), a coding codec only when it beats raw by a margin.
// cpu() is thread time: what every chunk costs the pipeline whatever the codec
// (AUTO_BASE_NS and AUTO_PIPELINE_NS per byte) plus the codec's own per-byte
// cost, all measured on the reference machine (a 2-core VM: the LZ4 kernel,
// our zstd 1.5.7 wasm build); `speed` scales them for a faster or busier
// machine. A page LZ4 cannot shrink is "flat": LZ4 and zstd skip over it
// quickly and it is sent at full size by every codec.
//
// Probes cost time too, so each is asked for only when its codec could still
// win: with an unmetered sink (rate Infinity) raw's time is the bare per-byte
// cost, which no codec can beat, so nothing is probed.

/** What auto knows about where the chunks go. */
export interface AutoContext {
  /** How fast the sink drains, in bytes/s; Infinity: no limit. Default AUTO_DEFAULT_SINK_RATE. */
  sinkRate?: number;
  /** Chunks coded at the same time (the pool's threads). Default 1. */
  threads?: number;
  /** CPU speed relative to the cost table (2: twice as fast; 0.5: a busy or slow machine). Default 1. */
  speed?: number;
}

/** The sink rate auto assumes when nobody measured one: 1 Gbit/s. */
export const AUTO_DEFAULT_SINK_RATE = 125e6;
/** zstd level auto may go up to unless `level` says otherwise. */
export const AUTO_ZSTD_LEVEL = 3;

// Cost table, ns per byte on one thread of the reference machine.
/** Every chunk, whatever the codec: copies, zero test, xxh3. */
export const AUTO_BASE_NS = 0.25;
/**
 * Every chunk, whatever the codec, on the rest of the pipeline: reading it in,
 * batching and messages, framing, writing. Fitted as (coding time + this × n)
 * / threads = wall time, on 2-thread encodes of 256 MiB from memory to a null
 * sink (raw 1.07, LZ4 1.29, zstd-1 0.98 ns/B): this is why 2 threads gave
 * LZ4 ~1.1× one thread but zstd ~1.45×.
 */
export const AUTO_PIPELINE_NS = 1.0;
/** LZ4 on a compressible page. */
export const AUTO_LZ4_NS = 2.4;
/** LZ4 on a flat or zero page (it skips ahead). */
const AUTO_LZ4_SKIP_NS = 0.15;
/** zstd level 1 on a compressible page (other levels: × AUTO_ZSTD_LEVEL_COST; measured 4.5 code-, 4.0 heap-like). */
const AUTO_ZSTD_NS = 4.3;
/** zstd on a flat or zero page (measured 0.38 random, 0.23 zero). */
const AUTO_ZSTD_FLAT_NS = 0.4;
/** zstd CPU cost by level, relative to level 1 (index = level; measured on code- and heap-like pages). */
const AUTO_ZSTD_LEVEL_COST: readonly number[] = [
  0, 1, 1.05, 1.2, 1.5, 1.7, 2.2, 2.7, 3.2, 4.4, 6, 7, 8, 12, 14, 16, 19, 21, 23, 25,
];
/** zstd output by level, relative to level 1 (same measurement; the probe runs at level 1). */
const AUTO_ZSTD_LEVEL_GAIN: readonly number[] = [
  0, 1, 0.92, 0.88, 0.9, 0.89, 0.88, 0.84, 0.84, 0.84, 0.84, 0.84, 0.84, 0.8, 0.79, 0.77, 0.77, 0.76, 0.76, 0.76,
];
/** LZ4 output for a zero page, as a share of the page. */
const AUTO_LZ4_ZERO_RATIO = 0.005;
/** A sampled page whose LZ4 output keeps at least this share of it is flat. */
export const AUTO_FLAT_RATIO = 0.95;
/** A coding codec is chosen only when its estimate is at most this share of RAW's, so that model error never makes a fast sink slower. */
const AUTO_RAW_MARGIN = 0.9;

/** What the probes found out about one chunk. */
export interface AutoProbe {
  /** Chunk bytes. */
  n: number;
  /** Bytes in pages that are not all zero. */
  live: number;
  /** LZ4 probe: bytes of the sampled (live) pages; absent until probed. */
  sampled?: number;
  /** Of those, bytes in flat pages. */
  flat?: number;
  /** LZ4 output for the sampled pages, flat pages counted at full size. */
  lz4?: number;
  /** zstd probe (level 1): output for the sampled pages, flat pages at full size; absent until probed. */
  zstd?: number;
}

/** A codec to use, or the probe to run before asking again. */
export type AutoDecision =
  | { codec: "zero" | "raw" | "lz4" }
  | { codec: "zstd"; level: number }
  | { probe: "lz4" | "zstd" };

/** What is allowed for this chunk. */
export interface AutoLimits {
  /** Highest zstd level allowed for this chunk; 0: no zstd (unavailable or chunk too large). */
  maxLevel: number;
}

interface Env {
  /** Bytes the sink takes per ns (Infinity: no limit). */
  perNs: number;
  /** Effective parallel speed: threads × speed. */
  par: number;
}

function env(ctx: AutoContext): Env {
  const rate = ctx.sinkRate ?? AUTO_DEFAULT_SINK_RATE;
  const threads = ctx.threads ?? 1;
  const speed = ctx.speed ?? 1;
  return {
    perNs: rate > 0 ? rate / 1e9 : Number.MIN_VALUE,
    par: Math.max(threads, 1) * (speed > 0 ? speed : 1),
  };
}

const time = (e: Env, cpuNs: number, out: number) => Math.max(cpuNs / e.par, e.perNs === Infinity ? 0 : out / e.perNs);

/** The chunk's bytes by kind, as far as the probes tell (before the LZ4 probe all live bytes count as compressible). */
function split(p: AutoProbe): { zero: number; flat: number; comp: number; scale: number } {
  const sampled = p.sampled ?? 0;
  const scale = sampled > 0 ? p.live / sampled : 0;
  const flat = Math.min(p.flat ?? 0, sampled) * scale;
  return { zero: p.n - p.live, flat, comp: p.live - flat, scale };
}

/** Thread time per chunk byte, whatever the codec. */
const FIXED_NS = AUTO_BASE_NS + AUTO_PIPELINE_NS;
const lz4Cpu = (n: number, s: ReturnType<typeof split>) =>
  FIXED_NS * n + AUTO_LZ4_NS * s.comp + AUTO_LZ4_SKIP_NS * (s.flat + s.zero);
const zstdCpu = (n: number, s: ReturnType<typeof split>, level: number) =>
  FIXED_NS * n + AUTO_ZSTD_NS * AUTO_ZSTD_LEVEL_COST[level] * s.comp + AUTO_ZSTD_FLAT_NS * (s.flat + s.zero);

/**
 * The next step for a chunk: a codec, or a probe to run first (then call
 * again with its result filled in). Deterministic in its inputs.
 */
export function autoDecide(p: AutoProbe, limits: AutoLimits, ctx: AutoContext = {}): AutoDecision {
  if (p.live === 0) return { codec: "zero" };
  const e = env(ctx);
  const n = p.n;
  const zero = n - p.live;
  const base = FIXED_NS * n;
  // RAW's time, less the margin any coding codec must win by.
  const tRaw = time(e, base, n) * AUTO_RAW_MARGIN;
  // Lower bounds: every live byte compressible to nothing, at the cheapest rate.
  if (tRaw <= time(e, base + AUTO_LZ4_SKIP_NS * n, 0)) return { codec: "raw" };
  if (p.sampled === undefined || p.flat === undefined || p.lz4 === undefined) return { probe: "lz4" };

  const s = split(p);
  const { scale, flat, comp } = s;
  const tLz4 = time(e, lz4Cpu(n, s), p.lz4 * scale + AUTO_LZ4_ZERO_RATIO * zero);
  let best: AutoDecision = { codec: "raw" };
  let tBest = tRaw;
  if (tLz4 < tBest) {
    best = { codec: "lz4" };
    tBest = tLz4;
  }
  if (limits.maxLevel < 1 || comp <= 0) return best;
  if (time(e, zstdCpu(n, s, 1), 0) >= tBest) return best;
  if (p.zstd === undefined) return { probe: "zstd" };

  // The probe's compressible part, scaled to the chunk; flat pages stay whole.
  const zComp = Math.max(p.zstd - p.flat, 0) * scale;
  const levels = limits.maxLevel > 1 ? [1, limits.maxLevel] : [1];
  for (const level of levels) {
    const t = time(e, zstdCpu(n, s, level), zComp * AUTO_ZSTD_LEVEL_GAIN[level] + flat);
    if (t < tBest) {
      best = { codec: "zstd", level };
      tBest = t;
    }
  }
  return best;
}
