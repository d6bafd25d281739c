// ZERO: an all-zero chunk; the payload is empty and the raw length comes from
// the chunk header.

import { MigstreamError } from "../errors.js";
import { isZero } from "../kernels/zero.js";
import { outputFor } from "./output.js";

export const ZERO_PAYLOAD: Uint8Array = new Uint8Array(0);

/** True when the chunk can be sent as ZERO (every byte 0; an empty chunk counts). */
export function isZeroChunk(raw: Uint8Array): boolean {
  return raw.length === 0 || isZero(raw);
}

export function decodeZero(payload: Uint8Array, rawLength: number, into?: Uint8Array): Uint8Array {
  if (payload.length !== 0) {
    throw new MigstreamError("CODEC", `zero chunk carries a ${payload.length}-byte payload`);
  }
  const out = outputFor(rawLength, into);
  if (into !== undefined) out.fill(0);
  return out;
}
