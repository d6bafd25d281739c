// Encoder options on the command line (save, encode, demo): codec, level,
// chunk size, dedup, key, and --threads for the worker pool.
import type { ChunkCoder, EncoderOptions } from "../format/encoder.js";
import { WorkerPool } from "../parallel/pool.js";
import { MAX_THREADS } from "../parallel/platform.js";
import type { CodecChoice } from "../parallel/jobs.js";
import { intOption, sizeOption, usageOf } from "./args.js";
import { readKeyFile } from "./key.js";

export const CODECS = ["raw", "zero", "lz4", "zstd", "auto"] as const;
/** Codec the CLI uses unless told otherwise. */
export const DEFAULT_CLI_CODEC = "auto";

export const ENCODING_OPTIONS = {
  codec: { type: "string" },
  level: { type: "string" },
  "chunk-size": { type: "string" },
  dedup: { type: "boolean" },
  "dedup-window": { type: "string" },
  "key-file": { type: "string" },
  threads: { type: "string" },
} as const;

export const ENCODING_HELP = `  --codec NAME         raw, zero, lz4, zstd or auto (default ${DEFAULT_CLI_CODEC}: zero pages as ZERO,
                       LZ4 or zstd per chunk where it pays, RAW otherwise)
  --level N            zstd level 1..19, or LZ4 acceleration
  --chunk-size BYTES   largest chunk (default 256KiB; 64KiB with --dedup)
  --dedup              content-defined chunks; repeated chunks become references
  --dedup-window BYTES how far back a reference may reach (default 64MiB)
  --key-file F         authenticate every frame with HMAC-SHA-256 (key: hex text or raw bytes)
  --threads N          code chunks on N worker threads (default 1: this thread)`;

export interface Encoding {
  options: EncoderOptions;
  key?: Uint8Array;
  threads: number;
  /** Ends the worker pool, if any. */
  close(): Promise<void>;
}

type Values = { [K in keyof typeof ENCODING_OPTIONS]?: (typeof ENCODING_OPTIONS)[K]["type"] extends "boolean" ? boolean : string };

export async function encodingFrom(command: string, v: Values): Promise<Encoding> {
  const codec = (v.codec ?? DEFAULT_CLI_CODEC) as (typeof CODECS)[number];
  if (!CODECS.includes(codec)) throw usageOf(command, `--codec '${v.codec}' is not one of ${CODECS.join(", ")}`);
  const level = v.level === undefined ? undefined : intOption(command, "--level", v.level, 0, 1, 65537);
  const threads = intOption(command, "--threads", v.threads, 1, 1, MAX_THREADS);
  const key = v["key-file"] === undefined ? undefined : await readKeyFile(v["key-file"]);
  const options: EncoderOptions = {
    codec,
    level,
    chunkSize: sizeOption(command, "--chunk-size", v["chunk-size"]),
    dedup: v.dedup === true,
    dedupWindow: sizeOption(command, "--dedup-window", v["dedup-window"]),
    key,
  };
  let pool: WorkerPool | undefined;
  if (threads > 1) {
    pool = new WorkerPool({ threads });
    const p = pool;
    const coder: ChunkCoder = { encode: (raw, c, l) => p.encode(raw, { codec: c as CodecChoice, level: l }) };
    options.coder = coder;
    await pool.start();
  }
  return { options, key, threads, close: async () => pool?.close() };
}
