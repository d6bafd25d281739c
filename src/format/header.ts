// The 64-byte stream header (FORMAT.md §3): building it, and reading it in the
// order the spec prescribes (magic, major version, check, algorithms, flags,
// declared limits against the reader's).

import { MigstreamError } from "../errors.js";
import { xxh3_64 } from "../kernels/xxh3.js";
import { view } from "./bytes.js";
import {
  CHECKSUM_CRC32C_XXH3,
  FLAG_BOUND,
  HEADER_CHECK_OFFSET,
  HEADER_SIZE,
  KNOWN_REQUIRED_FLAGS,
  MAC_AES_256_GCM,
  MAC_HMAC_SHA256_128,
  MAC_NONE,
  MAGIC,
  MIN_MAX_FRAME,
  REQUIRED_FLAGS_MASK,
  STREAM_ID_SIZE,
  VERSION_MAJOR,
  VERSION_MINOR,
} from "./constants.js";
import type { DecoderLimits } from "./limits.js";

/** A stream's header as read and checked: version, flags, MAC algorithm, stream id and the declared limits. */
export interface StreamHeader {
  versionMajor: number;
  versionMinor: number;
  checksumAlg: number;
  macAlg: number;
  flags: number;
  streamId: Uint8Array;
  maxFrame: number;
  maxChunk: number;
  maxTransaction: number;
  dedupWindow: number;
  maxMetadata: number;
  maxDevices: number;
  /** header_check; also the seed of every payload check. */
  check: bigint;
}

/** The fields an encoder chooses (`flags` default 0). */
export type HeaderFields = Pick<
  StreamHeader,
  "macAlg" | "streamId" | "maxFrame" | "maxChunk" | "maxTransaction" | "dedupWindow" | "maxMetadata" | "maxDevices"
> & { flags?: number };

/** The minor version a stream with these fields needs: 1 for a 1.1 feature, else 0 (a 1.0 stream, byte for byte). */
export function minorFor(macAlg: number, flags: number): number {
  return macAlg === MAC_AES_256_GCM || (flags & FLAG_BOUND) !== 0 ? VERSION_MINOR : 0;
}

export function buildHeader(f: HeaderFields): { bytes: Uint8Array; header: StreamHeader } {
  const b = new Uint8Array(HEADER_SIZE);
  const dv = view(b);
  const flags = f.flags ?? 0;
  const minor = minorFor(f.macAlg, flags);
  b.set(MAGIC, 0);
  b[8] = VERSION_MAJOR;
  b[9] = minor;
  b[10] = CHECKSUM_CRC32C_XXH3;
  b[11] = f.macAlg;
  dv.setUint32(12, flags, true);
  b.set(f.streamId, 16);
  dv.setUint32(32, f.maxFrame, true);
  dv.setUint32(36, f.maxChunk, true);
  dv.setUint32(40, f.maxTransaction, true);
  dv.setUint32(44, f.dedupWindow, true);
  dv.setUint32(48, f.maxMetadata, true);
  dv.setUint16(52, f.maxDevices, true);
  const check = xxh3_64(b.subarray(0, HEADER_CHECK_OFFSET));
  dv.setBigUint64(HEADER_CHECK_OFFSET, check, true);
  return {
    bytes: b,
    header: {
      ...f,
      streamId: f.streamId.slice(),
      versionMajor: VERSION_MAJOR,
      versionMinor: minor,
      checksumAlg: CHECKSUM_CRC32C_XXH3,
      flags,
      check,
    },
  };
}

/** Names a known text-mode mangling of the magic, if `b` shows one. */
function mangling(b: Uint8Array): string | null {
  const at = (s: number[]) => s.every((x, i) => i >= b.length || b[i] === x);
  if (at([0x09, 0x4d, 0x49, 0x47])) return "the high bit of byte 0 was stripped (7-bit transfer)";
  if (at([0x89, 0x4d, 0x49, 0x47, 0x0a, 0x1a])) return "CR LF was converted to LF (text-mode transfer)";
  if (at([0x89, 0x4d, 0x49, 0x47, 0x0d, 0x0d, 0x0a])) return "LF was converted to CR LF (text-mode transfer)";
  if (at([0x89, 0x4d, 0x49, 0x47, 0x0d, 0x0a, 0x1a, 0x0d, 0x0a]))
    return "LF was converted to CR LF (text-mode transfer)";
  return null;
}

/**
 * Checks the magic against the first bytes seen so far: BAD_MAGIC as soon as
 * a byte differs (with a diagnosis of text-mode damage when recognisable).
 */
export function checkMagic(b: Uint8Array): void {
  const n = Math.min(b.length, MAGIC.length);
  for (let i = 0; i < n; i++) {
    if (b[i] !== MAGIC[i]) {
      const why = mangling(b);
      throw new MigstreamError("BAD_MAGIC", why ? `bad magic: ${why}` : "not a migstream stream (bad magic)", {
        offset: i,
        field: "magic",
      });
    }
  }
}

function over(field: string, declared: number, limit: number): MigstreamError {
  return new MigstreamError("LIMIT", `header declares ${field} ${declared}, above this reader's limit ${limit}`, {
    offset: 0,
    field,
  });
}

/** Parses and validates a complete header (`b` has at least HEADER_SIZE bytes). */
export function parseHeader(b: Uint8Array, limits: Required<DecoderLimits>, keyed: boolean): StreamHeader {
  checkMagic(b);
  const major = b[8];
  if (major !== VERSION_MAJOR) {
    throw new MigstreamError(
      "VERSION",
      `stream format version ${major}.${b[9]} is not supported (this reader: ${VERSION_MAJOR}.x)`,
      {
        offset: 8,
        field: "version_major",
      },
    );
  }
  const dv = view(b);
  const check = dv.getBigUint64(HEADER_CHECK_OFFSET, true);
  if (xxh3_64(b.subarray(0, HEADER_CHECK_OFFSET)) !== check) {
    throw new MigstreamError("CHECKSUM", "stream header check mismatch", {
      offset: HEADER_CHECK_OFFSET,
      field: "header_check",
    });
  }
  const h: StreamHeader = {
    versionMajor: major,
    versionMinor: b[9],
    checksumAlg: b[10],
    macAlg: b[11],
    flags: dv.getUint32(12, true),
    streamId: b.slice(16, 16 + STREAM_ID_SIZE),
    maxFrame: dv.getUint32(32, true),
    maxChunk: dv.getUint32(36, true),
    maxTransaction: dv.getUint32(40, true),
    dedupWindow: dv.getUint32(44, true),
    maxMetadata: dv.getUint32(48, true),
    maxDevices: dv.getUint16(52, true),
    check,
  };
  if (h.checksumAlg !== CHECKSUM_CRC32C_XXH3) {
    throw new MigstreamError("VERSION", `unknown checksum algorithm ${h.checksumAlg}`, {
      offset: 10,
      field: "checksum_alg",
    });
  }
  if (h.macAlg !== MAC_NONE && h.macAlg !== MAC_HMAC_SHA256_128 && h.macAlg !== MAC_AES_256_GCM) {
    throw new MigstreamError("VERSION", `unknown MAC algorithm ${h.macAlg}`, { offset: 11, field: "mac_alg" });
  }
  if (h.macAlg !== MAC_NONE && !keyed) {
    throw new MigstreamError("MAC", "the stream is authenticated: a key is required", { offset: 11, field: "mac_alg" });
  }
  if (h.macAlg === MAC_NONE && keyed) {
    throw new MigstreamError("MAC", "a key was given but the stream is not authenticated", {
      offset: 11,
      field: "mac_alg",
    });
  }
  const unknown = h.flags & REQUIRED_FLAGS_MASK & ~KNOWN_REQUIRED_FLAGS;
  if (unknown !== 0) {
    throw new MigstreamError("VERSION", `unknown required feature flags 0x${unknown.toString(16)}`, {
      offset: 12,
      field: "flags",
    });
  }
  if ((h.flags & FLAG_BOUND) !== 0 && h.macAlg === MAC_NONE) {
    throw new MigstreamError("FORMAT", "the stream says it is bound to a connection, but it has no key to bind with", {
      offset: 12,
      field: "flags",
    });
  }
  if (dv.getUint16(54, true) !== 0)
    throw new MigstreamError("FORMAT", "reserved header field is not zero", { offset: 54, field: "reserved" });
  if (h.maxFrame < MIN_MAX_FRAME) {
    throw new MigstreamError("FORMAT", `max_frame ${h.maxFrame} is below ${MIN_MAX_FRAME}`, {
      offset: 32,
      field: "max_frame",
    });
  }
  if (h.maxChunk < 1) throw new MigstreamError("FORMAT", "max_chunk is 0", { offset: 36, field: "max_chunk" });
  if (h.maxFrame > limits.maxFrameSize) throw over("max_frame", h.maxFrame, limits.maxFrameSize);
  if (h.maxChunk > limits.maxChunkSize) throw over("max_chunk", h.maxChunk, limits.maxChunkSize);
  if (h.maxTransaction > limits.maxTransactionSize)
    throw over("max_transaction", h.maxTransaction, limits.maxTransactionSize);
  if (h.dedupWindow > limits.maxWindow) throw over("dedup_window", h.dedupWindow, limits.maxWindow);
  if (h.maxMetadata > limits.maxMetadataSize) throw over("max_metadata", h.maxMetadata, limits.maxMetadataSize);
  if (h.maxDevices > limits.maxDevices) throw over("max_devices", h.maxDevices, limits.maxDevices);
  if (h.dedupWindow * h.maxDevices > limits.maxDedupMemory) {
    throw over("dedup_window × max_devices", h.dedupWindow * h.maxDevices, limits.maxDedupMemory);
  }
  return h;
}
