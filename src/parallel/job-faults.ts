// Test-only faults in worker pool jobs: delays (to reorder completions) and crashes (to
// prove a dead worker fails its jobs and the pipeline instead of hanging).
// Honoured only when the pool enables it; a job carrying a plan otherwise fails
// with USAGE, so production code cannot trip it by accident.

import { MigstreamError } from "../errors.js";
import type { FaultPlan } from "./jobs.js";

/** Environment variable that enables fault injection for every pool. */
export const FAULT_ENV = "MIGSTREAM_FAULT_INJECTION";
/** Exit code of a worker that an injected "exit" fault ended. */
export const FAULT_EXIT_CODE = 70;
/** Longest injectable delay, so a bad test cannot stall for long. */
const MAX_FAULT_DELAY_MS = 10_000;

/** Per-realm job state (one per worker, one for the inline pool). */
export interface JobContext {
  /** Fault injection allowed. */
  faults: boolean;
  /** Jobs finished (successfully or not) in this realm. */
  done: number;
  /** Ends the realm for "exit" / "uncaught" faults; absent inline (the job throws instead). */
  crash?: (mode: "exit" | "uncaught") => Promise<never>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Applies `plan` before a job runs: waits, or crashes when due. */
export async function applyFault(plan: FaultPlan | undefined, ctx: JobContext): Promise<void> {
  if (plan === undefined) return;
  if (!ctx.faults) throw new MigstreamError("USAGE", "fault injection is disabled in this pool", { field: "__test" });
  if (plan.delayMs) await sleep(Math.min(Math.max(plan.delayMs, 0), MAX_FAULT_DELAY_MS));
  if (plan.crashAfter === undefined || ctx.done < plan.crashAfter) return;
  const mode = plan.crash ?? "throw";
  if (mode !== "throw" && ctx.crash) await ctx.crash(mode);
  throw new Error(`injected fault after ${ctx.done} jobs`);
}
