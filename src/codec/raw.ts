// RAW: the payload is the chunk itself.

import { MigstreamError } from "../errors.js";
import { outputFor } from "./output.js";

/** Decodes a RAW chunk: its payload, which must be exactly `rawLength` bytes (into `into` when given, else a copy). */
export function decodeRaw(payload: Uint8Array, rawLength: number, into?: Uint8Array): Uint8Array {
  if (payload.length !== rawLength) {
    throw new MigstreamError("CODEC", `raw payload has ${payload.length} bytes, expected ${rawLength}`);
  }
  const out = outputFor(rawLength, into);
  out.set(payload);
  return out;
}
