// auto's sink model: how fast the destination of a stream drains, as the one
// number (bytes/s) decide.ts weighs coding against. An encoder either is told
// a fixed rate, or measures its own writes (`sinkRate: "measured"`): the same
// model whether chunks are coded inline or on a worker pool (AutoSink).
//
// SinkMeter times each write of the encoder's output and keeps a window of the
// latest ones (at least SINK_WINDOW_BYTES and SINK_WINDOW_MS). When the writer
// spent at least SINK_BUSY_SHARE of the window blocked, the sink held it back
// all along, so it never ran dry. A write that blocked (SINK_BOUND_SHARE of
// its span) found the sink's queue full; between the ends of two such writes,
// the sink took exactly the bytes written, so bytes over time from the first
// in the window to the latest is the estimate. Timing noise of single writes
// (a wait that overslept lets the next writes through at once) only shifts
// bytes between writes inside that stretch; it matters at its two ends alone.
// While the writer is not held back at all (blocked less than SINK_FREE_SHARE
// of the window) the estimate grows by SINK_RATE_GROWTH per window of bytes
// written, so auto tries cheaper codecs until the sink holds the writer back
// again; in between (a pipeline in balance) it stays. Before any measurement
// the estimate is the initial guess — by default unlimited, so a fast sink is
// never taxed with compression it does not need — and a whole window without
// the writer held back turns a guess into unlimited.

import { MigstreamError } from "../../errors.js";
import { AUTO_DEFAULT_SINK_RATE, type AutoContext } from "./decide.js";

/** Least bytes of writes in the window the estimate is taken over (and the unit of growth). */
export const SINK_WINDOW_BYTES = 8 << 20;
/** Least time the window covers, ms (so that a fast sink's estimate spans many waits). */
export const SINK_WINDOW_MS = 20;
/** The first measurement may cover 1/SINK_FIRST_PART of a window (later ones: half). */
const SINK_FIRST_PART = 4;
/** Most writes the window keeps (tiny writes that take no time would otherwise pile up). */
export const SINK_WINDOW_MAX_WRITES = 1024;
/** Share of the window's time the writer must have spent blocked for the window to measure the sink. */
const SINK_BUSY_SHARE = 0.5;
/** Share of its span (the time since the previous write ended) a write must spend blocked to have found the sink's queue full. */
const SINK_BOUND_SHARE = 0.25;
/** Least time blocked that counts (ms): awaiting a write that went straight through takes a few µs, and a pause for GC more. */
const SINK_MIN_BLOCK_MS = 0.5;
/** Share of the window's time below which the writer counts as not held back at all (the estimate may grow). */
const SINK_FREE_SHARE = 0.1;
/** Growth of the estimate per window of bytes written while the sink did not hold the writer back. */
export const SINK_RATE_GROWTH = 1.25;

export interface SinkMeterOptions {
  /** Rate assumed before the first measurement, bytes/s (default Infinity: unlimited); a whole window not held back makes it unlimited. */
  initialRate?: number;
  /** Clock in ms (default performance.now); tests pass their own. */
  now?: () => number;
  /** Bytes of writes per estimate (default SINK_WINDOW_BYTES). */
  windowBytes?: number;
}

/** One write: its bytes, the time since the previous write ended (ms), and how long it blocked (ms). */
interface Write {
  bytes: number;
  span: number;
  blocked: number;
}

const clock = () => performance.now();

/** A write that blocked for SINK_BOUND_SHARE of its span, and at least SINK_MIN_BLOCK_MS, found the sink's queue full. */
const foundFull = (blocked: number, span: number) => blocked >= SINK_MIN_BLOCK_MS && blocked >= SINK_BOUND_SHARE * span;

/** Measures how fast a sink drains from the writes made to it. */
export class SinkMeter {
  private readonly now: () => number;
  private readonly windowBytes: number;
  private readonly initial: number;
  /** The window: recent writes (oldest first, from `head`) and their sums. */
  private readonly writes: Write[] = [];
  private head = 0;
  private bytes = 0;
  private span = 0;
  private blocked = 0;
  private lastEnd = -1;
  private total = 0;
  /** The last measurement (bytes/s; 0: none yet), and the bytes written since while the writer was not held back. */
  private measured = 0;
  private free = 0;
  /** Before any measurement, a whole window went by without the writer held back. */
  private unlimited = false;

  constructor(options: SinkMeterOptions = {}) {
    const initial = options.initialRate ?? Infinity;
    if (!(initial > 0))
      throw new MigstreamError("USAGE", `initialRate must be > 0, got ${initial}`, { field: "initialRate" });
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
    if (!(Number.isSafeInteger(bytes) && bytes >= 0 && Number.isFinite(start) && Number.isFinite(end))) {
      throw new MigstreamError(
        "USAGE",
        `a write needs a byte count and finite times, got ${bytes} bytes from ${start} to ${end} ms`,
        { field: "record" },
      );
    }
    const span = Math.max(this.lastEnd < 0 ? end - start : end - this.lastEnd, 0);
    const blocked = Math.min(Math.max(end - start, 0), span);
    this.lastEnd = end;
    this.total += bytes;
    this.writes.push({ bytes, span, blocked });
    this.bytes += bytes;
    this.span += span;
    this.blocked += blocked;
    // Drop the oldest writes the window can do without (and beyond SINK_WINDOW_MAX_WRITES, whatever they cover).
    for (;;) {
      const old = this.writes[this.head];
      const needed = this.bytes - old.bytes < this.windowBytes || this.span - old.span < SINK_WINDOW_MS;
      if (needed && this.writes.length - this.head <= SINK_WINDOW_MAX_WRITES) break;
      this.head++;
      this.bytes -= old.bytes;
      this.span -= old.span;
      this.blocked -= old.blocked;
    }
    if (this.head > 1024) {
      this.writes.splice(0, this.head);
      this.head = 0;
    }
    const full = this.bytes >= this.windowBytes && this.span >= SINK_WINDOW_MS;
    if (full && this.blocked < SINK_FREE_SHARE * this.span) {
      this.free += bytes;
      if (this.measured === 0) this.unlimited = true; // a whole window, never held back: faster than the writer can tell
      return;
    }
    // A measurement runs from the end of one write that found the sink's queue full to the end of another.
    if (!foundFull(blocked, span) || this.blocked < SINK_BUSY_SHARE * this.span) return;
    if (!full && this.measured !== 0) return;
    let k = this.head;
    let b = this.bytes;
    let t = this.span;
    for (; k < this.writes.length - 1; k++) {
      const w = this.writes[k];
      b -= w.bytes;
      t -= w.span;
      if (foundFull(w.blocked, w.span)) break;
    }
    // The first measurement may be shorter: until then auto sends everything RAW.
    const part = this.measured === 0 ? SINK_FIRST_PART : 2;
    if (part * b >= this.windowBytes && part * t >= SINK_WINDOW_MS) {
      this.measured = (b * 1000) / t;
      this.free = 0;
    }
  }

  /** Estimated rate in bytes/s (the initial guess until the sink has held the writer back, or a window has shown it does not). */
  get rate(): number {
    if (this.measured === 0) return this.unlimited ? Infinity : this.initial;
    return this.measured * SINK_RATE_GROWTH ** (this.free / this.windowBytes);
  }

  /** True once the estimate rests on the writes (measured, or shown unlimited), not on the initial guess. */
  get settled(): boolean {
    return this.measured !== 0 || this.unlimited;
  }

  /** Bytes recorded so far. */
  get bytesWritten(): number {
    return this.total;
  }
}

/**
 * Chunks a pooled encoder keeps in flight while auto's meter has no
 * measurement yet: until then auto sends RAW, so the fewer chunks decided
 * before the sink first holds the writer back, the better (100 MB/s link,
 * 256 MiB: 63 chunks went RAW with 32 in flight, 34 with 8; no change
 * unthrottled).
 */
export const AUTO_UNSETTLED_IN_FLIGHT = 8;

/** What an encoder tells auto about its sink: a rate in bytes/s (Infinity: unlimited), or "measured" from its writes. */
export type SinkRate = number | "measured";

/**
 * auto's view of one encoder's sink: a fixed rate, or a SinkMeter on the
 * encoder's writes. The encoder asks it for auto's context as it codes (per
 * chunk inline, per batch on a pool) and for how many chunks to keep in
 * flight.
 */
export class AutoSink {
  private readonly fixed: number;
  private readonly meter: SinkMeter | null;

  /** Throws USAGE for a rate that is not > 0 (nor "measured"). */
  constructor(rate: SinkRate = AUTO_DEFAULT_SINK_RATE) {
    if (rate === "measured") {
      this.meter = new SinkMeter();
      this.fixed = 0;
      return;
    }
    if (typeof rate !== "number" || !(rate > 0))
      throw new MigstreamError("USAGE", `sinkRate must be > 0 bytes/s or "measured", got ${String(rate)}`, {
        field: "sinkRate",
      });
    this.meter = null;
    this.fixed = rate;
  }

  /** The encoder's write function, timed when the rate is measured. */
  wrap(write: (bytes: Uint8Array) => void | Promise<void>): (bytes: Uint8Array) => void | Promise<void> {
    return this.meter === null ? write : this.meter.wrap(write);
  }

  /** The sink rate auto assumes now, bytes/s. */
  get rate(): number {
    return this.meter === null ? this.fixed : this.meter.rate;
  }

  /** auto's context for chunks coded now on `threads` threads. */
  context(threads: number): AutoContext {
    return { sinkRate: this.rate, threads };
  }

  /** Chunks a pooled encoder keeps in flight: AUTO_UNSETTLED_IN_FLIGHT until a measured sink has been measured, else `most`. */
  inFlight(most: number): number {
    return this.meter !== null && !this.meter.settled ? Math.min(most, AUTO_UNSETTLED_IN_FLIGHT) : most;
  }
}
