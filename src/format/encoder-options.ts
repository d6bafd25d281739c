// Encoder options: what a caller may ask for, checked once (USAGE for bad
// values), and the header fields they declare. One-shot encoders declare the
// limits their input needs; streaming encoders the defaults unless told.

import { AutoSink, type SinkRate } from "../codec/auto/sink.js";
import { MAX_CHUNK_SIZE } from "../codec/coder.js";
import { type Coding, resolveCoding } from "../codec/coding.js";
import { MAX_DEDUP_WINDOW } from "../codec/dedup.js";
import type { CodecName } from "../codec/ids.js";
import { MigstreamError } from "../errors.js";
import type { CodingPool } from "./chunk-coders.js";
import {
  CHUNK_HEADER_SIZE,
  DEFAULT_CHUNK_SIZE,
  DEFAULT_DEDUP_WINDOW,
  DEFAULT_MAX_DEVICES,
  DEFAULT_MAX_METADATA,
  DEFAULT_MAX_TRANSACTION,
  MAX_DEDUP_MEMORY,
  MAX_DEVICES,
  MAX_METADATA_SIZE,
  MAX_NAME_LENGTH,
  MAX_TRANSACTION_SIZE,
  MIN_MAX_FRAME,
} from "./constants.js";
import type { HeaderFields } from "./header.js";
import { checkKey } from "./mac.js";
import { type ProtectOptions, protect } from "./protect-options.js";
import type { DeviceInput } from "./types.js";

/** Options of StreamEncoder and the one-shot encoders (checked once: USAGE or LIMIT); protection (key, encrypt, challenge, streamId) as ProtectOptions says. */
export interface EncoderOptions extends ProtectOptions {
  /** Chunk codec (CODECS); default "lz4". All-zero chunks are always ZERO; chunks that do not shrink go RAW. */
  codec?: CodecName;
  /** LZ4 acceleration (1..65537) or zstd level (1..19; "auto": the highest zstd level it may use, default 3). */
  level?: number;
  /**
   * `auto` only: how fast the output drains, in bytes/s (Infinity: no
   * limit), which auto weighs each chunk's coding cost against; or
   * "measured": the encoder times its own writes and follows the rate they
   * show (RAW until the sink first holds them back). Default 125e6 (1 Gbit/s).
   * The same bytes whether chunks are coded inline or on a pool, for a
   * given rate and number of threads.
   */
  sinkRate?: SinkRate;
  /** Largest chunk; default DEFAULT_CHUNK_SIZE (256 KiB). */
  chunkSize?: number;
  /** Content-defined chunking and DEDUP_REF chunks within the window. */
  dedup?: boolean;
  /** Dedup window per device in bytes; default DEFAULT_DEDUP_WINDOW. */
  dedupWindow?: number;
  /** HMAC key: an authenticated stream (asynchronous API only). */
  key?: Uint8Array;
  /** Declared largest transaction; default: the largest one (one-shot) or DEFAULT_MAX_TRANSACTION. */
  maxTransaction?: number;
  /** Declared largest device metadata; default: the largest one (one-shot) or DEFAULT_MAX_METADATA. */
  maxMetadata?: number;
  /** Declared most devices; default: their number (one-shot) or DEFAULT_MAX_DEVICES. */
  maxDevices?: number;
  /**
   * `write` is done with its bytes when its promise settles (it copies them or
   * has written them), so the encoder may reuse them for later output. Saves a
   * new array per output block. Default false: every block is a new array the
   * consumer may keep.
   */
  reuseOutput?: boolean;
  /**
   * Code chunks on these threads (a WorkerPool from "vfio-migstream/pool");
   * default: on this thread. The output is the same byte for byte (auto: for
   * the same sinkRate and thread count). The pool is not closed by the encoder.
   */
  pool?: CodingPool;
}

/** Encoder options, checked and resolved. */
export interface Settings {
  reuseOutput: boolean;
  coding: Coding;
  /** auto's sink (null for other codecs). */
  sink: AutoSink | null;
  chunkSize: number;
  dedupWindow: number;
  key: Uint8Array | null;
  /** The connection's challenge a bound stream's keys are derived with, or null. */
  binding: Uint8Array | null;
  pool: CodingPool | null;
  fields: HeaderFields;
}

export function usage(message: string, field?: string): MigstreamError {
  return new MigstreamError("USAGE", message, { field });
}

export function intOption(v: unknown, name: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw usage(`${name} must be an integer in ${min}..${max}, got ${String(v)}`, name);
  }
  return v;
}

/** What the one-shot encoders know about their input (declared limits default to it). */
export interface Known {
  maxTransaction: number;
  maxMetadata: number;
  devices: number;
}

export function settings(o: EncoderOptions, known: Known | null): Settings {
  if (o === null || typeof o !== "object") throw usage("options must be an object");
  const coding = resolveCoding(o.codec ?? "lz4", o.level);
  const sink = coding.codec === "auto" ? new AutoSink(o.sinkRate) : null;
  const dedup = o.dedup ?? false;
  const chunkSize = intOption(o.chunkSize ?? DEFAULT_CHUNK_SIZE, "chunkSize", 1, MAX_CHUNK_SIZE);
  const window = intOption(o.dedupWindow ?? DEFAULT_DEDUP_WINDOW, "dedupWindow", 0, MAX_DEDUP_WINDOW);
  const dedupWindow = dedup ? window : 0;
  const key = o.key === undefined ? null : checkKey(o.key);
  const p = protect(o, key);
  const maxTransaction = intOption(
    o.maxTransaction ?? known?.maxTransaction ?? DEFAULT_MAX_TRANSACTION,
    "maxTransaction",
    0,
    MAX_TRANSACTION_SIZE,
  );
  const maxMetadata = intOption(
    o.maxMetadata ?? known?.maxMetadata ?? DEFAULT_MAX_METADATA,
    "maxMetadata",
    0,
    MAX_METADATA_SIZE,
  );
  const maxDevices = intOption(o.maxDevices ?? known?.devices ?? DEFAULT_MAX_DEVICES, "maxDevices", 0, MAX_DEVICES);
  if (dedupWindow * maxDevices > MAX_DEDUP_MEMORY) {
    throw new MigstreamError(
      "LIMIT",
      `dedupWindow ${dedupWindow} × maxDevices ${maxDevices} exceeds ${MAX_DEDUP_MEMORY} (decoders would refuse the stream); lower one`,
      { field: "dedupWindow" },
    );
  }
  const pool = o.pool ?? null;
  if (pool !== null && (typeof pool.coder !== "function" || !(pool.threads >= 1)))
    throw usage("pool must be a WorkerPool (threads, coder())", "pool");
  return {
    reuseOutput: o.reuseOutput === true,
    coding,
    sink,
    chunkSize,
    dedupWindow,
    key,
    binding: p.binding,
    pool,
    fields: {
      macAlg: p.macAlg,
      flags: p.flags,
      streamId: p.streamId,
      maxFrame: Math.max(MIN_MAX_FRAME, CHUNK_HEADER_SIZE + chunkSize, 1 + MAX_NAME_LENGTH + maxMetadata),
      maxChunk: chunkSize,
      maxTransaction,
      dedupWindow,
      maxMetadata,
      maxDevices,
    },
  };
}

/** Declared limits of a one-shot encoder: from the options, else from its input. */
export function declared(
  o: EncoderOptions,
  k: Known,
): Pick<EncoderOptions, "maxTransaction" | "maxMetadata" | "maxDevices"> {
  return {
    maxTransaction: o.maxTransaction ?? k.maxTransaction,
    maxMetadata: o.maxMetadata ?? k.maxMetadata,
    maxDevices: o.maxDevices ?? k.devices,
  };
}

export function survey(devices: DeviceInput[]): Known {
  if (!Array.isArray(devices)) throw usage("devices must be an array");
  let maxTransaction = 0;
  let maxMetadata = 0;
  for (const d of devices) {
    if (d === null || typeof d !== "object" || !Array.isArray(d.items)) throw usage("each device needs an items array");
    maxMetadata = Math.max(maxMetadata, d.metadata?.length ?? 0);
    for (const it of d.items)
      if (it?.kind === "transaction" && it.data instanceof Uint8Array)
        maxTransaction = Math.max(maxTransaction, it.data.length);
  }
  return { maxTransaction, maxMetadata, devices: devices.length };
}
