// LZ4 chunks: one LZ4 block (no frame); the raw length comes from the chunk
// header. Encoding writes into a reused buffer in kernel memory capped at the
// size worth sending, so incompressible input stops early and costs no copy.

import { isMigstreamError, MigstreamError } from "../errors.js";
import { lz4DecompressInto, lz4CompressInto, LZ4_ACCELERATION_MAX } from "../kernels/lz4.js";
import { allocBuffer, type KernelBuffer } from "../kernels/wasm.js";
import { outputFor } from "./output.js";

export const LZ4_DEFAULT_ACCELERATION = 1;
export { LZ4_ACCELERATION_MAX };
/** One LZ4 input byte decodes to at most this many bytes (a run of 255-length bytes). */
const LZ4_MAX_EXPANSION = 255;

let out: KernelBuffer | null = null;

function outBuffer(n: number): KernelBuffer {
  if (out === null || out.length < n) {
    out?.free();
    out = allocBuffer(n);
  }
  return out;
}

export function checkLz4Acceleration(a: number): void {
  if (!Number.isInteger(a) || a < 1 || a > LZ4_ACCELERATION_MAX) {
    throw new MigstreamError("USAGE", `LZ4 acceleration must be an integer in 1..${LZ4_ACCELERATION_MAX}, got ${a}`);
  }
}

/** The LZ4 block of `raw` if it fits in `limit` bytes, else null. */
export function encodeLz4(raw: Uint8Array, limit: number, acceleration = LZ4_DEFAULT_ACCELERATION): Uint8Array | null {
  checkLz4Acceleration(acceleration);
  if (limit <= 0) return null;
  const buf = outBuffer(limit);
  const n = lz4CompressInto(raw, buf.view(0, limit), acceleration);
  return n === 0 ? null : buf.view(0, n).slice();
}

export function decodeLz4(payload: Uint8Array, rawLength: number, into?: Uint8Array): Uint8Array {
  if (rawLength > payload.length * LZ4_MAX_EXPANSION) {
    throw new MigstreamError("CODEC", `LZ4 payload of ${payload.length} bytes cannot produce ${rawLength} bytes`);
  }
  const dst = outputFor(rawLength, into);
  let n: number;
  try {
    n = lz4DecompressInto(payload, dst);
  } catch (e) {
    if (isMigstreamError(e)) throw e;
    throw new MigstreamError("CODEC", `LZ4 decode failed: ${String(e)}`, { cause: e });
  }
  if (n !== rawLength) throw new MigstreamError("CODEC", `LZ4 block decoded to ${n} bytes, expected ${rawLength}`);
  return dst;
}
