// What the v1 and v2 drivers share while a save or resume runs: the cancel
// check before every step, progress delivery, where saved data is read into
// (a driver-owned buffer, the caller's factory, or one the sink lends), the
// sink calls with their failures, and the counters behind the summaries.
import { MigstreamError } from "../errors.js";
import { describe } from "./failure.js";
import type { PrecopyControl, PrecopyEnd } from "./policy.js";
import type { PhaseCount, Progress, ProgressListener, ResumeSummary, SaveSummary } from "./progress.js";
import type { ResumeOptions } from "./resume.js";
import type { SaveOptions } from "./save.js";
import type { MigrationProtocol, Phase, SaveSink } from "./types.js";

/** Throws ABORTED naming `step` when `signal` fired. */
export function checkAbort(signal: AbortSignal | undefined, step: string, direction: "save" | "resume"): void {
  // The reason (e.g. "interrupted (SIGHUP)") belongs in the report: it says why the run stopped.
  if (signal?.aborted)
    throw new MigstreamError(
      "ABORTED",
      `${step}: ${direction} cancelled${signal.reason instanceof Error ? ` (${signal.reason.message})` : ""}`,
      { step, cause: signal.reason },
    );
}

/** Delivers one progress event; a listener that throws fails the run with USAGE. */
export function emitProgress(listener: ProgressListener | undefined, p: Progress): void {
  if (!listener) return;
  try {
    listener(p);
  } catch (e) {
    throw new MigstreamError("USAGE", `${p.direction}: onProgress threw: ${describe(e)}`, { cause: e });
  }
}

/**
 * Buffers for saved data: the `buffer` save option wins, then the sink's
 * lent buffers (taken over by transaction()), else two reused buffers taken
 * in turn (one may still be in the sink while the next is read into the
 * other: see SaveRun.handOver).
 */
export class SaveBuffers {
  readonly #own = [new Uint8Array(0), new Uint8Array(0)];
  #turn = 0;
  readonly #make: ((n: number) => Uint8Array) | undefined;
  /** Whether a buffer may be read into while the previous one is still in the sink (not with a caller's factory: it may hand out the same buffer again). */
  readonly overlap: boolean;

  constructor(sink: SaveSink, factory: ((n: number) => Uint8Array) | undefined) {
    this.#make = factory ?? (sink.buffer ? (n: number) => sink.buffer!(n) : undefined);
    this.overlap = factory === undefined;
  }

  /** A buffer of at least `size` bytes (a factory's is checked). */
  take(size: number): Uint8Array {
    if (this.#make) {
      const b = this.#make(size);
      if (!(b instanceof Uint8Array) || b.length < size) {
        throw new MigstreamError(
          "USAGE",
          `save: the buffer factory returned ${b instanceof Uint8Array ? `${b.length} bytes` : "no Uint8Array"} for a ${size}-byte buffer`,
        );
      }
      return b;
    }
    this.#turn ^= 1;
    const i = this.#turn;
    if (this.#own[i].length < size) this.#own[i] = new Uint8Array(size);
    return this.#own[i];
  }
}

/** The sink's failure, keeping its code when it is ours, as `cause`. */
export function sinkError(e: unknown, step: string, what: string): MigstreamError {
  const ours = e instanceof MigstreamError ? e : undefined;
  return new MigstreamError(ours?.code ?? "IO", `${step}: ${what}: ${describe(e)}`, {
    step,
    errno: ours?.errno,
    cause: e,
  });
}

/** Tells the sink which protocol produced the data (before the first phase). */
export async function recordProtocol(sink: SaveSink, p: MigrationProtocol): Promise<void> {
  try {
    await sink.protocol?.(p);
  } catch (e) {
    throw sinkError(e, "save: sink protocol", `the sink rejected the protocol record (generation ${p.generation})`);
  }
}

const now = (): number => performance.now();

/** When each part of a save began and ended (performance.now()). */
export interface SaveTimes {
  t0: number;
  setupEnd: number;
  precopyEnd: number;
  stopcopyStart: number;
  stopcopyEnd: number;
}

/**
 * A save in progress, either generation: its phase, counters and sink. The
 * driver adds the protocol steps; this holds what they report.
 */
export class SaveRun {
  phase: Phase = "setup";
  iteration = 0;
  /** Pre-copy iterations started. */
  iterations = 0;
  /** Last pending estimate (v1 pending_bytes; v2 precopy info or the last iteration's bytes). */
  pending = 0;
  /** pending_bytes / PRECOPY_INFO reads issued. */
  pendingReads = 0;
  transactions = 0;
  bytes = 0;
  readonly counts: Record<"precopy" | "stopcopy", PhaseCount> = {
    precopy: { transactions: 0, bytes: 0 },
    stopcopy: { transactions: 0, bytes: 0 },
  };
  readonly buffers: SaveBuffers;
  /** The last transaction, still in the sink while the driver reads the next one (see handOver). */
  #sinking: Promise<void> | null = null;
  /** Its failure, once it failed: the error a failed save reports first (it came first). */
  sinkFailure: unknown = undefined;

  constructor(
    readonly sink: SaveSink,
    readonly options: SaveOptions,
  ) {
    this.buffers = new SaveBuffers(sink, options.buffer);
  }

  /**
   * Hands one transaction to the sink once the previous one left it. When the
   * buffers allow (SaveBuffers.overlap) it returns without waiting for this
   * one, so the driver asks the device for the next buffer while the sink
   * codes and writes this one: the device's round trips and the sink's work
   * overlap instead of adding up. The device has acknowledged the buffer
   * already (the data is ours), so nothing in the protocol's order changes.
   * sinkDone() waits for it (before a phase, STOP, or the summary).
   */
  async handOver(data: Uint8Array): Promise<void> {
    await this.sinkDone();
    if (!this.buffers.overlap) return this.toSink(data);
    const p = this.toSink(data);
    this.#sinking = p;
    p.catch((e: unknown) => {
      this.sinkFailure ??= e;
    });
  }

  /** Waits until the sink is done with the transaction handed over last (throws its failure). */
  async sinkDone(): Promise<void> {
    const p = this.#sinking;
    if (p === null) return;
    await p;
    if (this.#sinking === p) this.#sinking = null;
  }

  /** Hands one transaction to the sink and counts it. */
  async toSink(data: Uint8Array): Promise<void> {
    const size = data.length; // a sink that lent the buffer takes it over (it may be detached after)
    try {
      await this.sink.transaction(data);
    } catch (e) {
      throw sinkError(e, "save: sink transaction", `the sink rejected transaction ${this.transactions}`);
    }
    this.transactions++;
    this.bytes += size;
    const c = this.counts[this.phase === "precopy" ? "precopy" : "stopcopy"];
    c.transactions++;
    c.bytes += size;
    this.progress();
  }

  async enterPhase(phase: Phase, iteration: number): Promise<void> {
    await this.sinkDone();
    this.checkAbort(`save: enter ${phase}`);
    this.phase = phase;
    this.iteration = iteration;
    try {
      await this.sink.phase(phase, iteration);
    } catch (e) {
      throw sinkError(e, "save: sink phase", `the sink rejected phase ${phase} ${iteration}`);
    }
    this.progress();
  }

  progress(): void {
    emitProgress(this.options.onProgress, {
      direction: "save",
      phase: this.phase,
      iteration: this.iteration,
      transactions: this.transactions,
      bytes: this.bytes,
      pending: this.pending,
    });
  }

  checkAbort(step: string): void {
    checkAbort(this.options.signal, step, "save");
  }

  /** After pre-copy (or without it): waits until `control` lets the device stop (a group stops its devices together). */
  async mayStop(control: PrecopyControl): Promise<void> {
    if (!control.stopCopy) return;
    this.checkAbort("save: wait for the other devices");
    await control.stopCopy();
  }

  summary(precopyEnd: PrecopyEnd, t: SaveTimes): SaveSummary {
    return {
      transactions: this.transactions,
      bytes: this.bytes,
      iterations: this.iterations,
      precopyEnd,
      precopy: this.counts.precopy,
      stopcopy: this.counts.stopcopy,
      times: {
        setup: t.setupEnd - t.t0,
        precopy: t.precopyEnd - t.setupEnd,
        stopcopy: t.stopcopyEnd - t.precopyEnd,
        total: now() - t.t0,
      },
      downtimeMs: t.stopcopyEnd - t.stopcopyStart,
      pendingReads: this.pendingReads,
    };
  }
}

/** A resume in progress, either generation: its phase and counters. */
export class ResumeRun {
  phase: Phase = "setup";
  iteration = 0;
  transactions = 0;
  bytes = 0;
  /** Transactions not written (v1: zero-length; v2: pre-copy bytes of a device that restarts at STOP_COPY). */
  skipped = 0;
  readonly t0 = now();

  constructor(readonly options: ResumeOptions) {}

  enterPhase(phase: Phase, iteration: number): void {
    this.phase = phase;
    this.iteration = iteration;
    this.progress();
  }

  /** One transaction written. */
  counted(n: number): void {
    this.transactions++;
    this.bytes += n;
    this.progress();
  }

  progress(): void {
    emitProgress(this.options.onProgress, {
      direction: "resume",
      phase: this.phase,
      iteration: this.iteration,
      transactions: this.transactions,
      bytes: this.bytes,
    });
  }

  checkAbort(step: string): void {
    checkAbort(this.options.signal, step, "resume");
  }

  summary(started: boolean): ResumeSummary {
    return {
      transactions: this.transactions,
      bytes: this.bytes,
      skipped: this.skipped,
      started,
      times: { total: now() - this.t0 },
    };
  }
}
