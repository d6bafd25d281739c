// LZ4 block codec (standard block format: no frame, no size header; see
// assembly/lz4.ts). Any LZ4 block decoder reads our output, and we read theirs.
// Scratch slots: SLOT_IN (input copy), SLOT_OUT (output before copy-out).

import { MigstreamError } from "../errors.js";
import { inKernelMemory, inputPtr, kernels, memU8, SLOT_IN, SLOT_OUT, scratch } from "./wasm.js";

/** Largest input the codec accepts (as lz4.h's LZ4_MAX_INPUT_SIZE). */
export const LZ4_MAX_INPUT_SIZE = 0x7e000000;
/** Accelerations above this behave like it (as lz4.c). */
export const LZ4_ACCELERATION_MAX = 65537;
/** One input byte decodes to at most this many output bytes (a 255 length byte). */
const LZ4_MAX_EXPANSION = 255;

// Decoder error kinds reported by the kernel (assembly/lz4.ts).
const ERR_TRUNCATED = 1;
const ERR_OFFSET = 2;
const ERR_OUTPUT = 3;

/** Worst-case compressed size of `n` input bytes; 0 when `n` is out of range (as lz4.h). */
export function lz4CompressBound(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > LZ4_MAX_INPUT_SIZE) return 0;
  return n + Math.floor(n / 255) + 16;
}

function checkInput(src: Uint8Array): void {
  if (src.length > LZ4_MAX_INPUT_SIZE) {
    throw new MigstreamError("LIMIT", `LZ4 input of ${src.length} bytes exceeds ${LZ4_MAX_INPUT_SIZE}`);
  }
}

function checkAcceleration(a: number): number {
  if (!Number.isInteger(a) || a < 1) {
    throw new MigstreamError("USAGE", `LZ4 acceleration must be an integer >= 1, got ${a}`);
  }
  return Math.min(a, LZ4_ACCELERATION_MAX);
}

/** Compresses `src` into a new array of exactly the compressed length. */
export function lz4Compress(src: Uint8Array, acceleration = 1): Uint8Array {
  checkInput(src);
  const accel = checkAcceleration(acceleration);
  const k = kernels();
  const srcPtr = inputPtr(src, SLOT_IN);
  const bound = lz4CompressBound(src.length);
  const dstPtr = scratch(SLOT_OUT, bound);
  const written = k.lz4_compress(srcPtr, src.length, dstPtr, bound, accel) >>> 0;
  if (written === 0) throw new MigstreamError("INTERNAL", "LZ4 output exceeded its bound");
  return memU8().slice(dstPtr, dstPtr + written);
}

/**
 * Compresses `src` into `dst`. Returns the bytes written, or 0 when `dst` is too
 * small (its contents are then unspecified). A `dst` inside kernel memory is
 * written in place; `src` and `dst` must not overlap.
 */
export function lz4CompressInto(src: Uint8Array, dst: Uint8Array, acceleration = 1): number {
  checkInput(src);
  const accel = checkAcceleration(acceleration);
  const k = kernels();
  // Capture dst before anything may grow memory (growth detaches kernel views).
  const direct = inKernelMemory(dst);
  const dstOff = dst.byteOffset;
  const cap = Math.min(dst.length, lz4CompressBound(src.length));
  const srcPtr = inputPtr(src, SLOT_IN);
  if (direct) return k.lz4_compress(srcPtr, src.length, dstOff, cap, accel) >>> 0;
  const outPtr = scratch(SLOT_OUT, cap);
  const written = k.lz4_compress(srcPtr, src.length, outPtr, cap, accel) >>> 0;
  if (written > 0) dst.set(memU8().subarray(outPtr, outPtr + written));
  return written;
}

function decodeError(kind: number, at: number, capacity: number): MigstreamError {
  const where = { offset: at };
  switch (kind) {
    case ERR_TRUNCATED:
      return new MigstreamError("CODEC", `LZ4 block truncated or a length runs past its end at byte ${at}`, where);
    case ERR_OFFSET:
      return new MigstreamError("CODEC", `LZ4 match offset at byte ${at} points before the start of output`, where);
    case ERR_OUTPUT:
      return new MigstreamError(
        "CODEC",
        `LZ4 block decodes to more than the expected ${capacity} bytes (at byte ${at})`,
        where,
      );
    default:
      return new MigstreamError("CODEC", `LZ4 block malformed at byte ${at}`, where);
  }
}

/** Runs the decoder; returns the decoded size or throws CODEC. */
function decodeAt(srcPtr: number, srcLen: number, dstPtr: number, dstCap: number): number {
  const k = kernels();
  const r = k.lz4_decompress(srcPtr, srcLen, dstPtr, dstCap) | 0;
  if (r < 0) throw decodeError(k.lz4_errorKind(), -1 - r, dstCap);
  return r;
}

/** Decodes `src` into a new array of exactly `rawSize` bytes, or throws CODEC. */
export function lz4Decompress(src: Uint8Array, rawSize: number): Uint8Array {
  if (!Number.isInteger(rawSize) || rawSize < 0) {
    throw new MigstreamError("USAGE", `LZ4 raw size must be a non-negative integer, got ${rawSize}`);
  }
  if (rawSize > LZ4_MAX_INPUT_SIZE) {
    throw new MigstreamError("LIMIT", `LZ4 raw size ${rawSize} exceeds ${LZ4_MAX_INPUT_SIZE}`);
  }
  if (rawSize > src.length * LZ4_MAX_EXPANSION) {
    throw new MigstreamError("CODEC", `LZ4 block of ${src.length} bytes cannot produce the expected ${rawSize} bytes`, {
      offset: 0,
    });
  }
  const srcPtr = inputPtr(src, SLOT_IN);
  const dstPtr = scratch(SLOT_OUT, rawSize);
  const produced = decodeAt(srcPtr, src.length, dstPtr, rawSize);
  if (produced !== rawSize) {
    throw new MigstreamError("CODEC", `LZ4 block decoded to ${produced} bytes, expected ${rawSize}`, {
      offset: src.length,
    });
  }
  return memU8().slice(dstPtr, dstPtr + rawSize);
}

/**
 * Decodes `src` into `dst` and returns the bytes written; throws CODEC when the
 * block is malformed or does not fit. A `dst` inside kernel memory is written in
 * place (bytes past the returned size may be overwritten); `src` and `dst` must
 * not overlap.
 */
export function lz4DecompressInto(src: Uint8Array, dst: Uint8Array): number {
  const direct = inKernelMemory(dst);
  const dstOff = dst.byteOffset;
  const cap = Math.min(dst.length, src.length * LZ4_MAX_EXPANSION);
  const srcPtr = inputPtr(src, SLOT_IN);
  if (direct) return decodeAt(srcPtr, src.length, dstOff, cap);
  const outPtr = scratch(SLOT_OUT, cap);
  const produced = decodeAt(srcPtr, src.length, outPtr, cap);
  dst.set(memU8().subarray(outPtr, outPtr + produced));
  return produced;
}
