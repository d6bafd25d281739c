// Where the encoder cuts a transaction into chunks: fixed-size pieces, or with
// dedup on, content-defined chunks (FastCDC-style, kernels/chunk.ts) so data
// shifted between phases still lines up. Chunks never cross a transaction.

import { CDC_MIN_SIZE, CdcChunker, type CdcOptions } from "../kernels/chunk.js";

/** Content-defined chunks average about chunkSize / CDC_AVG_DIVISOR (rounded down to a power of two). */
export const CDC_AVG_DIVISOR = 4;
/** ...and are at least a quarter of that average. */
export const CDC_MIN_DIVISOR = 4;
/** The content-defined chunker is fed this much of a transaction at a time (bounds kernel scratch). */
export const CDC_FEED_SIZE = 4 << 20;

/** CDC parameters for chunks of at most `chunkSize`, or null when chunks that small must be fixed. */
export function cdcOptionsFor(chunkSize: number): CdcOptions | null {
  const target = Math.floor(chunkSize / CDC_AVG_DIVISOR);
  if (target < CDC_MIN_SIZE) return null;
  const avg = 2 ** Math.floor(Math.log2(target));
  const min = Math.max(CDC_MIN_SIZE, avg / CDC_MIN_DIVISOR);
  return { minSize: min, avgSize: avg, maxSize: chunkSize };
}

export class Chunker {
  private readonly size: number;
  private readonly cdc: CdcChunker | null;

  constructor(chunkSize: number, contentDefined: boolean) {
    this.size = chunkSize;
    const o = contentDefined ? cdcOptionsFor(chunkSize) : null;
    this.cdc = o === null ? null : new CdcChunker(o);
  }

  /** End offsets of the chunks of `data` (empty for empty data); the last is data.length. */
  ends(data: Uint8Array): number[] {
    const n = data.length;
    const out: number[] = [];
    if (this.cdc === null) {
      for (let e = this.size; e < n; e += this.size) out.push(e);
      if (n > 0) out.push(n);
      return out;
    }
    for (let at = 0; at < n; at += CDC_FEED_SIZE) {
      for (const e of this.cdc.push(data.subarray(at, Math.min(n, at + CDC_FEED_SIZE)))) out.push(e);
    }
    for (const e of this.cdc.finish()) out.push(e);
    return out;
  }
}
