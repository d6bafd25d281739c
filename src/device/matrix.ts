// The simulated vendor's device_state transition matrix: the "recommended
// matrix" of the protocol notes (§2.3), compatible with QEMU and the UAPI.
// Values are the low 3 bits (reserved bits are checked separately).
import { STATE_ERROR, STATE_MASK, STATE_RESUMING } from "../protocol/constants.js";

/** Transitions outside the matrix (from → to), besides requests of 5, 6 and 7. */
const FORBIDDEN: ReadonlySet<string> = new Set(["2>3", "0>3", "4>0", "4>2", "4>3", "2>4", "3>4"]);

/** True when a user write moving `from` to `to` is accepted. Same-state writes are no-ops. */
export function transitionAllowed(from: number, to: number): boolean {
  from &= STATE_MASK;
  to &= STATE_MASK;
  if (to > STATE_RESUMING) return false; // 5, 6, 7: never requested by a user
  if (from === STATE_ERROR) return false; // only reset leaves ERROR
  if (from === to) return true;
  return !FORBIDDEN.has(`${from}>${to}`);
}
