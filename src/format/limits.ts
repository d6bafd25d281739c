// Decoder limits: each defaults to the format's named maximum and can only be
// lowered. A header declaring more than a limit is rejected before allocation.

import { MAX_CHUNK_SIZE } from "../codec/coder.js";
import { MAX_DEDUP_WINDOW } from "../codec/dedup.js";
import { MigstreamError } from "../errors.js";
import {
  MAX_DEDUP_MEMORY,
  MAX_DEVICES,
  MAX_FRAME_PAYLOAD,
  MAX_METADATA_SIZE,
  MAX_TRANSACTION_SIZE,
} from "./constants.js";

/** Limits a decoder enforces on what a stream declares (LIMIT beyond them); each defaults to FORMAT_LIMITS. */
export interface DecoderLimits {
  maxFrameSize?: number;
  maxChunkSize?: number;
  maxTransactionSize?: number;
  maxMetadataSize?: number;
  /** Dedup window per device. */
  maxWindow?: number;
  maxDevices?: number;
  /** dedup_window × max_devices. */
  maxDedupMemory?: number;
}

const FORMAT_LIMITS: Readonly<Required<DecoderLimits>> = {
  maxFrameSize: MAX_FRAME_PAYLOAD,
  maxChunkSize: MAX_CHUNK_SIZE,
  maxTransactionSize: MAX_TRANSACTION_SIZE,
  maxMetadataSize: MAX_METADATA_SIZE,
  maxWindow: MAX_DEDUP_WINDOW,
  maxDevices: MAX_DEVICES,
  maxDedupMemory: MAX_DEDUP_MEMORY,
};

/** The effective limits: the format's, lowered by `o`. USAGE for a raise or a non-integer. */
export function resolveLimits(o: DecoderLimits = {}): Required<DecoderLimits> {
  const out = { ...FORMAT_LIMITS };
  for (const k of Object.keys(FORMAT_LIMITS) as (keyof DecoderLimits)[]) {
    const v = o[k];
    if (v === undefined) continue;
    if (!Number.isSafeInteger(v) || v < 0)
      throw new MigstreamError("USAGE", `${k} must be a non-negative integer, got ${v}`, { field: k });
    if (v > FORMAT_LIMITS[k]) {
      throw new MigstreamError("USAGE", `${k} ${v} is above the format's limit ${FORMAT_LIMITS[k]}`, { field: k });
    }
    out[k] = v;
  }
  return out;
}
