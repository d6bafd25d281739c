// The v2 state machine as the kernel walks it (vfio_mig_get_next_state) and
// libvfio-user copies it: one next-hop table, the optional states a device's
// MIGRATION flags enable, and which arcs open, continue or end a data session.
// Used by the vendor side (the simulated device's transports, our vfio-user
// server) to carry out one SET as a sequence of direct arcs; the user-side
// driver only ever asks for the states it means (notes §1.5).
import {
  MIG_STATE,
  MIG_STATE_COUNT,
  MIGRATION_P2P,
  MIGRATION_PRE_COPY,
  MIGRATION_STOP_COPY,
  type MigState,
} from "./constants.js";

const { ERROR, STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P } = MIG_STATE;

/**
 * NEXT[cur][target]: the next state on the shortest path from cur to target
 * that never passes through a saving state (the kernel's table). Columns in
 * enum order: ERROR, STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P.
 */
const NEXT: ReadonlyArray<ReadonlyArray<MigState>> = [
  /* ERROR        */ [ERROR, ERROR, ERROR, ERROR, ERROR, ERROR, ERROR, ERROR],
  /* STOP         */ [ERROR, STOP, RUNNING_P2P, STOP_COPY, RESUMING, RUNNING_P2P, RUNNING_P2P, RUNNING_P2P],
  /* RUNNING      */ [ERROR, RUNNING_P2P, RUNNING, RUNNING_P2P, RUNNING_P2P, RUNNING_P2P, PRE_COPY, RUNNING_P2P],
  /* STOP_COPY    */ [ERROR, STOP, STOP, STOP_COPY, STOP, STOP, ERROR, ERROR],
  /* RESUMING     */ [ERROR, STOP, STOP, STOP, RESUMING, STOP, STOP, STOP],
  /* RUNNING_P2P  */ [ERROR, STOP, RUNNING, STOP, STOP, RUNNING_P2P, RUNNING, PRE_COPY_P2P],
  /* PRE_COPY     */ [ERROR, RUNNING, RUNNING, PRE_COPY_P2P, RUNNING, RUNNING, PRE_COPY, PRE_COPY_P2P],
  /* PRE_COPY_P2P */ [ERROR, RUNNING_P2P, RUNNING_P2P, STOP_COPY, RUNNING_P2P, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P],
];

/** MIGRATION flags a state needs (ERROR: none suffices, it can never be requested). */
const NEEDS: readonly number[] = [
  /* ERROR */ -1,
  /* STOP */ MIGRATION_STOP_COPY,
  /* RUNNING */ MIGRATION_STOP_COPY,
  /* STOP_COPY */ MIGRATION_STOP_COPY,
  /* RESUMING */ MIGRATION_STOP_COPY,
  /* RUNNING_P2P */ MIGRATION_STOP_COPY | MIGRATION_P2P,
  /* PRE_COPY */ MIGRATION_STOP_COPY | MIGRATION_PRE_COPY,
  /* PRE_COPY_P2P */ MIGRATION_STOP_COPY | MIGRATION_P2P | MIGRATION_PRE_COPY,
];

/** The device offers state `s` (its MIGRATION flags include what `s` needs). */
export function stateSupported(s: MigState, flags: number): boolean {
  const need = NEEDS[s];
  return need !== undefined && need >= 0 && (flags & need) === need;
}

/**
 * The direct arcs of one SET from `cur` to `target` on a device with these
 * MIGRATION flags (empty when cur = target), or undefined when the request is
 * invalid (EINVAL): an unknown or unsupported target, ERROR either side, or
 * a path that would need STOP_COPY → PRE_COPY. Unlike kernels before the
 * ERROR-sentinel fix, this never loops.
 */
export function pathTo(cur: MigState, target: MigState, flags: number): MigState[] | undefined {
  if (!(target >= 0 && target < MIG_STATE_COUNT) || !stateSupported(target, flags)) return undefined;
  if (cur === ERROR) return undefined;
  const hops: MigState[] = [];
  for (let at = cur; at !== target; ) {
    let next = NEXT[at][target];
    // An unsupported hop is looked up again from itself; ERROR ends the walk.
    for (let guard = 0; next !== ERROR && !stateSupported(next, flags); guard++) {
      if (guard >= MIG_STATE_COUNT) return undefined;
      next = NEXT[next][target];
    }
    if (next === ERROR || hops.length >= MIG_STATE_COUNT) return undefined;
    hops.push(next);
    at = next;
  }
  return hops;
}

/** States in which a data session exists (the data fd, or vfio-user's implicit session). */
export function hasSession(s: MigState): boolean {
  return s === PRE_COPY || s === PRE_COPY_P2P || s === STOP_COPY || s === RESUMING;
}

/** What a direct arc does to the data session. */
export function sessionEffect(from: MigState, to: MigState): "opens" | "continues" | "ends" | "none" {
  const a = hasSession(from);
  const b = hasSession(to);
  if (!a && b) return "opens";
  if (a && b) return "continues";
  if (a && !b) return "ends";
  return "none";
}

/** Saving states (the device streams its state out). */
export function isSaving(s: MigState): boolean {
  return s === PRE_COPY || s === PRE_COPY_P2P || s === STOP_COPY;
}
