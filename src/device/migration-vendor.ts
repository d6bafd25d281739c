// The vendor side of a v2 migration device: what a device implementation
// exposes (libvfio-user's device callbacks, a kernel variant driver's
// migration ops). The simulated v2 device implements it; the in-process
// transport and the vfio-user server put the user-side interface in front of
// it, walking each SET through `walk` as the kernel core and libvfio-user do.

import { ERRNO } from "../protocol/region-io.js";
import { type MigState, migStateName } from "../protocol/v2/constants.js";
import type { PrecopyInfo } from "../protocol/v2/device-io.js";
import { pathTo, sessionEffect } from "../protocol/v2/fsm.js";
import { VendorErrno } from "./vendor.js";

/**
 * A v2 device's migration as its vendor implements it (see above): its
 * flags, the FSM state and its arcs, the data stream in and out, reset.
 */
export interface MigrationVendor {
  /** VFIO_MIGRATION_* flags the device offers (STOP_COPY always). */
  readonly migrationFlags: number;
  /** The current state. */
  readonly state: MigState;
  /**
   * One direct arc from `state` to `to` (callers walk a SET's path with
   * `walk`). Rejects with a VendorErrno when the device fails it; the state
   * is then unchanged, or ERROR where the device goes there.
   */
  arc(to: MigState): Promise<void>;
  /** Reads up to `into.length` bytes of the saving stream into `into`; 0: nothing now (PRE_COPY) or the end (STOP_COPY). */
  readData(into: Uint8Array): Promise<number>;
  /** Takes bytes of the stream in RESUMING; returns how many it took. */
  writeData(data: Uint8Array): Promise<number>;
  /** PRE_COPY progress counters (what VFIO_MIG_GET_PRECOPY_INFO reports). */
  precopyInfo(): Promise<PrecopyInfo>;
  /** Estimated STOP_COPY bytes (MIG_DATA_SIZE). */
  stopCopySize(): Promise<number>;
  /**
   * The device reset: every session ends and the state is dropped. The FSM
   * state becomes RUNNING (the kernel) or, with `keepState`, stays
   * (libvfio-user from 4f4fce4 on).
   */
  reset(keepState?: boolean): Promise<void>;
  /** XXH3-64 of the device state, where the device offers one. */
  digest?(): bigint;
  /**
   * Faults a simulated device arms at points only its transport sees (GET
   * MIGRATION, GET state, a spurious data_fd): the armed fault that fires
   * now at `at`, if any.
   */
  hit?(at: string, from?: number, to?: number): { errno?: number } | undefined;
}

/** Throws the errno of a fault the vendor armed at a transport-level point `at`. */
export function transportFault(v: MigrationVendor, at: string): void {
  const f = v.hit?.(at);
  if (f) throw new VendorErrno(f.errno ?? ERRNO.EIO, `injected fault: ${at}`);
}

/** What one SET did to the data session. */
export interface WalkResult {
  /** An arc on the path opened a session that is still open at the end. */
  opened: boolean;
  /** The session open before the SET ended (on the path). */
  ended: boolean;
}

/**
 * Carries out a SET on `v` as direct arcs (the kernel's and libvfio-user's
 * path table for the device's flags). An invalid request (unsupported or
 * unreachable target, ERROR either side, STOP_COPY → PRE_COPY) is EINVAL
 * with no arc run; same state: nothing runs. A failing arc rejects with its
 * errno; the arcs before it stay done (`onArc` hears of each one done).
 */
export async function walk(
  v: MigrationVendor,
  to: MigState,
  onArc?: (from: MigState, to: MigState) => void,
): Promise<WalkResult> {
  const from = v.state;
  const hops = pathTo(from, to, v.migrationFlags);
  if (hops === undefined)
    throw new VendorErrno(ERRNO.EINVAL, `no path from ${migStateName(from)} to ${migStateName(to)} on this device`);
  let opened = false;
  let ended = false;
  let at = from;
  for (const hop of hops) {
    await v.arc(hop);
    onArc?.(at, hop);
    const fx = sessionEffect(at, hop);
    if (fx === "opens") opened = true;
    if (fx === "ends") {
      if (opened) opened = false;
      else ended = true;
    }
    at = hop;
  }
  return { opened, ended };
}
