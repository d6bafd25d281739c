// The codec jobs: encode (codec choice + xxh3_64 of the raw bytes, which the
// stream format needs) and decode (verified against the expected xxh3_64).
// zstd is loaded on first need in each realm (and waited for while it restarts),
// so a worker and the inline path see the same codec availability.

import { MigstreamError } from "../errors.js";
import { xxh3_64 } from "../kernels/xxh3.js";
import { CODEC_RAW, CODEC_ZSTD, decodeChunk, encodeChunk, ready } from "../codec/index.js";
import type { CodecChoice, EncodedChunk } from "./jobs.js";

function hex(h: bigint): string {
  return h.toString(16).padStart(16, "0");
}

export async function encodeJob(raw: Uint8Array, codec: CodecChoice, level: number | undefined): Promise<EncodedChunk> {
  await ready({ zstd: codec === "zstd" || codec === "auto" });
  const hash = xxh3_64(raw);
  const c = encodeChunk(raw, level === undefined ? { codec } : { codec, level });
  // RAW hands back the input itself; ZERO a shared empty constant that must not be moved.
  const payload = c.codec === CODEC_RAW ? raw : c.payload.length === 0 ? new Uint8Array(0) : c.payload;
  return { codec: c.codec, level: c.level, payload, rawLength: raw.length, hash };
}

export async function decodeJob(codec: number, payload: Uint8Array, rawLength: number, hash: bigint): Promise<Uint8Array> {
  await ready({ zstd: codec === CODEC_ZSTD });
  const raw = decodeChunk(codec, payload, rawLength);
  const got = xxh3_64(raw);
  if (got !== hash) {
    throw new MigstreamError("CHECKSUM", `chunk xxh3 ${hex(got)} does not match ${hex(hash)}`, { field: "xxh3" });
  }
  return raw;
}
