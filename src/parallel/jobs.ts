// Job and result shapes of the worker pool, and the messages that carry them
// between the calling thread and a worker. Everything here is structured-clone
// safe (typed arrays, bigint, plain objects); buffers travel as transferables.

import { MigstreamError, type ErrorCode } from "../errors.js";

/** Codec choice for an encode job (numeric ids come back in the result). */
export type CodecChoice = "raw" | "zero" | "lz4" | "zstd" | "auto";

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
}

export interface EncodeOptions extends TransferOptions {
  codec: CodecChoice;
  level?: number;
  /** Test only, see FaultPlan. */
  __test?: FaultPlan;
}

/** A coded chunk: what the stream format writes for one chunk. */
export interface EncodedChunk {
  /** Numeric codec id (as the codec layer defines it). */
  codec: number;
  level: number;
  payload: Uint8Array;
  rawLength: number;
  /** xxh3_64 (seed 0) of the raw bytes. */
  hash: bigint;
}

/** What a decode job needs; an EncodedChunk is one. */
export interface DecodeRequest extends TransferOptions {
  codec: number;
  payload: Uint8Array;
  rawLength: number;
  /** Expected xxh3_64 (seed 0) of the raw bytes; a mismatch fails with CHECKSUM. */
  hash: bigint;
  /** Test only, see FaultPlan. */
  __test?: FaultPlan;
}

/** A job for `submit` / `mapOrdered`. */
export type PoolJob =
  | { op: "encode"; raw: Uint8Array; options: EncodeOptions }
  | ({ op: "decode" } & DecodeRequest)
  /** Test only: returns `data` unchanged (exercises transfer and ordering). */
  | ({ op: "__echo"; data: Uint8Array; __test?: FaultPlan } & TransferOptions);

/** The result type of a job. */
export type ResultOf<J extends PoolJob> = J extends { op: "encode" } ? EncodedChunk : Uint8Array;

// ---- wire messages ----

/** A job as sent to a worker (buffers already prepared for transfer). */
export type WireJob =
  | { op: "encode"; raw: Uint8Array; codec: CodecChoice; level?: number; test?: FaultPlan }
  | { op: "decode"; codec: number; payload: Uint8Array; rawLength: number; hash: bigint; test?: FaultPlan }
  | { op: "__echo"; data: Uint8Array; test?: FaultPlan };

export type WireResult = EncodedChunk | Uint8Array;

/** Calling thread → worker. */
export type Request = { type: "init"; faults: boolean } | { type: "job"; id: number; job: WireJob };

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
