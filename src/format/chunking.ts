// Where the encoder cuts a transaction into chunks: fixed-size pieces, or with
// dedup on, content-defined chunks (FastCDC-style, kernels/chunk.ts) so data
// shifted between phases still lines up. Chunks never cross a transaction.
//
// Dedup chunks are small (DEDUP_AVG_SIZE on average) so that a changed page
// costs only the chunks around it, and runs of zero bytes are cut out exactly
// (they become ZERO chunks): a chunk that reached into a zero run would
// otherwise grow to the largest size and be lost with any change next to it.
// Both cuts depend on the bytes only, never on their offsets.

import { CDC_MIN_SIZE, CdcChunker, type CdcOptions } from "../kernels/chunk.js";
import { zeroPageMap } from "../kernels/zero.js";

/** Content-defined chunks average about this many bytes... */
const DEDUP_AVG_SIZE = 2048;
/** ...or chunkSize / CDC_AVG_DIVISOR when smaller (rounded down to a power of two)... */
const CDC_AVG_DIVISOR = 4;
/** ...and are at least a quarter of that average. */
const CDC_MIN_DIVISOR = 4;
/** The content-defined chunker is fed this much of a transaction at a time (bounds kernel scratch). */
const CDC_FEED_SIZE = 4 << 20;
/** Zero runs are found through all-zero windows of this size (aligned to the transaction)... */
export const ZERO_RUN_WINDOW = 512;
/** ...a run covering this many whole windows is cut out, extended to its exact first and last zero byte. */
const ZERO_RUN_WINDOWS = 2;

/** Bytes the chunker reads, possibly in kernel memory: ask for a view again after anything that may allocate there. */
export interface ByteSource {
  readonly length: number;
  view(start: number, end: number): Uint8Array;
  /** A buffer the encoder reuses for the next transaction (of any device): read it without yielding. */
  readonly shared?: boolean;
}

/** A plain array as a ByteSource. */
export function arraySource(data: Uint8Array): ByteSource {
  return { length: data.length, view: (start, end) => data.subarray(start, end) };
}

/** CDC parameters for chunks of at most `chunkSize`, or null when chunks that small must be fixed. */
function cdcOptionsFor(chunkSize: number): CdcOptions | null {
  const target = Math.min(DEDUP_AVG_SIZE, Math.floor(chunkSize / CDC_AVG_DIVISOR));
  if (target < CDC_MIN_SIZE) return null;
  const avg = 2 ** Math.floor(Math.log2(target));
  const min = Math.max(CDC_MIN_SIZE, avg / CDC_MIN_DIVISOR);
  return { minSize: min, avgSize: avg, maxSize: chunkSize };
}

/**
 * Runs of zero bytes covering ZERO_RUN_WINDOWS whole windows, as [start, end)
 * pairs in order, extended to the exact extent of the zeros.
 */
export function zeroRuns(src: ByteSource): number[] {
  const n = src.length;
  const runs: number[] = [];
  if (n < ZERO_RUN_WINDOW * ZERO_RUN_WINDOWS) return runs;
  const map = zeroPageMap(src.view(0, n), ZERO_RUN_WINDOW);
  const windows = Math.floor(n / ZERO_RUN_WINDOW); // whole windows only
  let w = 0;
  while (w < windows) {
    if (map[w] === 0) {
      w++;
      continue;
    }
    let e = w;
    while (e < windows && map[e] !== 0) e++;
    if (e - w >= ZERO_RUN_WINDOWS) {
      let start = w * ZERO_RUN_WINDOW;
      let end = e * ZERO_RUN_WINDOW;
      // The windows around are not all zero: find where the zeros really start and end.
      const before = src.view(Math.max(0, start - ZERO_RUN_WINDOW), start);
      let k = before.length;
      while (k > 0 && before[k - 1] === 0) k--;
      start -= before.length - k;
      const after = src.view(end, Math.min(n, end + ZERO_RUN_WINDOW));
      let j = 0;
      while (j < after.length && after[j] === 0) j++;
      end += j;
      runs.push(start, end);
    }
    w = e;
  }
  return runs;
}

export class Chunker {
  private readonly size: number;
  private readonly cdc: CdcChunker | null;

  constructor(chunkSize: number, contentDefined: boolean) {
    this.size = chunkSize;
    const o = contentDefined ? cdcOptionsFor(chunkSize) : null;
    this.cdc = o === null ? null : new CdcChunker(o);
  }

  /** True when chunks are content-defined. */
  get contentDefined(): boolean {
    return this.cdc !== null;
  }

  /** End offsets of the chunks of `data` (empty for empty data); the last is data.length. */
  ends(data: Uint8Array | ByteSource): number[] {
    const src = data instanceof Uint8Array ? arraySource(data) : data;
    const n = src.length;
    if (this.cdc === null) return this.fixedEnds(n);
    const out: number[] = [];
    const runs = zeroRuns(src);
    let at = 0;
    for (let r = 0; r < runs.length; r += 2) {
      const start = runs[r];
      const end = runs[r + 1];
      this.contentDefinedEnds(src, at, start, out);
      this.zeroRunEnds(start, end, out);
      at = end;
    }
    this.contentDefinedEnds(src, at, n, out);
    return out;
  }

  /** End offsets of fixed chunks of chunkSize over n bytes (the last may be shorter; none for n = 0). */
  fixedEnds(n: number): number[] {
    const out: number[] = [];
    for (let e = this.size; e < n; e += this.size) out.push(e);
    if (n > 0) out.push(n);
    return out;
  }

  /** Chunk ends of a zero run [start, end): pieces of at most chunkSize. */
  zeroRunEnds(start: number, end: number, out: number[]): void {
    for (let e = start + this.size; e < end; e += this.size) out.push(e);
    out.push(end);
  }

  /** Content-defined chunk ends of src[from, to), restarting the chunker at `from` (content-defined mode only). */
  contentDefinedEnds(src: ByteSource, from: number, to: number, out: number[]): void {
    const cdc = this.cdc!;
    for (let at = from; at < to; at += CDC_FEED_SIZE) {
      for (const e of cdc.push(src.view(at, Math.min(to, at + CDC_FEED_SIZE)))) out.push(from + e);
    }
    for (const e of cdc.finish()) out.push(from + e);
  }
}
