// The codec jobs, as a worker (or the calling thread, for an inline pool)
// runs them: encode — the coding rule of codec/coder.ts, the same function the
// encoder runs inline, so the bytes do not depend on where a chunk was coded —
// and decode, verified against the expected xxh3_64. zstd is loaded on first
// need in each realm (and waited for while it restarts), so a worker and the
// inline path see the same codec availability.
//
// A chunk is copied once into reused kernel memory and coded there in place,
// its payload written into a second reused buffer and copied back into the
// job's own buffer over the raw bytes (a coded payload never outgrows them;
// RAW needs no copy at all). LZ4 decodes take the same kind of path: decoded
// in kernel memory, verified there, copied into the job's buffer (which has
// room when the caller sent it `whole`). A job allocates nothing.

import type { AutoContext } from "../codec/auto/decide.js";
import {
  CODEC_LZ4,
  CODEC_RAW,
  CODEC_ZSTD,
  type CodedChunk,
  type Coding,
  decodeChunk,
  encodeChunk,
  init,
  MAX_CHUNK_SIZE,
  reserveCoder,
  slotSize,
} from "../codec/index.js";
import { MigstreamError } from "../errors.js";
import { allocBuffer, inKernelMemory, type KernelBuffer } from "../kernels/wasm.js";
import { xxh3_64 } from "../kernels/xxh3.js";
import { isShared } from "./buffers.js";
import { type BatchItem, type BatchResult, type DecodeSpan, type EncodeSpan, toWireError } from "./jobs.js";

function hex(h: bigint): string {
  return h.toString(16).padStart(16, "0");
}

// Kernel memory reused by every job of this realm: the input, and the output.
let kin: KernelBuffer | null = null;
let kout: KernelBuffer | null = null;

/** Reused kernel buffers of at least n bytes (allocating may grow memory: take views after). */
function kernelRoom(n: number): [KernelBuffer, KernelBuffer] {
  if (kin === null || kout === null || kin.length < n) {
    kin?.free();
    kout?.free();
    kin = allocBuffer(Math.max(n, 1));
    kout = allocBuffer(slotSize(Math.max(n, 1)));
  }
  return [kin, kout];
}

/** Loads what a codec needs in this realm. */
function prepare(coding: Coding): Promise<void> {
  return init({ zstd: coding.codec === "zstd" || coding.codec === "auto" });
}

/**
 * Codes one chunk in kernel memory; its payload is copied back over `raw`
 * (RAW: `raw` itself; ZERO: an empty view of it) — unless `raw` is shared
 * (the caller's, read in place and never written): then into a copy of its own.
 */
function encodeInPlace(raw: Uint8Array, coding: Coding, auto: AutoContext | undefined): CodedChunk {
  const n = raw.length;
  if (n > MAX_CHUNK_SIZE) throw new MigstreamError("LIMIT", `chunk of ${n} bytes exceeds ${MAX_CHUNK_SIZE}`);
  reserveCoder(n);
  const [input, output] = kernelRoom(n);
  const chunk = input.view(0, n);
  chunk.set(raw);
  const c = encodeChunk(chunk, output.view(0, slotSize(n)), coding, { auto });
  if (c.codec === CODEC_RAW) c.payload = raw;
  else if (isShared(raw)) c.payload = c.payload.slice();
  else {
    raw.set(c.payload);
    c.payload = raw.subarray(0, c.payload.length);
  }
  return c;
}

/** Codes one chunk (the pool's `encode` job); its payload lives in `raw`'s buffer. */
export async function encodeJob(raw: Uint8Array, coding: Coding, auto?: AutoContext): Promise<CodedChunk> {
  await prepare(coding);
  return encodeInPlace(raw, coding, auto);
}

function checkSpan(buffer: Uint8Array, offset: number, length: number): Uint8Array {
  if (
    !Number.isSafeInteger(offset) ||
    !Number.isSafeInteger(length) ||
    offset < 0 ||
    length < 0 ||
    offset + length > buffer.length
  ) {
    throw new MigstreamError("USAGE", `batch span ${offset}+${length} lies outside its ${buffer.length}-byte buffer`, {
      field: "spans",
    });
  }
  return buffer.subarray(offset, offset + length);
}

/** Codes each span in turn, its payload written over its raw bytes; stops at the first failure. */
export async function encodeBatchJob(
  buffer: Uint8Array,
  spans: EncodeSpan[],
  coding: Coding,
  auto?: AutoContext,
): Promise<BatchResult> {
  await prepare(coding);
  const items: BatchItem[] = [];
  for (let i = 0; i < spans.length; i++) {
    try {
      const c = encodeInPlace(checkSpan(buffer, spans[i].offset, spans[i].length), coding, auto);
      items.push({ codec: c.codec, level: c.level, length: c.payload.length, hash: c.hash });
    } catch (e) {
      return { buffer, items, failed: { index: i, error: toWireError(e) } };
    }
  }
  return { buffer, items };
}

/** Decodes and verifies each span in turn, its raw bytes written over its payload; stops at the first failure. */
export async function decodeBatchJob(buffer: Uint8Array, spans: DecodeSpan[]): Promise<BatchResult> {
  await init({ zstd: spans.some((s) => s.codec === CODEC_ZSTD) });
  const items: BatchItem[] = [];
  for (let i = 0; i < spans.length; i++) {
    const s = spans[i];
    try {
      const region = checkSpan(buffer, s.offset, Math.max(s.coded, Math.min(s.rawLength, buffer.length - s.offset)));
      const raw = decodeInto(s.codec, region.subarray(0, s.coded), s.rawLength, s.hash, region);
      items.push({ codec: s.codec, level: 0, length: raw.length, hash: s.hash });
    } catch (e) {
      return { buffer, items, failed: { index: i, error: toWireError(e) } };
    }
  }
  return { buffer, items };
}

/** LZ4 decoded in kernel memory, verified there, copied into `room` (over the payload). */
function fastDecodeLz4(payload: Uint8Array, rawLength: number, hash: bigint, room: Uint8Array): Uint8Array {
  const [, output] = kernelRoom(rawLength);
  decodeChunk(CODEC_LZ4, payload, rawLength, output.view(0, rawLength));
  const v = output.view(0, rawLength);
  const got = xxh3_64(v);
  if (got !== hash) throw mismatch(got, hash);
  const out = room.subarray(0, rawLength);
  out.set(v);
  return out;
}

function mismatch(got: bigint, want: bigint): MigstreamError {
  return new MigstreamError("CHECKSUM", `chunk xxh3 ${hex(got)} does not match ${hex(want)}`, { field: "xxh3" });
}

/** True when `payload` starts a buffer of its own (not shared) with room for rawLength bytes. */
function hasRoom(payload: Uint8Array, rawLength: number): boolean {
  return (
    Number.isSafeInteger(rawLength) &&
    rawLength > 0 &&
    rawLength <= MAX_CHUNK_SIZE &&
    payload.byteOffset === 0 &&
    payload.buffer.byteLength >= rawLength &&
    !isShared(payload) &&
    !inKernelMemory(payload)
  );
}

/**
 * Decodes and verifies one chunk into `room`, a buffer of its own (not the
 * payload's) with at least rawLength bytes, before it returns: for decoding on
 * the calling thread. The codec must be loaded (see init()).
 */
export function decodeIntoRoom(
  codec: number,
  payload: Uint8Array,
  rawLength: number,
  hash: bigint,
  room: Uint8Array,
): Uint8Array {
  const raw = decodeInto(codec, payload, rawLength, hash, room);
  if (raw.buffer === room.buffer && raw.byteOffset === room.byteOffset) return raw;
  const out = room.subarray(0, raw.length); // RAW verified in place, or a codec that decoded elsewhere
  out.set(raw);
  return out;
}

export async function decodeJob(
  codec: number,
  payload: Uint8Array,
  rawLength: number,
  hash: bigint,
): Promise<Uint8Array> {
  await init({ zstd: codec === CODEC_ZSTD });
  return decodeInto(
    codec,
    payload,
    rawLength,
    hash,
    hasRoom(payload, rawLength) ? new Uint8Array(payload.buffer, 0, rawLength) : null,
  );
}

/**
 * Decodes and verifies one chunk. With `room` (at least rawLength bytes,
 * starting where the payload starts) the raw bytes are written there.
 */
function decodeInto(
  codec: number,
  payload: Uint8Array,
  rawLength: number,
  hash: bigint,
  room: Uint8Array | null,
): Uint8Array {
  if (room !== null && room.length < rawLength) room = null;
  if (codec === CODEC_LZ4 && room !== null && rawLength > 0 && rawLength <= MAX_CHUNK_SIZE)
    return fastDecodeLz4(payload, rawLength, hash, room);
  if (codec === CODEC_RAW && payload.length === rawLength && !isShared(payload)) {
    // The payload is the chunk: verify it in place.
    const got = xxh3_64(payload);
    if (got !== hash) throw mismatch(got, hash);
    return payload;
  }
  // zstd copies the frame into its own memory first, so it may write over the payload (no fresh buffer: allocating 256 KiB costs more than decoding it here).
  let raw =
    codec === CODEC_ZSTD && room !== null
      ? decodeChunk(codec, payload, rawLength, room.subarray(0, rawLength))
      : decodeChunk(codec, payload, rawLength);
  const got = xxh3_64(raw);
  if (got !== hash) throw mismatch(got, hash);
  if (room !== null && raw.buffer !== room.buffer) {
    // Hand the result back in the caller's buffer, which it recycles.
    const out = room.subarray(0, rawLength);
    out.set(raw);
    raw = out;
  }
  return raw;
}
