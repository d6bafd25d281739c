// VFIO device migration v2 (Linux ≥ 5.18 UAPI; vfio-user ≥ 0.9.2): the
// device-state enum, the MIGRATION feature flags, VFIO_DEVICE_FEATURE's
// feature indices and flag bits, struct sizes and the ioctl numbers.
//
// Only RESUMING (4) means the same in v1 and v2; 2, 3 and 6 mean different
// states. v2 states are therefore a branded number type: a v1 device_state
// value (a plain number, src/protocol/constants.ts) does not type-check where
// a MigState is expected, and the two encodings never meet.

declare const v2StateBrand: unique symbol;
/** A v2 device state (`enum vfio_device_mig_state`). Make one with MIG_STATE or asMigState. */
export type MigState = number & { readonly [v2StateBrand]: "vfio migration v2 state" };

const state = (n: number): MigState => n as MigState;

/** `enum vfio_device_mig_state`. */
export const MIG_STATE = {
  ERROR: state(0),
  STOP: state(1),
  RUNNING: state(2),
  STOP_COPY: state(3),
  RESUMING: state(4),
  RUNNING_P2P: state(5),
  PRE_COPY: state(6),
  PRE_COPY_P2P: state(7),
} as const;

/** Number of defined states (values 0..7). */
export const MIG_STATE_COUNT = 8;

const NAMES = ["ERROR", "STOP", "RUNNING", "STOP_COPY", "RESUMING", "RUNNING_P2P", "PRE_COPY", "PRE_COPY_P2P"];

/** `STOP_COPY`, `PRE_COPY`, ... (`state N` for a value outside the enum). */
export function migStateName(s: number): string {
  return NAMES[s] ?? `state ${s}`;
}

/** A device-reported u32 as a MigState, or undefined when it is no defined state. */
export function asMigState(n: number): MigState | undefined {
  return Number.isInteger(n) && n >= 0 && n < MIG_STATE_COUNT ? state(n) : undefined;
}

/** The state a name or number on a command line names (undefined when none). */
export function parseMigState(text: string): MigState | undefined {
  const up = text.toUpperCase().replace(/-/g, "_");
  const i = NAMES.indexOf(up);
  if (i >= 0) return state(i);
  return /^[0-7]$/.test(text) ? state(Number(text)) : undefined;
}

/** VFIO_MIGRATION_* flags of the MIGRATION feature (a u64; only these low bits are defined). */
export const MIGRATION_STOP_COPY = 1 << 0;
export const MIGRATION_P2P = 1 << 1;
export const MIGRATION_PRE_COPY = 1 << 2;

/** Feature indices of VFIO_DEVICE_FEATURE (kernel) and DEVICE_FEATURE (vfio-user). */
export const FEATURE = {
  MIGRATION: 1,
  MIG_DEVICE_STATE: 2,
  DMA_LOGGING_START: 6,
  DMA_LOGGING_STOP: 7,
  DMA_LOGGING_REPORT: 8,
  MIG_DATA_SIZE: 9,
} as const;

/** struct vfio_device_feature `flags`: bits 0–15 the feature, then GET, SET, PROBE. */
export const FEATURE_MASK = 0xffff;
export const FEATURE_GET = 0x1_0000;
export const FEATURE_SET = 0x2_0000;
export const FEATURE_PROBE = 0x4_0000;

/** struct vfio_device_feature header: argsz u32, flags u32. */
export const FEATURE_HEADER_SIZE = 8;
/** MIGRATION data: flags u64. */
export const MIGRATION_DATA_SIZE = 8;
/** MIG_DEVICE_STATE data: device_state u32, data_fd s32. */
export const MIG_DEVICE_STATE_DATA_SIZE = 8;
/** MIG_DATA_SIZE data: stop_copy_length u64. */
export const MIG_DATA_SIZE_DATA_SIZE = 8;
/** struct vfio_precopy_info: argsz u32, flags u32, initial_bytes u64, dirty_bytes u64. */
export const PRECOPY_INFO_SIZE = 24;

/** ioctl numbers: `_IO(';', nr)` = (0x3B << 8) | nr (direction and size 0; argsz carries the length). */
export const VFIO_DEVICE_RESET = 0x3b6f;
export const VFIO_DEVICE_FEATURE = 0x3b75;
/** Issued on the data fd, not the device fd. */
export const VFIO_MIG_GET_PRECOPY_INFO = 0x3b79;

/** Data buffer when the device gives no estimate (QEMU: min(1 MiB, stop_copy_length), else 1 MiB). */
export const DEFAULT_DATA_BUFFER = 1 << 20;
