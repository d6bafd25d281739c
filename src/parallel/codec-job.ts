// The codec jobs: encode (codec choice + xxh3_64 of the raw bytes, which the
// stream format needs) and decode (verified against the expected xxh3_64).
// zstd is loaded on first need in each realm (and waited for while it restarts),
// so a worker and the inline path see the same codec availability.
//
// LZ4, RAW and ZERO encodes, and LZ4 decodes, take a fast path: the input is
// copied once into reused kernel memory, tested, hashed and coded there, and
// the result is copied back into the job's own input buffer (a coded chunk
// never outgrows its raw bytes; a decode's input buffer has room when the
// caller sent it `whole`), so a job allocates nothing. Same decisions and
// bytes as codec/select.ts encodeChunk and codec/index.ts decodeChunk.

import { MigstreamError } from "../errors.js";
import { xxh3_64 } from "../kernels/xxh3.js";
import { isZero } from "../kernels/zero.js";
import { allocBuffer, inKernelMemory, type KernelBuffer } from "../kernels/wasm.js";
import { lz4CompressInto } from "../kernels/lz4.js";
import { autoDecide, type AutoContext } from "../codec/auto.js";
import { checkLz4Acceleration, LZ4_DEFAULT_ACCELERATION } from "../codec/lz4.js";
import { CODEC_LZ4, CODEC_RAW, CODEC_ZERO, CODEC_ZSTD, decodeChunk, encodeChunk, MAX_CHUNK_SIZE, maxCodedSize, ready } from "../codec/index.js";
import { toWireError, type BatchItem, type BatchResult, type CodecChoice, type DecodeSpan, type EncodedChunk, type EncodeSpan } from "./jobs.js";

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
    kout = allocBuffer(Math.max(n, 1));
  }
  return [kin, kout];
}

let zeroHash = { length: -1, hash: 0n };

/** ZERO, RAW or LZ4 without allocating (but for a shared `raw`); the payload lives in `raw`'s buffer. */
function fastEncode(raw: Uint8Array, lz4: boolean, acceleration: number): EncodedChunk {
  const n = raw.length;
  if (n > MAX_CHUNK_SIZE) throw new MigstreamError("LIMIT", `chunk of ${n} bytes exceeds ${MAX_CHUNK_SIZE}`);
  const [input, output] = kernelRoom(n);
  const v = input.view(0, n);
  v.set(raw);
  if (n === 0 || isZero(v)) {
    if (zeroHash.length !== n) zeroHash = { length: n, hash: xxh3_64(v) };
    return { codec: CODEC_ZERO, level: 0, payload: raw.subarray(0, 0), rawLength: n, hash: zeroHash.hash };
  }
  const hash = xxh3_64(v);
  const limit = maxCodedSize(n);
  if (lz4 && limit > 0) {
    const m = lz4CompressInto(v, output.view(0, limit), acceleration);
    if (m > 0) {
      // A shared input is the caller's, read in place and never written: the payload gets its own copy.
      if (isShared(raw)) return { codec: CODEC_LZ4, level: 0, payload: output.view(0, m).slice(), rawLength: n, hash };
      raw.set(output.view(0, m));
      return { codec: CODEC_LZ4, level: 0, payload: raw.subarray(0, m), rawLength: n, hash };
    }
  }
  return { codec: CODEC_RAW, level: 0, payload: raw, rawLength: n, hash };
}

/** True when auto would send an n-byte chunk with any live byte RAW without probing it. */
function autoNeverCodes(n: number, ctx: AutoContext | undefined): boolean {
  const d = autoDecide({ n, live: n }, { maxLevel: 0 }, ctx);
  return "codec" in d && d.codec === "raw";
}

function checkLevel(codec: CodecChoice, level: number | undefined): void {
  if (codec === "lz4") checkLz4Acceleration(level ?? LZ4_DEFAULT_ACCELERATION);
  else if (level !== undefined) throw new MigstreamError("USAGE", `codec ${codec} takes no level`);
}

/** Loads what a codec needs in this realm and checks its level (USAGE). */
async function prepare(codec: CodecChoice, level: number | undefined): Promise<boolean> {
  const fast = codec === "lz4" || codec === "raw" || codec === "zero";
  if (fast) checkLevel(codec, level);
  await ready({ zstd: codec === "zstd" || codec === "auto" });
  return fast;
}

/** Codes one chunk; with `inPlace` a zstd payload is copied into `raw`'s prefix too. */
function encodeOne(
  raw: Uint8Array,
  codec: CodecChoice,
  level: number | undefined,
  auto: AutoContext | undefined,
  fast: boolean,
  inPlace: boolean,
): EncodedChunk {
  if (fast) return fastEncode(raw, codec === "lz4", level ?? LZ4_DEFAULT_ACCELERATION);
  if (codec === "auto" && autoNeverCodes(raw.length, auto)) {
    // A sink so fast that auto sends RAW whatever the content: its choice, without the probes.
    return fastEncode(raw, false, LZ4_DEFAULT_ACCELERATION);
  }
  // auto works on one copy in kernel memory (probes, hash and LZ4 in place); zstd copies into its own heap.
  let input = raw;
  if (codec === "auto" && raw.length <= MAX_CHUNK_SIZE) {
    const [k] = kernelRoom(raw.length);
    input = k.view(0, raw.length);
    input.set(raw);
  }
  const hash = xxh3_64(input);
  // In place, zstd writes its payload straight over the raw bytes (it copied them in first).
  const c = encodeChunk(input, { codec, level, auto, into: inPlace ? raw : undefined });
  // RAW hands back the input itself; ZERO an empty view of it (a shared constant must not move).
  let payload = c.codec === CODEC_RAW ? raw : c.payload.length === 0 ? raw.subarray(0, 0) : c.payload;
  if (inPlace && payload !== raw && !(payload.buffer === raw.buffer && payload.byteOffset === raw.byteOffset)) {
    raw.set(payload);
    payload = raw.subarray(0, payload.length);
  }
  return { codec: c.codec, level: c.level, payload, rawLength: raw.length, hash };
}

export async function encodeJob(raw: Uint8Array, codec: CodecChoice, level: number | undefined, auto?: AutoContext): Promise<EncodedChunk> {
  const fast = await prepare(codec, level);
  return encodeOne(raw, codec, level, auto, fast, false);
}

function checkSpan(buffer: Uint8Array, offset: number, length: number): Uint8Array {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > buffer.length) {
    throw new MigstreamError("USAGE", `batch span ${offset}+${length} lies outside its ${buffer.length}-byte buffer`, { field: "spans" });
  }
  return buffer.subarray(offset, offset + length);
}

/** Codes each span in turn, its payload written over its raw bytes; stops at the first failure. */
export async function encodeBatchJob(
  buffer: Uint8Array,
  spans: EncodeSpan[],
  codec: CodecChoice,
  level: number | undefined,
  auto?: AutoContext,
): Promise<BatchResult> {
  const fast = await prepare(codec, level);
  const items: BatchItem[] = [];
  for (let i = 0; i < spans.length; i++) {
    try {
      const c = encodeOne(checkSpan(buffer, spans[i].offset, spans[i].length), codec, level, auto, fast, true);
      items.push({ codec: c.codec, level: c.level, length: c.payload.length, hash: c.hash });
    } catch (e) {
      return { buffer, items, failed: { index: i, error: toWireError(e) } };
    }
  }
  return { buffer, items };
}

/** Decodes and verifies each span in turn, its raw bytes written over its payload; stops at the first failure. */
export async function decodeBatchJob(buffer: Uint8Array, spans: DecodeSpan[]): Promise<BatchResult> {
  await ready({ zstd: spans.some((s) => s.codec === CODEC_ZSTD) });
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

const isShared = (v: Uint8Array) => typeof SharedArrayBuffer !== "undefined" && v.buffer instanceof SharedArrayBuffer;

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
 * the calling thread. The codec must be loaded (see ready()).
 */
export function decodeIntoRoom(codec: number, payload: Uint8Array, rawLength: number, hash: bigint, room: Uint8Array): Uint8Array {
  const raw = decodeInto(codec, payload, rawLength, hash, room);
  if (raw.buffer === room.buffer && raw.byteOffset === room.byteOffset) return raw;
  const out = room.subarray(0, raw.length); // RAW verified in place, or a codec that decoded elsewhere
  out.set(raw);
  return out;
}

export async function decodeJob(codec: number, payload: Uint8Array, rawLength: number, hash: bigint): Promise<Uint8Array> {
  await ready({ zstd: codec === CODEC_ZSTD });
  return decodeInto(codec, payload, rawLength, hash, hasRoom(payload, rawLength) ? new Uint8Array(payload.buffer, 0, rawLength) : null);
}

/**
 * Decodes and verifies one chunk. With `room` (at least rawLength bytes,
 * starting where the payload starts) the raw bytes are written there.
 */
function decodeInto(codec: number, payload: Uint8Array, rawLength: number, hash: bigint, room: Uint8Array | null): Uint8Array {
  if (room !== null && room.length < rawLength) room = null;
  if (codec === CODEC_LZ4 && room !== null && rawLength > 0 && rawLength <= MAX_CHUNK_SIZE) return fastDecodeLz4(payload, rawLength, hash, room);
  if (codec === CODEC_RAW && payload.length === rawLength && !isShared(payload)) {
    // The payload is the chunk: verify it in place.
    const got = xxh3_64(payload);
    if (got !== hash) throw mismatch(got, hash);
    return payload;
  }
  // zstd copies the frame into its own memory first, so it may write over the payload (no fresh buffer: allocating 256 KiB costs more than decoding it here).
  let raw = codec === CODEC_ZSTD && room !== null ? decodeChunk(codec, payload, rawLength, room.subarray(0, rawLength)) : decodeChunk(codec, payload, rawLength);
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
