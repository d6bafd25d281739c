// vfio_migration_set_state, done right: read device_state, compute
// (cur & mask) | value (bits 3–31 preserved), refuse an invalid request
// without writing, write it; on a failed write re-read device_state: a valid
// state means the device stayed there (report the errno); ERROR or an
// unreadable state means the device must be reset (QEMU aborts the process
// here; we reset and report).
import { MigstreamError } from "../errors.js";
import { STATE_MASK, stateIsError, stateName, stateValid } from "./constants.js";
import { describe, withNote } from "./failure.js";
import type { Registers } from "./registers.js";

/** Transition mask that keeps every bit before the new state bits are set (QEMU's masks, except that none clears reserved bits). */
export const KEEP_ALL = 0xffff_ffff;
/** Transition mask that clears the three state bits (and keeps the reserved ones) before the new ones are set. */
export const CLEAR_LOW = ~STATE_MASK >>> 0;

/**
 * Sets device_state to `(cur & mask) | value`. Returns the new state. A request
 * equal to the current state is not written (a same-state write is a no-op for
 * a conforming vendor, but some reset their save iterator on it).
 */
export async function setDeviceState(regs: Registers, mask: number, value: number, step: string): Promise<number> {
  const cur = await regs.readState(step);
  if (stateIsError(cur)) {
    const e = new MigstreamError("DEVICE", `${step}: device_state reads ERROR before the write`, {
      step,
      field: "device_state",
    });
    throw withNote(e, await resetAfterError(regs, step));
  }
  const next = ((cur & mask) | value) >>> 0;
  if (!stateValid(next)) {
    throw new MigstreamError(
      "PROTOCOL",
      `${step}: refusing to request invalid device_state ${stateName(next)} (device is ${stateName(cur)})`,
      {
        step,
        field: "device_state",
      },
    );
  }
  if (next === cur) return cur;
  try {
    await regs.writeState(next, step);
  } catch (e) {
    throw withNote(e as MigstreamError, await afterFailedWrite(regs, step, cur, next));
  }
  return next;
}

/** What happened after a failed device_state write, as a note for the error. */
async function afterFailedWrite(regs: Registers, step: string, from: number, to: number): Promise<string> {
  const tried = `${stateName(from)} → ${stateName(to)} failed`;
  let now: number;
  try {
    now = await regs.readState(`${step}: re-read device_state`);
  } catch (e) {
    return `${tried}; re-reading device_state failed (${describe(e)}); ${await resetAfterError(regs, step)}`;
  }
  if (stateIsError(now)) return `${tried}; device entered ERROR; ${await resetAfterError(regs, step)}`;
  return `${tried}; device is in ${stateName(now)}`;
}

/** Resets the device (the only way out of ERROR); returns a note saying how it went. */
async function resetAfterError(regs: Registers, step: string): Promise<string> {
  try {
    await regs.reset(`${step}: reset`);
    return "device reset (now RUNNING, its state lost)";
  } catch (e) {
    return `device reset failed too (${describe(e)})`;
  }
}
