// The VFIO v2 UAPI structures the kernel driver passes to ioctl(), built and
// read as bytes (notes §1.2, §1.3, §1.6): struct vfio_device_feature with
// the MIGRATION, MIG_DEVICE_STATE and MIG_DATA_SIZE payloads, and struct
// vfio_precopy_info. Platform-neutral: the FFI layer (ioctl-deno.ts) only
// moves these buffers.
import { MigstreamError } from "../../errors.js";
import {
  asMigState,
  FEATURE,
  FEATURE_GET,
  FEATURE_HEADER_SIZE,
  FEATURE_SET,
  MIG_DATA_SIZE_DATA_SIZE,
  MIG_DEVICE_STATE_DATA_SIZE,
  MIGRATION_DATA_SIZE,
  type MigState,
  PRECOPY_INFO_SIZE,
} from "../../protocol/v2/constants.js";
import type { PrecopyInfo } from "../../protocol/v2/device-io.js";

function feature(flags: number, dataSize: number): { buf: Uint8Array; dv: DataView } {
  const buf = new Uint8Array(FEATURE_HEADER_SIZE + dataSize);
  const dv = new DataView(buf.buffer);
  dv.setUint32(0, buf.length, true); // argsz: the whole buffer
  dv.setUint32(4, flags, true);
  return { buf, dv };
}

function u64(dv: DataView, at: number, what: string): number {
  const v = dv.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER))
    throw new MigstreamError("PROTOCOL", `kernel: ${what} ${v} is beyond 2^53`, { field: what });
  return Number(v);
}

/** VFIO_DEVICE_FEATURE GET MIGRATION (argsz 16). */
export function getMigrationRequest(): Uint8Array {
  return feature(FEATURE_GET | FEATURE.MIGRATION, MIGRATION_DATA_SIZE).buf;
}

/** The VFIO_MIGRATION_* flags of a GET MIGRATION reply (bits above 31 must be 0). */
export function migrationFlagsOf(buf: Uint8Array): number {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (dv.getUint32(12, true) !== 0)
    throw new MigstreamError("PROTOCOL", "kernel: MIGRATION flags above bit 31", { field: "flags" });
  return dv.getUint32(8, true);
}

/** VFIO_DEVICE_FEATURE GET MIG_DEVICE_STATE (argsz 16). */
export function getStateRequest(): Uint8Array {
  return feature(FEATURE_GET | FEATURE.MIG_DEVICE_STATE, MIG_DEVICE_STATE_DATA_SIZE).buf;
}

/** VFIO_DEVICE_FEATURE SET MIG_DEVICE_STATE to `s` (data_fd -1; the kernel writes the new fd there). */
export function setStateRequest(s: MigState): Uint8Array {
  const { buf, dv } = feature(FEATURE_SET | FEATURE.MIG_DEVICE_STATE, MIG_DEVICE_STATE_DATA_SIZE);
  dv.setUint32(8, s, true);
  dv.setInt32(12, -1, true);
  return buf;
}

/** device_state and data_fd of a MIG_DEVICE_STATE buffer after the ioctl. */
export function stateOf(buf: Uint8Array): { state: MigState; dataFd: number } {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const v = dv.getUint32(8, true);
  const state = asMigState(v);
  if (state === undefined)
    throw new MigstreamError("PROTOCOL", `kernel: device_state ${v} is no v2 state`, { field: "device_state" });
  return { state, dataFd: dv.getInt32(12, true) };
}

/** VFIO_DEVICE_FEATURE GET MIG_DATA_SIZE (argsz 16). */
export function dataSizeRequest(): Uint8Array {
  return feature(FEATURE_GET | FEATURE.MIG_DATA_SIZE, MIG_DATA_SIZE_DATA_SIZE).buf;
}

export function stopCopyLengthOf(buf: Uint8Array): number {
  return u64(new DataView(buf.buffer, buf.byteOffset, buf.byteLength), 8, "stop_copy_length");
}

/** struct vfio_precopy_info for VFIO_MIG_GET_PRECOPY_INFO (argsz 24, flags 0). */
export function precopyInfoRequest(): Uint8Array {
  const buf = new Uint8Array(PRECOPY_INFO_SIZE);
  new DataView(buf.buffer).setUint32(0, PRECOPY_INFO_SIZE, true);
  return buf;
}

/** initial_bytes and dirty_bytes (the echoed flags are ignored, notes §1.6). */
export function precopyInfoOf(buf: Uint8Array): PrecopyInfo {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return { initialBytes: u64(dv, 8, "initial_bytes"), dirtyBytes: u64(dv, 16, "dirty_bytes") };
}
