// The simulated vendor device.
export { type VendorRegion, VendorErrno } from "./vendor.js";
export {
  SimDevice,
  type SimDeviceOptions,
  type Violation,
  type StateWrite,
  DEFAULT_STATE_SIZE,
  DEFAULT_TXN_SIZE,
  DEFAULT_DATA_OFFSET,
  MAX_STATE_SIZE,
  MAX_DATA_SIZE,
} from "./simulated.js";
export { type Fault, type FaultPoint, FAULT_POINTS } from "./faults.js";
export type { TxnRecord } from "./restore-session.js";
export { transitionAllowed, type MatrixName } from "./matrix.js";
export { PAGE_SIZE, PAGE_KINDS, DEFAULT_MIX, fillImage, fillPage, makeImage, pageKindAt, type PageKind, type PageMix } from "./pages.js";
