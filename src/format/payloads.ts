// Fixed payload layouts of the frame types (FORMAT.md §5): writers used by the
// encoder, readers used by the decoder (size and reserved-field checks only;
// the decoder checks meaning).

import { MigstreamError } from "../errors.js";
import type { MigrationProtocol, Phase } from "../protocol/types.js";
import { readCount, view, writeCount } from "./bytes.js";
import {
  CHUNK_HEADER_SIZE,
  DEVICE_END_PAYLOAD_SIZE,
  DEVICE_PROTOCOL_PAYLOAD_SIZE,
  END_MARKER,
  frameName,
  PHASE_PAYLOAD_SIZE,
  PHASES,
  PROTOCOL_FLAG_RESTARTS_AT_STOP_COPY,
  PROTOCOL_GENERATION_V2,
  STREAM_END_PAYLOAD_SIZE,
  TRANSACTION_PAYLOAD_SIZE,
} from "./constants.js";
import type { Frame } from "./frames.js";
import type { DeviceTrailer, StreamTrailer } from "./types.js";

export function formatError(
  f: Frame,
  message: string,
  field?: string,
  code: "FORMAT" | "LIMIT" | "CHECKSUM" | "CODEC" = "FORMAT",
): MigstreamError {
  return new MigstreamError(code, message, { offset: f.offset, frame: f.seq, device: f.device, field });
}

function expectSize(f: Frame, size: number): DataView {
  if (f.length !== size)
    throw formatError(f, `${frameName(f.type)} payload has ${f.length} bytes, expected ${size}`, "length");
  return view(f.payload);
}

// ---- DEVICE_BEGIN ----
const utf8 = new TextDecoder("utf-8", { fatal: true });

export function deviceBeginSize(name: Uint8Array, metadata: Uint8Array): number {
  return 1 + name.length + metadata.length;
}

export function writeDeviceBegin(out: Uint8Array, at: number, name: Uint8Array, metadata: Uint8Array): void {
  out[at] = name.length;
  out.set(name, at + 1);
  out.set(metadata, at + 1 + name.length);
}

export function readDeviceBegin(f: Frame, maxMetadata: number): { name: string; metadata: Uint8Array } {
  if (f.length < 1) throw formatError(f, "DEVICE_BEGIN payload is empty", "length");
  const n = f.payload[0];
  if (1 + n > f.length) throw formatError(f, `device name of ${n} bytes overruns the payload`, "name_length");
  let name: string;
  try {
    name = utf8.decode(f.payload.subarray(1, 1 + n));
  } catch {
    throw formatError(f, "device name is not valid UTF-8", "name");
  }
  const metadata = f.payload.slice(1 + n);
  if (metadata.length > maxMetadata) {
    throw formatError(
      f,
      `device metadata of ${metadata.length} bytes exceeds max_metadata ${maxMetadata}`,
      "metadata",
      "LIMIT",
    );
  }
  return { name, metadata };
}

// ---- PHASE ----
export function writePhase(out: Uint8Array, at: number, phase: number, iteration: number): void {
  const dv = view(out);
  out[at] = phase;
  out[at + 1] = out[at + 2] = out[at + 3] = 0;
  dv.setUint32(at + 4, iteration, true);
}

export function readPhase(f: Frame): { phase: Phase; code: number; iteration: number } {
  const dv = expectSize(f, PHASE_PAYLOAD_SIZE);
  const code = f.payload[0];
  if (code >= PHASES.length) throw formatError(f, `unknown phase ${code}`, "phase");
  if (f.payload[1] | f.payload[2] | f.payload[3]) throw formatError(f, "reserved PHASE bytes are not zero", "reserved");
  return { phase: PHASES[code], code, iteration: dv.getUint32(4, true) };
}

// ---- DEVICE_PROTOCOL ----
/** Writes a v2 device's record (generation 1 has none). */
export function writeDeviceProtocol(out: Uint8Array, at: number, p: MigrationProtocol & { generation: 2 }): void {
  out.fill(0, at, at + DEVICE_PROTOCOL_PAYLOAD_SIZE);
  out[at] = PROTOCOL_GENERATION_V2;
  out[at + 1] = p.restartsAtStopCopy ? PROTOCOL_FLAG_RESTARTS_AT_STOP_COPY : 0;
}

export function readDeviceProtocol(f: Frame): MigrationProtocol {
  expectSize(f, DEVICE_PROTOCOL_PAYLOAD_SIZE);
  const [generation, flags] = f.payload;
  if (generation > PROTOCOL_GENERATION_V2) {
    throw new MigstreamError(
      "VERSION",
      `device ${f.device}: migration protocol generation ${generation} is unknown to this reader`,
      { offset: f.offset, frame: f.seq, field: "generation" },
    );
  }
  if (generation !== PROTOCOL_GENERATION_V2)
    throw formatError(f, `DEVICE_PROTOCOL generation ${generation} (a v1 device carries no record)`, "generation");
  if (flags & ~PROTOCOL_FLAG_RESTARTS_AT_STOP_COPY)
    throw formatError(f, `DEVICE_PROTOCOL flags 0x${flags.toString(16)}`, "flags");
  for (let i = 2; i < DEVICE_PROTOCOL_PAYLOAD_SIZE; i++)
    if (f.payload[i] !== 0) throw formatError(f, "reserved DEVICE_PROTOCOL bytes are not zero", "reserved");
  return { generation: 2, restartsAtStopCopy: (flags & PROTOCOL_FLAG_RESTARTS_AT_STOP_COPY) !== 0 };
}

// ---- TRANSACTION ----
export function writeTransaction(out: Uint8Array, at: number, size: number, chunks: number): void {
  const dv = view(out);
  dv.setUint32(at, size, true);
  dv.setUint32(at + 4, chunks, true);
}

export function readTransaction(f: Frame): { size: number; chunks: number } {
  const dv = expectSize(f, TRANSACTION_PAYLOAD_SIZE);
  return { size: dv.getUint32(0, true), chunks: dv.getUint32(4, true) };
}

// ---- CHUNK ----
export interface ChunkHeader {
  codec: number;
  level: number;
  rawLength: number;
  codedLength: number;
  rawHash: bigint;
}

export function writeChunkHeader(out: Uint8Array, at: number, c: ChunkHeader): void {
  const dv = view(out);
  out[at] = c.codec;
  out[at + 1] = c.level;
  dv.setUint16(at + 2, 0, true);
  dv.setUint32(at + 4, c.rawLength, true);
  dv.setUint32(at + 8, c.codedLength, true);
  dv.setBigUint64(at + 12, c.rawHash, true);
}

export function readChunkHeader(f: Frame): ChunkHeader {
  if (f.length < CHUNK_HEADER_SIZE)
    throw formatError(f, `CHUNK payload of ${f.length} bytes is shorter than its header`, "length");
  const dv = view(f.payload);
  if (dv.getUint16(2, true) !== 0) throw formatError(f, "reserved CHUNK field is not zero", "reserved");
  const c: ChunkHeader = {
    codec: f.payload[0],
    level: f.payload[1],
    rawLength: dv.getUint32(4, true),
    codedLength: dv.getUint32(8, true),
    rawHash: dv.getBigUint64(12, true),
  };
  if (c.codedLength !== f.length - CHUNK_HEADER_SIZE) {
    throw formatError(
      f,
      `coded_length ${c.codedLength} does not match the payload (${f.length - CHUNK_HEADER_SIZE})`,
      "coded_length",
    );
  }
  return c;
}

// ---- DEVICE_END ----
export function writeDeviceEnd(out: Uint8Array, at: number, t: DeviceTrailer): void {
  const dv = view(out);
  writeCount(dv, at, t.frames);
  writeCount(dv, at + 8, t.transactions);
  writeCount(dv, at + 16, t.chunks);
  writeCount(dv, at + 24, t.rawBytes);
  writeCount(dv, at + 32, t.codedBytes);
  dv.setBigUint64(at + 40, t.digest, true);
}

export function readDeviceEnd(f: Frame): DeviceTrailer {
  const dv = expectSize(f, DEVICE_END_PAYLOAD_SIZE);
  try {
    return {
      frames: readCount(dv, 0, "frames"),
      transactions: readCount(dv, 8, "transactions"),
      chunks: readCount(dv, 16, "chunks"),
      rawBytes: readCount(dv, 24, "raw_bytes"),
      codedBytes: readCount(dv, 32, "coded_bytes"),
      digest: dv.getBigUint64(40, true),
    };
  } catch (e) {
    throw formatError(f, (e as Error).message, (e as MigstreamError).field);
  }
}

// ---- STREAM_END ----
export function writeStreamEnd(out: Uint8Array, at: number, t: StreamTrailer): void {
  const dv = view(out);
  writeCount(dv, at, t.frames);
  writeCount(dv, at + 8, t.devices);
  writeCount(dv, at + 16, t.transactions);
  writeCount(dv, at + 24, t.chunks);
  writeCount(dv, at + 32, t.rawBytes);
  writeCount(dv, at + 40, t.codedBytes);
  dv.setBigUint64(at + 48, t.framesDigest, true);
  out.set(END_MARKER, at + 56);
}

export function readStreamEnd(f: Frame): StreamTrailer {
  const dv = expectSize(f, STREAM_END_PAYLOAD_SIZE);
  for (let i = 0; i < END_MARKER.length; i++) {
    if (f.payload[56 + i] !== END_MARKER[i]) throw formatError(f, "bad end marker", "end_marker");
  }
  try {
    return {
      frames: readCount(dv, 0, "frames"),
      devices: readCount(dv, 8, "devices"),
      transactions: readCount(dv, 16, "transactions"),
      chunks: readCount(dv, 24, "chunks"),
      rawBytes: readCount(dv, 32, "raw_bytes"),
      codedBytes: readCount(dv, 40, "coded_bytes"),
      framesDigest: dv.getBigUint64(48, true),
    };
  } catch (e) {
    throw formatError(f, (e as Error).message, (e as MigstreamError).field);
  }
}
