// Job and result shapes of the worker pool, and the messages that carry them
// between the calling thread and a worker. Everything here is structured-clone
// safe (typed arrays, bigint, plain objects); buffers travel as transferables.

import type { AutoContext } from "../codec/auto/decide.js";
import type { CodedChunk } from "../codec/coder.js";
import type { Coding } from "../codec/coding.js";
import type { CodecName } from "../codec/ids.js";
import { type ErrorCode, MigstreamError } from "../errors.js";

/**
 * Test-only fault injection. Ignored (the job fails with USAGE) unless the pool
 * was built with `faultInjection: true` or MIGSTREAM_FAULT_INJECTION=1.
 */
export interface FaultPlan {
  /** Wait this long (ms) before running the job, to reorder completions. */
  delayMs?: number;
  /** Crash when this job arrives after the worker has finished this many jobs. */
  crashAfter?: number;
  /**
   * How to crash: "throw" fails the job (the worker lives on), "exit" ends the
   * worker (process.exit in Node), "uncaught" raises an uncaught error in it.
   * Inline (threads: 1) every mode throws. Default "throw".
   */
  crash?: "throw" | "exit" | "uncaught";
}

/** Per-job buffer handling; see WorkerPool for the transfer rules. */
export interface TransferOptions {
  /** Copy the input instead of transferring (detaching) its ArrayBuffer. */
  copy?: boolean;
  /**
   * Move the input's whole ArrayBuffer even though the view covers only its
   * start (it must begin at offset 0): the job may use the spare room for its
   * result (a decode writes the raw bytes there), saving an allocation.
   */
  whole?: boolean;
}

/** How an encode job codes (numeric codec ids come back in the result). */
export interface EncodeOptions extends TransferOptions {
  codec: CodecName;
  /** The codec's level (resolveCoding's rules: USAGE when out of range). */
  level?: number;
  /** `auto`: the sink rate and threads its choice weighs (codec/auto/decide.ts). */
  auto?: AutoContext;
  /** Test only, see FaultPlan. */
  __test?: FaultPlan;
}

/** What a decode job needs; a CodedChunk is one. */
export interface DecodeRequest extends TransferOptions {
  codec: number;
  payload: Uint8Array;
  rawLength: number;
  /** Expected xxh3_64 (seed 0) of the raw bytes; a mismatch fails with CHECKSUM. */
  hash: bigint;
  /** Test only, see FaultPlan. */
  __test?: FaultPlan;
}

/** One chunk of an encode batch: its raw bytes at buffer[offset, offset + length). */
export interface EncodeSpan {
  offset: number;
  length: number;
}

/** One chunk of a decode batch: coded bytes at buffer[offset, offset + coded); the raw bytes go to buffer[offset, offset + rawLength). */
export interface DecodeSpan {
  offset: number;
  coded: number;
  codec: number;
  rawLength: number;
  hash: bigint;
}

/** A coded chunk of a batch: its payload is buffer[offset, offset + length) of the batch's span. */
export interface BatchItem {
  codec: number;
  level: number;
  /** Payload bytes (encode), raw bytes (decode). */
  length: number;
  hash: bigint;
}

/**
 * What a batch job gives back: its buffer (results in place of the inputs),
 * one item per chunk coded, and the first chunk that failed, if any (chunks
 * after it are not attempted).
 */
export interface BatchResult {
  buffer: Uint8Array;
  items: BatchItem[];
  failed?: { index: number; error: WireError };
}

/**
 * A job for `submit` / `mapOrdered`. Batches carry several chunks in one
 * buffer (moved whole, like `whole`), coded one after another by one worker:
 * one message each way for all of them.
 */
export type PoolJob =
  | { op: "encode"; raw: Uint8Array; options: EncodeOptions }
  | ({ op: "decode" } & DecodeRequest)
  | { op: "encodeBatch"; buffer: Uint8Array; spans: EncodeSpan[]; options: EncodeOptions }
  | ({ op: "decodeBatch"; buffer: Uint8Array; spans: DecodeSpan[]; __test?: FaultPlan } & TransferOptions)
  /** Test only: returns `data` unchanged (exercises transfer and ordering). */
  | ({ op: "__echo"; data: Uint8Array; __test?: FaultPlan } & TransferOptions);

/** The result type of a job. */
export type ResultOf<J extends PoolJob> = J extends { op: "encode" }
  ? CodedChunk
  : J extends { op: "encodeBatch" | "decodeBatch" }
    ? BatchResult
    : Uint8Array;

// ---- wire messages ----

/** A job as sent to a worker (buffers already prepared for transfer). */
export type WireJob =
  | { op: "encode"; raw: Uint8Array; coding: Coding; auto?: AutoContext; test?: FaultPlan }
  | { op: "decode"; codec: number; payload: Uint8Array; rawLength: number; hash: bigint; test?: FaultPlan }
  | { op: "encodeBatch"; buffer: Uint8Array; spans: EncodeSpan[]; coding: Coding; auto?: AutoContext; test?: FaultPlan }
  | { op: "decodeBatch"; buffer: Uint8Array; spans: DecodeSpan[]; test?: FaultPlan }
  | { op: "__echo"; data: Uint8Array; test?: FaultPlan };

export type WireResult = CodedChunk | Uint8Array | BatchResult;

/** Calling thread → worker. */
export type Request = { type: "init"; faults: boolean; zstd?: boolean } | { type: "job"; id: number; job: WireJob };

/** Worker → calling thread. */
export type Reply =
  | { type: "ready" }
  | { type: "done"; id: number; result: WireResult }
  | { type: "failed"; id: number; error: WireError };

/** A MigstreamError flattened for postMessage. */
export interface WireError {
  code: ErrorCode;
  message: string;
  offset?: number;
  frame?: number;
  device?: number;
  field?: string;
  step?: string;
  errno?: string;
}

/** Flattens any thrown value; anything that is not a MigstreamError is INTERNAL. */
export function toWireError(e: unknown): WireError {
  if (e instanceof MigstreamError) {
    const { code, message, offset, frame, device, field, step, errno } = e;
    return { code, message, offset, frame, device, field, step, errno };
  }
  const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return { code: "INTERNAL", message };
}

/** Rebuilds the typed error on the calling thread. */
export function fromWireError(w: WireError): MigstreamError {
  const { code, message, ...details } = w;
  return new MigstreamError(code, message, details);
}
