// When pre-copy ends. Checked at the start of every pre-copy iteration (after
// pending_bytes was read) and, for the clock and the external stop, after every
// transaction. Pre-copy may end at any point: the vendor must deliver a
// complete state in stop-and-copy regardless.
import { MigstreamError } from "../errors.js";

/** Default cap on pre-copy iterations (passes over the device's pending state). */
export const DEFAULT_MAX_PRECOPY_ITERATIONS = 16;

/** When pre-copy ends and stop-and-copy begins: the first of its limits reached. */
export interface PrecopyPolicy {
  /** Most pre-copy iterations to run (0: enter pre-copy, then stop-and-copy at once). */
  maxIterations?: number;
  /** Switch to stop-and-copy when pending_bytes ≤ this at an iteration start (default 0). */
  pendingThreshold?: number;
  /** Pre-copy time budget in ms from entering pre-copy (default: none). */
  timeBudgetMs?: number;
}

/**
 * The VMM's "stop now" (e.g. it is stopping the VM): an AbortSignal-like flag
 * or a promise that settles when pre-copy must end. Distinct from cancel.
 */
export type StopSignal = { readonly aborted: boolean } | PromiseLike<unknown>;

/** Why pre-copy ended. */
export type PrecopyEnd = "converged" | "iterations" | "time" | "stop-signal" | "none";

/**
 * The seam between a save driver and whoever decides when its pre-copy ends.
 * A device saved alone uses `Precopy` (its own policy); a device of a set
 * that migrates together uses its member of a `PrecopyGroup` (one policy for
 * all, precopy-group.ts). The driver calls:
 * - `beforeIteration` at the start of every pre-copy iteration, with the
 *   iterations done so far and the pending estimate it just read; a reason
 *   ends pre-copy, undefined starts the iteration. It may wait (a group
 *   member with nothing to read waits for the others' decision).
 * - `interrupt` after every transaction (and, v2, after every iteration),
 *   with the device's fresh pending estimate when it has one; a reason ends
 *   pre-copy at once.
 * - `stopCopy`, when present, after pre-copy ended (or at once without
 *   pre-copy), just before the device is stopped: it resolves when the
 *   device may stop (a group stops all its devices together), and rejects
 *   when the run is cancelled.
 */
export interface PrecopyControl {
  beforeIteration(
    done: number,
    pending: number,
    elapsedMs: number,
  ): PrecopyEnd | undefined | Promise<PrecopyEnd | undefined>;
  interrupt(elapsedMs: number, pending?: number): PrecopyEnd | undefined;
  stopCopy?(): Promise<void>;
}

/** A policy with its defaults applied and the stop signal turned into a flag. */
export class Precopy implements PrecopyControl {
  readonly maxIterations: number;
  readonly pendingThreshold: number;
  readonly timeBudgetMs: number;
  #stopped = false;
  readonly #flag: { readonly aborted: boolean } | undefined;

  constructor(policy: PrecopyPolicy = {}, stop?: StopSignal) {
    this.maxIterations = check("maxIterations", policy.maxIterations ?? DEFAULT_MAX_PRECOPY_ITERATIONS);
    this.pendingThreshold = check("pendingThreshold", policy.pendingThreshold ?? 0);
    this.timeBudgetMs = check("timeBudgetMs", policy.timeBudgetMs ?? Infinity);
    if (stop && typeof (stop as PromiseLike<unknown>).then === "function") {
      const done = () => {
        this.#stopped = true;
      };
      (stop as PromiseLike<unknown>).then(done, done);
    } else {
      this.#flag = stop as { readonly aborted: boolean } | undefined;
    }
  }

  /** True once the external stop fired. */
  get stopRequested(): boolean {
    return this.#stopped || this.#flag?.aborted === true;
  }

  /** Reason to end pre-copy mid-iteration (clock or stop signal), or undefined. */
  interrupt(elapsedMs: number): PrecopyEnd | undefined {
    if (this.stopRequested) return "stop-signal";
    if (elapsedMs >= this.timeBudgetMs) return "time";
    return undefined;
  }

  /** Reason not to start iteration `done` (= iterations done so far), or undefined. */
  beforeIteration(done: number, pending: number, elapsedMs: number): PrecopyEnd | undefined {
    const now = this.interrupt(elapsedMs);
    if (now) return now;
    if (pending <= this.pendingThreshold) return "converged";
    if (done >= this.maxIterations) return "iterations";
    return undefined;
  }
}

function check(name: string, v: number): number {
  if (typeof v !== "number" || Number.isNaN(v) || v < 0)
    throw new MigstreamError("USAGE", `pre-copy policy: ${name} must be a number ≥ 0 (got ${v})`);
  return v;
}
