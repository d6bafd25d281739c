// The output buffer of a chunk decoder: the caller's `into` (at least rawLength
// bytes; the result is its first rawLength bytes) or a new array of exactly
// rawLength bytes. Nothing else is ever allocated from a payload's claims.

import { MigstreamError } from "../errors.js";

export function outputFor(rawLength: number, into?: Uint8Array): Uint8Array {
  if (into === undefined) return new Uint8Array(rawLength);
  if (into.length < rawLength) {
    throw new MigstreamError("USAGE", `output buffer has ${into.length} bytes, chunk needs ${rawLength}`);
  }
  return into.subarray(0, rawLength);
}
