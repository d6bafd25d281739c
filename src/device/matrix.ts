// The simulated vendor's device_state transition matrices (low 3 bits; the
// reserved bits are checked separately):
//   "recommended"  — the protocol notes' recommended matrix (§2.3), compatible
//                    with QEMU and the UAPI; same-state writes are no-ops.
//   "libvfio-user" — the matrix one real vendor library accepts (§2.3 column L,
//                    §7): no 0→2, no 0→4, and 3→3 rejected while 3→1 is allowed;
//                    a user write of ERROR (6) from 1–4 is accepted, as there.
import { STATE_ERROR, STATE_MASK, STATE_RESUMING } from "../protocol/constants.js";

export type MatrixName = "recommended" | "libvfio-user";

/** Transitions outside each matrix (from>to), besides requests of 5, 6 and 7. */
const FORBIDDEN: Readonly<Record<MatrixName, ReadonlySet<string>>> = {
  recommended: new Set(["2>3", "0>3", "4>0", "4>2", "4>3", "2>4", "3>4"]),
  "libvfio-user": new Set(["0>2", "0>3", "0>4", "2>3", "2>4", "3>3", "3>4", "4>0", "4>2", "4>3"]),
};

/** True when a user write moving `from` to `to` is accepted. */
export function transitionAllowed(from: number, to: number, matrix: MatrixName = "recommended"): boolean {
  from &= STATE_MASK;
  to &= STATE_MASK;
  if (from === STATE_ERROR) return false; // only reset leaves ERROR
  if (to === STATE_ERROR) return matrix === "libvfio-user" && from !== 0; // a user must never ask; that library lets one
  if (to > STATE_RESUMING) return false; // 5, 7: never valid
  return !FORBIDDEN[matrix].has(`${from}>${to}`);
}
