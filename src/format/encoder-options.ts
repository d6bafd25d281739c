// Encoder options: what a caller may ask for, checked once (USAGE for bad
// values), and the header fields they declare. One-shot encoders declare the
// limits their input needs; streaming encoders the defaults unless told.

import { MAX_DEDUP_WINDOW } from "../codec/dedup.js";
import { checkLz4Acceleration } from "../codec/lz4.js";
import { CODEC_CHOICES, MAX_CHUNK_SIZE, type CodecName } from "../codec/select.js";
import { checkZstdLevel } from "../codec/zstd.js";
import { MigstreamError } from "../errors.js";
import {
  CHUNK_HEADER_SIZE,
  DEFAULT_CHUNK_SIZE,
  DEFAULT_DEDUP_CHUNK_SIZE,
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
import { protect, type ProtectOptions } from "./protect-options.js";
import type { DeviceInput } from "./types.js";

export interface EncoderOptions extends ProtectOptions {
  /** Chunk codec; default "lz4". All-zero chunks are always ZERO; chunks that do not shrink go RAW. */
  codec?: "raw" | "zero" | "lz4" | "zstd" | "auto";
  /** LZ4 acceleration (1..) or zstd level (1..19; "auto": the zstd level it may use). */
  level?: number;
  /** Largest chunk; default DEFAULT_CHUNK_SIZE (DEFAULT_DEDUP_CHUNK_SIZE with dedup). */
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
  /** Codes chunks elsewhere (e.g. a worker pool); default: inline on this thread. */
  coder?: ChunkCoder;
}

/** Codes chunks; lets src/parallel's WorkerPool plug in (poolCoder). */
export interface ChunkCoder {
  /**
   * The encoder passes its own copy of each chunk (the coder may keep or move
   * it), or with `copiesInput` a view of the caller's bytes, valid only until
   * encode returns.
   */
  encode(raw: Uint8Array, codec: string, level?: number): Promise<{ codec: number; level: number; payload: Uint8Array; rawLength: number; hash: bigint }>;
  /** encode copies `raw` before it returns (so the encoder need not copy it first). */
  readonly copiesInput?: boolean;
  /** Called once the encoder has framed (copied) a coded chunk: its payload's memory may be reused. */
  release?(chunk: { payload: Uint8Array }): void;
  /**
   * Zero copy, optional: a buffer of n bytes for the caller to fill (a
   * device's data read straight into it) and pass back to encodeOwned.
   */
  lend?(n: number): Uint8Array;
  /**
   * Codes the chunks at `chunks` (offset, length) of a buffer from lend(),
   * taking the buffer over (no copy): one promise per chunk, in order. Returns
   * null, having taken nothing, when it cannot (not lent, too large): the
   * encoder then codes the chunks one by one.
   */
  encodeOwned?(
    buffer: Uint8Array,
    chunks: readonly { offset: number; length: number }[],
    codec: string,
    level?: number,
  ): Promise<{ codec: number; level: number; payload: Uint8Array; rawLength: number; hash: bigint }>[] | null;
  /** Chunks the encoder keeps in flight, asked before each one (default and most: CODER_IN_FLIGHT). */
  inFlight?(): number;
}

/** One device of a StreamEncoder; structurally a SaveSink (src/protocol/types.ts). */

export interface Settings {
  reuseOutput: boolean;
  codec: CodecName | "auto";
  level: number | undefined;
  chunkSize: number;
  dedupWindow: number;
  key: Uint8Array | null;
  /** The connection's challenge a bound stream's keys are derived with, or null. */
  binding: Uint8Array | null;
  coder: ChunkCoder | null;
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
  const codec = o.codec ?? "lz4";
  if (!CODEC_CHOICES.includes(codec)) throw usage(`unknown codec ${String(codec)}`, "codec");
  const level = o.level;
  if (level !== undefined) {
    if (codec === "lz4") checkLz4Acceleration(level);
    else if (codec === "zstd" || codec === "auto") checkZstdLevel(level);
    else throw usage(`codec ${codec} takes no level`, "level");
  }
  const dedup = o.dedup ?? false;
  const chunkSize = intOption(o.chunkSize ?? (dedup ? DEFAULT_DEDUP_CHUNK_SIZE : DEFAULT_CHUNK_SIZE), "chunkSize", 1, MAX_CHUNK_SIZE);
  const window = intOption(o.dedupWindow ?? DEFAULT_DEDUP_WINDOW, "dedupWindow", 0, MAX_DEDUP_WINDOW);
  const dedupWindow = dedup ? window : 0;
  const key = o.key === undefined ? null : checkKey(o.key);
  const p = protect(o, key);
  const maxTransaction = intOption(o.maxTransaction ?? known?.maxTransaction ?? DEFAULT_MAX_TRANSACTION, "maxTransaction", 0, MAX_TRANSACTION_SIZE);
  const maxMetadata = intOption(o.maxMetadata ?? known?.maxMetadata ?? DEFAULT_MAX_METADATA, "maxMetadata", 0, MAX_METADATA_SIZE);
  const maxDevices = intOption(o.maxDevices ?? known?.devices ?? DEFAULT_MAX_DEVICES, "maxDevices", 0, MAX_DEVICES);
  if (dedupWindow * maxDevices > MAX_DEDUP_MEMORY) {
    throw new MigstreamError(
      "LIMIT",
      `dedupWindow ${dedupWindow} × maxDevices ${maxDevices} exceeds ${MAX_DEDUP_MEMORY} (decoders would refuse the stream); lower one`,
      { field: "dedupWindow" },
    );
  }
  const coder = o.coder ?? null;
  if (coder !== null && typeof coder.encode !== "function") throw usage("coder must have an encode method", "coder");
  return {
    reuseOutput: o.reuseOutput === true,
    codec,
    level,
    chunkSize,
    dedupWindow,
    key,
    binding: p.binding,
    coder,
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
export function declared(o: EncoderOptions, k: Known): Pick<EncoderOptions, "maxTransaction" | "maxMetadata" | "maxDevices"> {
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
    for (const it of d.items) if (it?.kind === "transaction" && it.data instanceof Uint8Array) maxTransaction = Math.max(maxTransaction, it.data.length);
  }
  return { maxTransaction, maxMetadata, devices: devices.length };
}

