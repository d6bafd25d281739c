// One pre-copy policy for a set of devices that migrate together (a VM's
// devices, as QEMU moves them): every device runs its pre-copy at its own
// pace, and the group alone decides when pre-copy ends for all of them — when
// the *total* pending estimate is at most the threshold, when the time budget
// (from the first device entering pre-copy) runs out, when every device has
// run its iterations, or on the VMM's stop signal. Then every device stops
// together: each waits at `stopCopy()` until all have arrived, so the
// stop-and-copy window is one for the whole set.
//
// A device with nothing to read now (pending 0), or that has run its
// iterations, waits for the decision without reading; whatever it dirties
// meanwhile goes in its stop-and-copy. A device that has not yet reported an
// estimate counts as unknown (no convergence before every device reported).
import { MigstreamError } from "../errors.js";
import { Precopy, type PrecopyControl, type PrecopyEnd, type PrecopyPolicy, type StopSignal } from "./policy.js";

/** How often a waiting member re-checks the stop signal when it is a flag (it has no event), ms. */
export const GROUP_POLL_MS = 10;

type Status = "setup" | "active" | "idle" | "exhausted" | "arrived";

interface Member {
  status: Status;
  /** Last pending estimate (undefined: none reported yet). */
  pending: number | undefined;
}

/**
 * The coordinated pre-copy policy of `size` devices. `member(i)` is the
 * PrecopyControl to hand to device i's driver (`precopyControl` save option).
 * `policy.pendingThreshold` bounds the total of all devices' estimates;
 * `maxIterations` counts per device. `signal` cancels every wait (ABORTED).
 */
export class PrecopyGroup {
  readonly #members: Member[];
  readonly #rules: Precopy;
  readonly #signal: AbortSignal | undefined;
  #decided: PrecopyEnd | undefined;
  #t0: number | undefined;
  #wake: (() => void)[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(size: number, policy: PrecopyPolicy = {}, stop?: StopSignal, signal?: AbortSignal) {
    if (!Number.isSafeInteger(size) || size < 1)
      throw new MigstreamError("USAGE", `pre-copy group: size must be a whole number ≥ 1 (got ${size})`);
    this.#rules = new Precopy(policy, stop);
    this.#members = Array.from({ length: size }, () => ({ status: "setup", pending: undefined }));
    this.#signal = signal;
    signal?.addEventListener("abort", () => this.#notify(), { once: true });
    if (stop && typeof (stop as PromiseLike<unknown>).then === "function") {
      (stop as PromiseLike<unknown>).then(
        () => this.#notify(),
        () => this.#notify(),
      );
    }
  }

  /** Why pre-copy ended for the group (undefined while it runs). */
  get end(): PrecopyEnd | undefined {
    return this.#decided;
  }

  /** The total of the devices' last pending estimates (Infinity while one is unknown). */
  get totalPending(): number {
    let sum = 0;
    for (const m of this.#members) {
      if (m.status === "arrived") continue;
      if (m.pending === undefined) return Infinity;
      sum += m.pending;
    }
    return sum;
  }

  /** Device i's view of the group, for its driver. */
  member(i: number): PrecopyControl {
    const m = this.#members[i];
    if (m === undefined)
      throw new MigstreamError("USAGE", `pre-copy group: no member ${i} (size ${this.#members.length})`);
    return {
      beforeIteration: (done, pending) => this.#beforeIteration(m, done, pending),
      interrupt: (_elapsed, pending) => {
        if (pending !== undefined) m.pending = pending;
        return this.#evaluate();
      },
      stopCopy: () => this.#arrive(m),
    };
  }

  async #beforeIteration(m: Member, done: number, pending: number): Promise<PrecopyEnd | undefined> {
    this.#t0 ??= performance.now();
    m.pending = pending;
    m.status = "active";
    for (;;) {
      const why = this.#evaluate();
      if (why) return why;
      if (done >= this.#rules.maxIterations) m.status = "exhausted";
      else if (m.pending !== undefined && m.pending <= 0) m.status = "idle";
      else return undefined;
      // Nothing to do here: wait for the others' decision (made, at the latest, when no member is active).
      if (this.#evaluate()) continue;
      await this.#wait("save: wait for the other devices' pre-copy");
    }
  }

  /** The barrier before stop-and-copy: resolves once every member arrived. */
  async #arrive(m: Member): Promise<void> {
    m.status = "arrived";
    this.#notify();
    while (!this.#members.every((x) => x.status === "arrived")) {
      await this.#wait("save: wait for the other devices to stop");
    }
  }

  /** The group's decision, made now if its rules say so. */
  #evaluate(): PrecopyEnd | undefined {
    if (this.#decided) return this.#decided;
    const elapsed = this.#t0 === undefined ? 0 : performance.now() - this.#t0;
    let why = this.#rules.interrupt(elapsed);
    if (!why && this.totalPending <= this.#rules.pendingThreshold && this.#members.some((m) => m.status !== "arrived"))
      why = "converged";
    if (!why && this.#members.every((m) => m.status === "idle" || m.status === "exhausted" || m.status === "arrived")) {
      why = this.#members.some((m) => m.status === "exhausted") ? "iterations" : "converged";
    }
    if (why) {
      this.#decided = why;
      this.#notify();
    }
    return why;
  }

  /** Waits for any change (a member's report, the decision, the clock, the stop signal); rejects when cancelled. */
  #wait(step: string): Promise<void> {
    if (this.#signal?.aborted) return Promise.reject(aborted(step, this.#signal));
    return new Promise<void>((resolve, reject) => {
      this.#wake.push(() => (this.#signal?.aborted ? reject(aborted(step, this.#signal)) : resolve()));
      this.#arm();
    });
  }

  /** Re-checks the rules when the time budget runs out, and polls a stop flag. */
  #arm(): void {
    if (this.#timer !== undefined || this.#decided) return;
    let ms = GROUP_POLL_MS;
    if (this.#t0 !== undefined && Number.isFinite(this.#rules.timeBudgetMs)) {
      ms = Math.min(ms, Math.max(0, this.#t0 + this.#rules.timeBudgetMs - performance.now()));
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#evaluate()) {
        if (this.#wake.length > 0) this.#arm();
      }
    }, ms);
  }

  #notify(): void {
    if (this.#timer !== undefined && (this.#decided || this.#signal?.aborted)) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    for (const w of this.#wake.splice(0)) w();
  }
}

function aborted(step: string, signal: AbortSignal | undefined): MigstreamError {
  return new MigstreamError("ABORTED", `${step}: save cancelled`, { step, cause: signal?.reason });
}
