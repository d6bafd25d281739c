// Progress events and the save/resume summaries.
import type { PrecopyEnd } from "./policy.js";
import type { Phase } from "./types.js";

/** One progress event: emitted on every phase change and after every transaction (not throttled). */
export interface Progress {
  direction: "save" | "resume";
  phase: Phase;
  iteration: number;
  /** Transactions moved so far (all phases). */
  transactions: number;
  /** Data bytes moved so far (all phases). */
  bytes: number;
  /** Last pending_bytes read (save only). */
  pending?: number;
}

/** Called by the drivers after every step that moved data (keep it cheap: it runs inline). */
export type ProgressListener = (p: Progress) => void;

/** Transactions and bytes of one phase. */
export interface PhaseCount {
  transactions: number;
  bytes: number;
}

/** What a save did: transactions and bytes read per phase, and how pre-copy ended. */
export interface SaveSummary {
  transactions: number;
  bytes: number;
  /** Pre-copy iterations run (0 on the suspend path). */
  iterations: number;
  /** Why pre-copy ended ("none" on the suspend path). */
  precopyEnd: PrecopyEnd;
  precopy: PhaseCount;
  stopcopy: PhaseCount;
  /** Wall time per phase, ms. */
  times: { setup: number; precopy: number; stopcopy: number; total: number };
  /** From the stop-and-copy device_state write to the STOP write returning, ms. */
  downtimeMs: number;
  /** pending_bytes reads issued. */
  pendingReads: number;
}

/** What a resume did: transactions and bytes written, whether the device was started. */
export interface ResumeSummary {
  transactions: number;
  bytes: number;
  /** Zero-length transactions skipped (never replayed as data_size = 0). */
  skipped: number;
  /** True when the device was put back in RUNNING (start: true). */
  started: boolean;
  times: { total: number };
}
