// A link simulated at a fixed rate in front of a write function: bytes queue
// up, drain at that rate, and a write settles once the queue is short enough
// (like a socket buffer). For benchmarks and tests of slow sinks.

import { MigstreamError } from "../errors.js";

/** Queue a throttled link holds before its writes block (like a socket buffer). */
export const THROTTLE_BUFFER = 4 << 20;

const clock = () => performance.now();

/** Options of throttle(): the queue before writes block, and the clock (tests pass their own). */
export interface ThrottleOptions {
  /** Bytes queued before writes block (default THROTTLE_BUFFER). */
  buffer?: number;
  /** Clock in ms (default performance.now). */
  now?: () => number;
  /** Waits ms (default setTimeout). */
  sleep?: (ms: number) => Promise<void>;
}

/** A write function that drains at a fixed rate; `drained()` resolves once everything written has gone. */
export interface ThrottledSink {
  (bytes: Uint8Array): Promise<void>;
  drained(): Promise<void>;
}

/**
 * Simulates a link of `bytesPerSecond` in front of `write` (default: discard):
 * bytes queue up, drain at that rate, and a write settles once no more than
 * `buffer` bytes are queued.
 */
export function throttle(
  bytesPerSecond: number,
  write?: (bytes: Uint8Array) => void | Promise<void>,
  options: ThrottleOptions = {},
): ThrottledSink {
  if (!(bytesPerSecond > 0))
    throw new MigstreamError("USAGE", `rate must be > 0 bytes/s, got ${bytesPerSecond}`, { field: "rate" });
  const now = options.now ?? clock;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const msPerByte = 1000 / bytesPerSecond;
  const slack = (options.buffer ?? THROTTLE_BUFFER) * msPerByte;
  let emptyAt = now();
  const sink = (async (bytes: Uint8Array) => {
    const t = now();
    emptyAt = Math.max(emptyAt, t) + bytes.length * msPerByte;
    if (write) await write(bytes);
    const wait = emptyAt - slack - now();
    if (wait > 0) await sleep(wait);
  }) as ThrottledSink;
  sink.drained = async () => {
    const wait = emptyAt - now();
    if (wait > 0) await sleep(wait);
  };
  return sink;
}
