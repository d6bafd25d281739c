// The simulated vendor device.

export { FAULT_POINTS, type Fault, type FaultPoint } from "./faults.js";
export { type MatrixName, transitionAllowed } from "./matrix.js";
export {
  DEFAULT_MIX,
  fillImage,
  fillPage,
  makeImage,
  PAGE_KINDS,
  PAGE_SIZE,
  type PageKind,
  type PageMix,
  pageKindAt,
} from "./pages.js";
export type { TxnRecord } from "./restore-session.js";
export {
  DEFAULT_DATA_OFFSET,
  DEFAULT_STATE_SIZE,
  DEFAULT_TXN_SIZE,
  MAX_DATA_SIZE,
  MAX_STATE_SIZE,
  SimDevice,
  type SimDeviceOptions,
  type StateWrite,
  type Violation,
} from "./simulated.js";
export { VendorErrno, type VendorRegion } from "./vendor.js";
