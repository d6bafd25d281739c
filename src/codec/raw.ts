// RAW: the payload is the chunk itself.

import { MigstreamError } from "../errors.js";
import { outputFor } from "./output.js";

/** The payload of a RAW chunk: the chunk itself (no copy; do not mutate it afterwards). */
export function encodeRaw(raw: Uint8Array): Uint8Array {
  return raw;
}

export function decodeRaw(payload: Uint8Array, rawLength: number, into?: Uint8Array): Uint8Array {
  if (payload.length !== rawLength) {
    throw new MigstreamError("CODEC", `raw payload has ${payload.length} bytes, expected ${rawLength}`);
  }
  const out = outputFor(rawLength, into);
  out.set(payload);
  return out;
}
