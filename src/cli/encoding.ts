// Encoder options on the command line (save, encode, demo): codec, level,
// chunk size, dedup, key, and --threads for the worker pool (default: one
// thread per core; 1 codes on the main thread). With --codec auto the
// encoder times its own writes (sinkRate "measured"), so auto weighs each
// chunk's coding cost against how fast the file, pipe or socket actually
// drains — the same way on one thread or several.
import { resolveCoding } from "../codec/coding.js";
import { CODECS, type CodecName } from "../codec/ids.js";
import { isMigstreamError } from "../errors.js";
import type { EncoderOptions } from "../format/encoder.js";
import { availableCores, MAX_THREADS } from "../parallel/platform.js";
import { WorkerPool } from "../parallel/pool.js";
import { intOption, sizeOption, usageOf } from "./args.js";
import { readKeyFile } from "./key.js";

/** Codec the CLI uses unless told otherwise. */
export const DEFAULT_CLI_CODEC: CodecName = "auto";
/**
 * Smallest --chunk-size: every chunk costs a 44-byte frame (60 with a key) and
 * a pass through the codec, so below a page the stream grows and slows for
 * nothing (1-byte chunks turn 4 MiB into 178 MiB).
 */
export const MIN_CLI_CHUNK_SIZE = 4096;
/** Most coding threads per core: beyond it threads only wait for each other (and each holds buffers). */
export const THREADS_PER_CORE = 4;
/** Most coding threads whatever the machine. */
export const MAX_CLI_THREADS = 64;

/** The most --threads this machine can use. */
export function maxThreads(cores = availableCores()): number {
  return Math.min(THREADS_PER_CORE * cores, MAX_CLI_THREADS, MAX_THREADS);
}

/** --threads N: 1..maxThreads(), default one per core. */
export function threadsOption(command: string, text: string | undefined): number {
  const cores = availableCores();
  const most = maxThreads(cores);
  const fallback = Math.min(cores, most);
  if (text === undefined) return fallback;
  const n = intOption(command, "--threads", text, fallback, 1, Number.MAX_SAFE_INTEGER);
  if (n > most) {
    throw usageOf(
      command,
      `--threads ${n} is more than this machine can use (${cores} core${cores === 1 ? "" : "s"}: at most ${most}, ${THREADS_PER_CORE} per core up to ${MAX_CLI_THREADS})`,
    );
  }
  return n;
}

export const ENCODING_OPTIONS = {
  codec: { type: "string" },
  level: { type: "string" },
  "chunk-size": { type: "string" },
  dedup: { type: "boolean" },
  "dedup-window": { type: "string" },
  "key-file": { type: "string" },
  encrypt: { type: "boolean" },
  threads: { type: "string" },
} as const;

export const ENCODING_HELP = `  --codec NAME         ${CODECS.join(", ")} (default ${DEFAULT_CLI_CODEC}: zero pages as ZERO,
                       then per chunk RAW, LZ4 or zstd, whichever the measured
                       output rate and the chunk's compressibility make fastest)
  --level N            zstd level 1..19 (auto: the highest it may use), or LZ4 acceleration
  --chunk-size BYTES   largest chunk, at least 4KiB (default 256KiB)
  --dedup              content-defined chunks; repeated chunks become references
  --dedup-window BYTES how far back a reference may reach (default 64MiB)
  --key-file F         authenticate every frame with HMAC-SHA-256 (key: hex text or raw bytes)
  --encrypt            with --key-file: seal every frame with AES-256-GCM instead (confidential;
                       keys per stream from the key and fresh values)
  --threads N          code chunks on N threads, the main one included (default: one per core;
                       1: the main thread only; at most 4 per core, and 64)`;

export interface Encoding {
  /** Encoder options: with the worker pool when coding on several threads; auto measures its sink. */
  options: EncoderOptions;
  /** The same options for coding on this thread alone: for a stream too short to be worth starting a worker. */
  inline: EncoderOptions;
  key?: Uint8Array;
  threads: number;
  /** Ends the worker pool, if any. */
  close(): Promise<void>;
}

type Values = {
  [K in keyof typeof ENCODING_OPTIONS]?: (typeof ENCODING_OPTIONS)[K]["type"] extends "boolean" ? boolean : string;
};

/**
 * The encoding the options ask for. `startPool: false` leaves the worker pool's
 * workers to start with its first job (never, if the caller codes `inline`).
 */
export async function encodingFrom(command: string, v: Values, { startPool = true } = {}): Promise<Encoding> {
  const level = v.level === undefined ? undefined : intOption(command, "--level", v.level, 0, 0, 2 ** 31);
  // Codec and level are checked where every encoder checks them.
  let codec: CodecName;
  try {
    codec = resolveCoding(v.codec ?? DEFAULT_CLI_CODEC, level).codec;
  } catch (e) {
    if (!isMigstreamError(e, "USAGE")) throw e;
    throw usageOf(
      command,
      e.field === "codec"
        ? `--codec '${v.codec}' is not one of ${CODECS.join(", ")}`
        : `--level ${level}: ${e.message}`,
    );
  }
  const threads = threadsOption(command, v.threads);
  const chunkSize = sizeOption(command, "--chunk-size", v["chunk-size"]);
  if (chunkSize !== undefined && chunkSize < MIN_CLI_CHUNK_SIZE) {
    throw usageOf(
      command,
      `--chunk-size ${chunkSize} is below ${MIN_CLI_CHUNK_SIZE / 1024}KiB: every chunk costs a frame and a codec pass, so smaller chunks only make the stream larger and slower`,
    );
  }
  const key = v["key-file"] === undefined ? undefined : await readKeyFile(v["key-file"]);
  if (v.encrypt && !key)
    throw usageOf(command, "--encrypt needs --key-file (the stream's keys come from the shared key)");
  const pool = threads > 1 ? newPool(threads, codec === "zstd" || codec === "auto", startPool) : undefined;
  const options: EncoderOptions = {
    codec,
    level,
    sinkRate: codec === "auto" ? "measured" : undefined,
    chunkSize,
    dedup: v.dedup === true,
    dedupWindow: sizeOption(command, "--dedup-window", v["dedup-window"]),
    key,
    encrypt: v.encrypt === true,
    pool,
  };
  return { options, inline: { ...options, pool: undefined }, key, threads, close: async () => pool?.close() };
}

/**
 * `threads` coding threads, this one included (threads − 1 workers: every
 * core busy, none oversubscribed). Workers start in the background now
 * (`start`), or else with the first job; until they are ready this thread
 * codes, and a worker that cannot start fails the first job it would have
 * taken with INTERNAL.
 */
function newPool(threads: number, zstd: boolean, start: boolean): WorkerPool {
  const pool = new WorkerPool({ threads, zstd, callerRuns: true });
  if (start) pool.start().catch(() => {});
  return pool;
}

/**
 * A worker pool for chunk decoding (--threads; default one thread per core),
 * or none for 1 (inline). Its workers start with the first chunk sent to
 * them: LZ4 and RAW chunks decode on this thread, so an LZ4 or RAW stream
 * never starts one.
 */
export function decodePool(command: string, threadsArg: string | undefined): WorkerPool | undefined {
  const threads = threadsOption(command, threadsArg);
  return threads === 1 ? undefined : newPool(threads, false, false);
}
