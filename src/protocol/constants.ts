// The v1 migration region's register header and device_state encoding
// (struct vfio_device_migration_info, Linux 5.8–5.17 UAPI).

/** Byte offset of device_state (u32) in the header. */
export const OFF_DEVICE_STATE = 0;
/** Byte offset of the reserved u32. */
export const OFF_RESERVED = 4;
/** Byte offset of pending_bytes (u64). */
export const OFF_PENDING_BYTES = 8;
/** Byte offset of data_offset (u64). */
export const OFF_DATA_OFFSET = 16;
/** Byte offset of data_size (u64). */
export const OFF_DATA_SIZE = 24;

/** sizeof(struct vfio_device_migration_info): the data section starts at or after it. */
export const HEADER_SIZE = 32;

/** The header fields, with their offset and native width (the only legal access). */
export type Field = "device_state" | "reserved" | "pending_bytes" | "data_offset" | "data_size";

/** Each header field's offset and width. */
export const FIELDS: Readonly<Record<Field, { offset: number; width: 4 | 8 }>> = {
  device_state: { offset: OFF_DEVICE_STATE, width: 4 },
  reserved: { offset: OFF_RESERVED, width: 4 },
  pending_bytes: { offset: OFF_PENDING_BYTES, width: 8 },
  data_offset: { offset: OFF_DATA_OFFSET, width: 8 },
  data_size: { offset: OFF_DATA_SIZE, width: 8 },
};

/** device_state STOP: no state bit set (VFIO_DEVICE_STATE_*, v1). */
export const STATE_STOP = 0;
/** device_state bit 0: RUNNING. */
export const STATE_RUNNING = 1;
/** device_state bit 1: SAVING. */
export const STATE_SAVING = 2;
/** device_state bit 2: RESUMING. */
export const STATE_RESUMING = 4;
/** device_state bits 0–2, the state proper (the rest are reserved). */
export const STATE_MASK = 7;
/** SAVING|RESUMING: only the vendor sets it; only reset leaves it. */
export const STATE_ERROR = 6;

/** VFIO_DEVICE_STATE_VALID: with RESUMING set only RESUMING alone is valid. Reserved bits ignored. */
export function stateValid(s: number): boolean {
  return (s & STATE_RESUMING) === 0 || (s & STATE_MASK) === STATE_RESUMING;
}

/** VFIO_DEVICE_STATE_IS_ERROR. */
export function stateIsError(s: number): boolean {
  return (s & STATE_MASK) === STATE_ERROR;
}

/** VFIO_DEVICE_STATE_SET_ERROR: keeps the reserved bits. */
export function stateSetError(s: number): number {
  return ((s & ~STATE_MASK) | STATE_ERROR) >>> 0;
}

const STATE_NAMES = [
  "STOP",
  "RUNNING",
  "SAVING",
  "SAVING|RUNNING",
  "RESUMING",
  "RESUMING|RUNNING",
  "ERROR",
  "RESUMING|SAVING|RUNNING",
];

/** `RUNNING`, `SAVING|RUNNING`, ...; reserved bits shown in hex when set. */
export function stateName(s: number): string {
  const low = STATE_NAMES[s & STATE_MASK];
  const reserved = (s & ~STATE_MASK) >>> 0;
  return reserved === 0 ? low : `${low} (+0x${reserved.toString(16)})`;
}
