// LZ4 chunks: one LZ4 block (no frame); the raw length comes from the chunk
// header. Encoding is the coder's (coder.ts: straight into its slot, capped at
// the size worth sending, so incompressible input stops early); this module
// holds the acceleration rule and the decoder.

import { isMigstreamError, MigstreamError } from "../errors.js";
import { LZ4_ACCELERATION_MAX, lz4DecompressInto } from "../kernels/lz4.js";
import { outputFor } from "./output.js";

/** LZ4 acceleration unless a level says otherwise. */
export const LZ4_DEFAULT_ACCELERATION = 1;
export { LZ4_ACCELERATION_MAX };

/** One LZ4 input byte decodes to at most this many bytes (a run of 255-length bytes). */
const LZ4_MAX_EXPANSION = 255;

/** Throws USAGE unless `a` is an LZ4 acceleration: an integer in 1..LZ4_ACCELERATION_MAX. */
export function checkLz4Acceleration(a: number): void {
  if (!Number.isInteger(a) || a < 1 || a > LZ4_ACCELERATION_MAX) {
    throw new MigstreamError("USAGE", `LZ4 acceleration must be an integer in 1..${LZ4_ACCELERATION_MAX}, got ${a}`, {
      field: "level",
    });
  }
}

/** Decodes one LZ4 block to exactly `rawLength` bytes (into `into` when given), or throws CODEC. */
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
