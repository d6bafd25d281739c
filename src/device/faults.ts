// Fault injection for the simulated device: an errno (or a lie, or a short
// read) at the Nth matching access after the fault is armed. Each fault fires
// once and is then recorded in `fired`, so a test can check its fault happened.
import { ERRNO } from "../protocol/region-io.js";

/** Where a fault can strike. */
export type FaultPoint =
  | "read device_state"
  | "write device_state"
  | "read pending_bytes"
  | "read data_offset"
  | "read data_size"
  | "write data_size"
  | "read data"
  | "write data"
  | "reset";

export const FAULT_POINTS: readonly FaultPoint[] = [
  "read device_state",
  "write device_state",
  "read pending_bytes",
  "read data_offset",
  "read data_size",
  "write data_size",
  "read data",
  "write data",
  "reset",
];

export interface Fault {
  at: FaultPoint;
  /** Fires at the nth matching access after arming (1-based, default 1). */
  nth?: number;
  /** errno returned (default EIO). */
  errno?: number;
  /** write device_state: stay in the old state (default) or enter ERROR. */
  then?: "stay" | "error";
  /** write device_state: match only this requested state (low 3 bits)... */
  to?: number;
  /** ...and/or only from this state (low 3 bits). */
  from?: number;
  /** Reads: perform the read, then return `short` bytes fewer (no errno). */
  short?: number;
  /** u64 register reads: perform the read, then return this value (a vendor breaking the protocol). */
  value?: number | bigint;
}

/** What FaultPlan needs of a fault: where, which occurrence, and optionally which transition. */
export interface FaultMatch<P extends string> {
  at: P;
  nth?: number;
  from?: number;
  to?: number;
}

interface Armed<F> {
  fault: F;
  seen: number;
}

/** The armed faults of one device (v1 faults by default; the v2 device arms its own kind). */
export class FaultPlan<F extends FaultMatch<string> = Fault> {
  readonly #armed: Armed<F>[] = [];
  /** Faults that fired, in order. */
  readonly fired: F[] = [];

  arm(f: F): void {
    this.#armed.push({ fault: f, seen: 0 });
  }

  clear(): void {
    this.#armed.length = 0;
  }

  /** Faults armed and not fired yet. */
  get pending(): number {
    return this.#armed.length;
  }

  /** Counts this access against the armed faults; returns the one that fires now, if any. */
  hit(at: F["at"], from = -1, to = -1): F | undefined {
    for (let i = 0; i < this.#armed.length; i++) {
      const a = this.#armed[i];
      const f = a.fault;
      if (f.at !== at) continue;
      if (f.from !== undefined && f.from !== from) continue;
      if (f.to !== undefined && f.to !== to) continue;
      if (++a.seen < (f.nth ?? 1)) continue;
      this.#armed.splice(i, 1);
      this.fired.push(f);
      return f;
    }
    return undefined;
  }
}

/** errno of a fault (EIO unless given). */
export function faultErrno(f: { errno?: number }): number {
  return f.errno ?? ERRNO.EIO;
}
