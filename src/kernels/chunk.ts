// Chunk boundaries: fixed-size and content-defined (FastCDC-style gear hash with
// normalized chunking; see assembly/chunk.ts). Boundaries are chunk END offsets;
// the last one equals the input length. Scratch slots: SLOT_IN, SLOT_OUT, SLOT_AUX.

import { MigstreamError } from "../errors.js";
import { inputPtr, kernels, memU8, SLOT_AUX, SLOT_IN, SLOT_OUT, scratch } from "./wasm.js";

/** Sizes of content-defined chunks. */
export interface CdcOptions {
  /** Smallest chunk (except the last); >= CDC_MIN_SIZE. */
  minSize: number;
  /** Target average; a power of two in [minSize, maxSize]. */
  avgSize: number;
  /** Largest chunk (cut by force); <= CDC_MAX_SIZE. */
  maxSize: number;
}

/** Floor for minSize: below this the gear hash window (64 bytes) is not full. */
export const CDC_MIN_SIZE = 64;
/** Ceiling for maxSize. */
export const CDC_MAX_SIZE = 16 << 20;
/** Normalization level: mask bits are log2(avg) + level before avg, - level after. */
export const CDC_NORMALIZATION = 2;
/** Largest length fixedBoundaries and the one-shot chunker can express (u32 offsets). */
export const CHUNK_MAX_LENGTH = 0xffffffff;

/** Kernel scan state: u64 fingerprint, u32 bytes into the current chunk. */
const STATE_BYTES = 16;
const STATE_POS = 8;

interface CdcParams {
  min: number;
  avg: number;
  max: number;
  bitsS: number;
  bitsL: number;
}

function isInt(x: unknown): x is number {
  return typeof x === "number" && Number.isInteger(x);
}

function cdcParams(o: CdcOptions): CdcParams {
  const { minSize: min, avgSize: avg, maxSize: max } = o ?? ({} as CdcOptions);
  if (!isInt(min) || !isInt(avg) || !isInt(max)) {
    throw new MigstreamError("USAGE", "CDC minSize, avgSize and maxSize must be integers");
  }
  if (min < CDC_MIN_SIZE || max > CDC_MAX_SIZE || min > avg || avg > max) {
    throw new MigstreamError(
      "USAGE",
      `CDC sizes must satisfy ${CDC_MIN_SIZE} <= min <= avg <= max <= ${CDC_MAX_SIZE}, got ${min}/${avg}/${max}`,
    );
  }
  if ((avg & (avg - 1)) !== 0) throw new MigstreamError("USAGE", `CDC avgSize must be a power of two, got ${avg}`);
  const bits = 31 - Math.clz32(avg);
  return { min, avg, max, bitsS: bits + CDC_NORMALIZATION, bitsL: bits - CDC_NORMALIZATION };
}

/** End offsets of `size`-byte chunks covering `length` bytes (the last may be short). */
export function fixedBoundaries(length: number, size: number): Uint32Array {
  if (!isInt(length) || length < 0 || length > CHUNK_MAX_LENGTH) {
    throw new MigstreamError("USAGE", `length must be an integer in 0..${CHUNK_MAX_LENGTH}, got ${length}`);
  }
  if (!isInt(size) || size < 1) throw new MigstreamError("USAGE", `chunk size must be a positive integer, got ${size}`);
  const n = Math.ceil(length / size);
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.min((i + 1) * size, length);
  return out;
}

/** Scan state of a chunker between kernel calls. */
interface ScanState {
  fpLo: number;
  fpHi: number;
  pos: number;
}

/** Runs the kernel over `data` from `state`; returns relative end offsets and updates `state`. */
function scan(data: Uint8Array, p: CdcParams, state: ScanState): Uint32Array {
  const k = kernels();
  const ptr = inputPtr(data, SLOT_IN);
  const maxCuts = Math.floor((state.pos + data.length) / p.min) + 1;
  const out = scratch(SLOT_OUT, maxCuts * 4);
  const st = scratch(SLOT_AUX, STATE_BYTES);
  let dv = new DataView(memU8().buffer);
  dv.setUint32(st, state.fpLo, true);
  dv.setUint32(st + 4, state.fpHi, true);
  dv.setUint32(st + STATE_POS, state.pos, true);
  const count = k.chunk_cdc(ptr, data.length, st, out, p.min, p.avg, p.max, p.bitsS, p.bitsL) >>> 0;
  dv = new DataView(memU8().buffer);
  state.fpLo = dv.getUint32(st, true);
  state.fpHi = dv.getUint32(st + 4, true);
  state.pos = dv.getUint32(st + STATE_POS, true);
  // `out` is 64-byte aligned (arena blocks), so a u32 view is valid.
  return new Uint32Array(memU8().buffer, out, count).slice();
}

/** Content-defined chunk end offsets of `data`; the last equals data.length. */
export function cdcBoundaries(data: Uint8Array, options: CdcOptions): Uint32Array {
  const p = cdcParams(options);
  const state: ScanState = { fpLo: 0, fpHi: 0, pos: 0 };
  const ends = scan(data, p, state);
  if (state.pos === 0) return ends;
  const all = new Uint32Array(ends.length + 1);
  all.set(ends);
  all[ends.length] = data.length;
  return all;
}

/**
 * Streaming content-defined chunker: feed a stream in pieces of any size and get
 * the same boundaries as `cdcBoundaries` on the whole stream. Offsets are
 * absolute from the start of the stream. `finish()` returns the final boundary
 * (if the last chunk is non-empty) and resets the chunker for a new stream.
 */
export class CdcChunker {
  private readonly params: CdcParams;
  private state: ScanState = { fpLo: 0, fpHi: 0, pos: 0 };
  private offset = 0;

  constructor(options: CdcOptions) {
    this.params = cdcParams(options);
  }

  /** Feeds the next piece; returns the end offsets of chunks completed by it. */
  push(data: Uint8Array): number[] {
    const ends = scan(data, this.params, this.state);
    const base = this.offset;
    this.offset += data.length;
    return Array.from(ends, (e) => base + e);
  }

  /** Ends the stream: the last boundary if a chunk is open, else nothing. */
  finish(): number[] {
    const tail = this.state.pos > 0 ? [this.offset] : [];
    this.state = { fpLo: 0, fpHi: 0, pos: 0 };
    this.offset = 0;
    return tail;
  }
}
