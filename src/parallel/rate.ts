// Sink rates: how fast the destination of a stream drains (SinkMeter, which
// `auto` coding reads through poolCoder), and a link simulated at a fixed rate
// (throttle, for benchmarks and tests).
//
// SinkMeter times each write of the encoder's output. A write that spent at
// least SINK_BOUND_SHARE of its span (the time since the previous write ended)
// blocked found the sink's queue full: the sink was the bottleneck. When the
// write before it was bound too, the queue was full all along, and the bytes
// the sink took over the span measure its rate. Writes that did not block
// say only that the sink is at least as fast as the writer; while they go on,
// the estimate grows by SINK_RATE_GROWTH per window of bytes written, so auto
// tries cheaper codecs until the sink holds the writer back again. Before any
// measurement the estimate is the initial guess — by default unlimited, so a
// fast sink is never taxed with compression it does not need.

import { MigstreamError } from "../errors.js";

/** Bytes of recent sink-bound writes the estimate averages over (and the unit of growth). */
export const SINK_WINDOW_BYTES = 8 << 20;
/** Sink-bound writes needed before the first estimate. */
export const SINK_MIN_WRITES = 1;
/** Writes smaller than this are never samples (a small write's await is mostly overhead). */
export const SINK_MIN_SAMPLE_BYTES = 64 << 10;
/** Share of a write's span spent blocked from which it counts as sink-bound. */
export const SINK_BOUND_SHARE = 0.25;
/** Growth of the estimate per window of bytes written without the sink holding the writer back. */
export const SINK_RATE_GROWTH = 1.25;
/** Queue a throttled link holds before its writes block (like a socket buffer). */
export const THROTTLE_BUFFER = 4 << 20;

export interface SinkMeterOptions {
  /** Rate assumed before the first measurement, bytes/s (default Infinity: unlimited). */
  initialRate?: number;
  /** Clock in ms (default performance.now); tests pass their own. */
  now?: () => number;
  /** Bytes of writes per estimate (default SINK_WINDOW_BYTES). */
  windowBytes?: number;
}

/** A sink-bound write: bytes taken over its span (ms). */
interface Sample {
  bytes: number;
  span: number;
}

const clock = () => performance.now();

/** Measures how fast a sink drains from the writes made to it. */
export class SinkMeter {
  private readonly now: () => number;
  private readonly windowBytes: number;
  private readonly initial: number;
  /** Recent sink-bound writes (oldest first, from `head`) and their sums. */
  private readonly samples: Sample[] = [];
  private head = 0;
  private bytes = 0;
  private span = 0;
  private lastEnd = -1;
  private total = 0;
  /** Bytes written when the last sink-bound write ended. */
  private boundAt = 0;
  /** Bytes and span of the writes since then (the writer's own pace). */
  private freeBytes = 0;
  private freeSpan = 0;
  /** The last write was sink-bound. */
  private lastBound = false;

  constructor(options: SinkMeterOptions = {}) {
    const initial = options.initialRate ?? Infinity;
    if (!(initial > 0)) throw new MigstreamError("USAGE", `initialRate must be > 0, got ${initial}`, { field: "initialRate" });
    this.initial = initial;
    this.now = options.now ?? clock;
    this.windowBytes = options.windowBytes ?? SINK_WINDOW_BYTES;
  }

  /** Wraps a write function so that every write is timed (one that returns no promise never blocks). */
  wrap(write: (bytes: Uint8Array) => void | Promise<void>): (bytes: Uint8Array) => Promise<void> {
    return async (bytes) => {
      const start = this.now();
      const r = write(bytes);
      if (r instanceof Promise) await r;
      this.record(bytes.length, start, r instanceof Promise ? this.now() : start);
    };
  }

  /** Records one write of `bytes` that started at `start` and settled at `end` (ms). */
  record(bytes: number, start: number, end: number): void {
    const span = Math.max(this.lastEnd < 0 ? end - start : end - this.lastEnd, 0);
    const blocked = Math.max(end - start, 0);
    this.lastEnd = end;
    this.total += bytes;
    const bound = span > 0 && bytes >= SINK_MIN_SAMPLE_BYTES && blocked >= SINK_BOUND_SHARE * span;
    const after = this.lastBound;
    this.lastBound = bound;
    if (!bound) {
      this.freeBytes += bytes;
      this.freeSpan += span;
      return;
    }
    this.boundAt = this.total;
    this.freeBytes = this.freeSpan = 0;
    // Only a write after another sink-bound one started with the sink's queue full: its span is all draining.
    if (!after) return;
    this.samples.push({ bytes, span });
    this.bytes += bytes;
    this.span += span;
    while (this.samples.length - this.head > SINK_MIN_WRITES && this.bytes - this.samples[this.head].bytes >= this.windowBytes) {
      const old = this.samples[this.head++];
      this.bytes -= old.bytes;
      this.span -= old.span;
    }
    if (this.head > 1024) {
      this.samples.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Estimated rate in bytes/s (the initial guess until the sink has held the writer back SINK_MIN_WRITES times). */
  get rate(): number {
    if (this.samples.length - this.head < SINK_MIN_WRITES || this.span <= 0) return this.initial;
    const bound = (this.bytes * 1000) / this.span;
    if (this.boundAt === this.total) return bound;
    const grown = bound * SINK_RATE_GROWTH ** ((this.total - this.boundAt) / this.windowBytes);
    const pace = this.freeSpan > 0 ? (this.freeBytes * 1000) / this.freeSpan : 0;
    return Math.max(grown, pace);
  }

  /** Bytes recorded so far. */
  get bytesWritten(): number {
    return this.total;
  }
}

/** Weight each older coding-time measurement keeps per newer one (SpeedMeter). */
export const SPEED_DECAY = 0.9;
/** Probe time (ms, decayed) measured before the speed estimate replaces the initial guess. */
export const SPEED_MIN_MS = 0.5;
/** The speed estimate stays within [1 / SPEED_LIMIT, SPEED_LIMIT]. */
export const SPEED_LIMIT = 16;

/**
 * This machine's coding speed relative to auto's cost table, from the probes
 * of the chunks the pool coded: the time the model expected over the time
 * they took (a busy or slower machine, or threads sharing cores, give less
 * than 1).
 */
export class SpeedMeter {
  private predicted = 0;
  private actual = 0;

  constructor(private readonly initial = 1) {}

  record(predictedMs: number, actualMs: number): void {
    if (!(predictedMs >= 0 && actualMs >= 0)) return;
    this.predicted = this.predicted * SPEED_DECAY + predictedMs;
    this.actual = this.actual * SPEED_DECAY + actualMs;
  }

  get speed(): number {
    if (this.actual < SPEED_MIN_MS || this.predicted <= 0) return this.initial;
    return Math.min(Math.max(this.predicted / this.actual, 1 / SPEED_LIMIT), SPEED_LIMIT);
  }
}

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
export function throttle(bytesPerSecond: number, write?: (bytes: Uint8Array) => void | Promise<void>, options: ThrottleOptions = {}): ThrottledSink {
  if (!(bytesPerSecond > 0)) throw new MigstreamError("USAGE", `rate must be > 0 bytes/s, got ${bytesPerSecond}`, { field: "rate" });
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
