// ZERO: an all-zero chunk; the payload is empty and the raw length comes from
// the chunk header. Its raw_hash is the XXH3-64 of that many zero bytes, kept
// here for the last length asked (chunks of one size are the common case), for
// the encoder and both decoders.

import { MigstreamError } from "../errors.js";
import { xxh3_64 } from "../kernels/xxh3.js";
import { isZero } from "../kernels/zero.js";
import { outputFor } from "./output.js";

/** The (empty) payload of a ZERO chunk. */
export const ZERO_PAYLOAD: Uint8Array = new Uint8Array(0);

/** True when the chunk can be sent as ZERO (every byte 0; an empty chunk counts). */
export function isZeroChunk(raw: Uint8Array): boolean {
  return raw.length === 0 || isZero(raw);
}

let zeroHash = { length: -1, hash: 0n };

/**
 * XXH3-64 of `zeros`, which the caller knows to be all zero bytes (hashed
 * where they are: a chunk in kernel memory costs no allocation).
 */
export function hashOfZeros(zeros: Uint8Array): bigint {
  if (zeroHash.length !== zeros.length) zeroHash = { length: zeros.length, hash: xxh3_64(zeros) };
  return zeroHash.hash;
}

/** Decodes a ZERO chunk to `rawLength` zero bytes (into `into` when given), or throws CODEC for a payload. */
export function decodeZero(payload: Uint8Array, rawLength: number, into?: Uint8Array): Uint8Array {
  if (payload.length !== 0) {
    throw new MigstreamError("CODEC", `zero chunk carries a ${payload.length}-byte payload`);
  }
  const out = outputFor(rawLength, into);
  if (into !== undefined) out.fill(0);
  return out;
}
