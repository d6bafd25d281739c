// Every number of the stream format (docs/FORMAT.md): magic bytes, structure
// sizes, frame types, phase codes, limits a decoder enforces and encoder defaults.

import { MAX_CHUNK_SIZE } from "../codec/coder.js";
import type { Phase } from "../protocol/types.js";

/** Stream magic, PNG style: high-bit byte, "MIG", CR LF, ^Z, LF. */
export const MAGIC: Uint8Array = Uint8Array.of(0x89, 0x4d, 0x49, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
/** End marker in the STREAM_END payload: high-bit byte, "END", CR LF, ^Z, LF. */
export const END_MARKER: Uint8Array = Uint8Array.of(0x89, 0x45, 0x4e, 0x44, 0x0d, 0x0a, 0x1a, 0x0a);

export const VERSION_MAJOR = 1;
/** The newest minor version this code reads and writes; a stream says 1 only when it uses a 1.1 feature (FORMAT.md §11). */
export const VERSION_MINOR = 1;

/** checksum_alg 1: CRC-32C frame headers, XXH3-64 payloads. */
export const CHECKSUM_CRC32C_XXH3 = 1;
export const MAC_NONE = 0;
/** mac_alg 1: HMAC-SHA-256 truncated to MAC_TAG_SIZE bytes. */
export const MAC_HMAC_SHA256_128 = 1;
/** mac_alg 2 (v1.1): every frame sealed with AES-256-GCM (FORMAT.md §7.2). */
export const MAC_AES_256_GCM = 2;

/** Header flag bits 0..15 are required features (unknown ones are rejected). */
export const REQUIRED_FLAGS_MASK = 0xffff;
/** Required flag bit 0 (v1.1): the stream's keys are bound to a connection's challenge (FORMAT.md §7.1). */
export const FLAG_BOUND = 0x0001;
/** The required flags this reader knows. */
export const KNOWN_REQUIRED_FLAGS = FLAG_BOUND;
/** Bytes of a destination's challenge (the binding of a bound stream). */
export const CHALLENGE_SIZE = 16;

// ---- sizes ----
export const HEADER_SIZE = 64;
/** Offset of header_check in the header. */
export const HEADER_CHECK_OFFSET = 56;
export const STREAM_ID_SIZE = 16;
export const FRAME_HEADER_SIZE = 16;
export const FRAME_CHECK_SIZE = 8;
export const MAC_TAG_SIZE = 16;
export const CHUNK_HEADER_SIZE = 20;
export const PHASE_PAYLOAD_SIZE = 8;
export const TRANSACTION_PAYLOAD_SIZE = 8;
export const DEVICE_END_PAYLOAD_SIZE = 48;
export const STREAM_END_PAYLOAD_SIZE = 64;
export const DEVICE_PROTOCOL_PAYLOAD_SIZE = 8;
/** DEVICE_PROTOCOL `generation`: VFIO migration v2 (the only value a writer records; v1 is the frame's absence). */
export const PROTOCOL_GENERATION_V2 = 2;
/** DEVICE_PROTOCOL `flags` bit 0: the device restarts its stream at STOP_COPY (only the stop-copy bytes are its state). */
export const PROTOCOL_FLAG_RESTARTS_AT_STOP_COPY = 1;
/** Smallest max_frame a header may declare (fits every fixed-size payload). */
export const MIN_MAX_FRAME = 64;

// ---- frame types ----
export const FRAME_DEVICE_BEGIN = 0x01;
export const FRAME_PHASE = 0x02;
export const FRAME_TRANSACTION = 0x03;
export const FRAME_CHUNK = 0x04;
export const FRAME_DEVICE_END = 0x05;
export const FRAME_STREAM_END = 0x06;
/** Which VFIO migration protocol produced a device's data (§5.8); absent: v1. Not skippable. */
export const FRAME_DEVICE_PROTOCOL = 0x07;
/** Type bit 7: a reader that does not know the type may skip the frame. */
export const FRAME_SKIPPABLE = 0x80;

export const FRAME_NAMES: Readonly<Record<number, string>> = {
  [FRAME_DEVICE_BEGIN]: "DEVICE_BEGIN",
  [FRAME_PHASE]: "PHASE",
  [FRAME_TRANSACTION]: "TRANSACTION",
  [FRAME_CHUNK]: "CHUNK",
  [FRAME_DEVICE_END]: "DEVICE_END",
  [FRAME_STREAM_END]: "STREAM_END",
  [FRAME_DEVICE_PROTOCOL]: "DEVICE_PROTOCOL",
};

export function frameName(type: number): string {
  return FRAME_NAMES[type] ?? `0x${type.toString(16).padStart(2, "0")}`;
}

// ---- phases (on-wire codes, in their required order) ----
export const PHASES: readonly Phase[] = ["setup", "precopy", "stopcopy", "config", "end"];

export function phaseCode(phase: Phase): number {
  return PHASES.indexOf(phase);
}

// ---- limits a decoder trusts (each can be lowered by a decoder option) ----
/** Largest frame payload: a chunk header plus the largest chunk. */
export const MAX_FRAME_PAYLOAD = CHUNK_HEADER_SIZE + MAX_CHUNK_SIZE;
/** Largest transaction (one data-section buffer). */
export const MAX_TRANSACTION_SIZE = 1 << 30;
/** Largest device metadata. */
export const MAX_METADATA_SIZE = 1 << 20;
/** Most devices per stream. */
export const MAX_DEVICES = 4096;
/** Largest dedup_window × max_devices a decoder accepts by default. */
export const MAX_DEDUP_MEMORY = 4 * 2 ** 30;
/** Longest device name in UTF-8 bytes (u8 length field). */
export const MAX_NAME_LENGTH = 255;
/** Most frames per stream (seq is u32). */
export const MAX_FRAMES = 0xffffffff;
/** HMAC key length bounds (bytes). */
export const MIN_KEY_SIZE = 16;
export const MAX_KEY_SIZE = 1024;

// ---- encoder defaults ----
/** Default largest chunk, with or without dedup (with dedup, content-defined chunks average DEDUP_AVG_SIZE, and merged units go up to it). */
export const DEFAULT_CHUNK_SIZE = 256 << 10;
export const DEFAULT_DEDUP_WINDOW = 64 << 20;
/** Declared max_transaction of a streaming encoder that was not told one. */
export const DEFAULT_MAX_TRANSACTION = 64 << 20;
/** Declared max_metadata of a streaming encoder that was not told one. */
export const DEFAULT_MAX_METADATA = 64 << 10;
/** Declared max_devices of a streaming encoder that was not told one. */
export const DEFAULT_MAX_DEVICES = 16;
/** Transaction size the byte-stream encoders (CLI, MigrationEncoderStream) cut raw input into. */
export const DEFAULT_TRANSACTION_SIZE = 1 << 20;
