// Streaming XXH3-64 over small fixed-size records (device digest records,
// frames-digest entries): records are batched so the kernel is called once
// per RECORD_BATCH bytes, not once per record.

import { Xxh3 } from "../kernels/xxh3.js";

/** Bytes of records hashed per kernel call. */
const RECORD_BATCH = 16 << 10;

/** First batch buffer; it doubles up to RECORD_BATCH (short streams stay cheap). */
const FIRST_BATCH = 256;

export class RecordHasher {
  private buf = new Uint8Array(FIRST_BATCH);
  private dv = new DataView(this.buf.buffer);
  private len = 0;
  private hasher: Xxh3 | null = null;

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    if (this.buf.length < RECORD_BATCH) {
      const b = new Uint8Array(this.buf.length * 2);
      b.set(this.buf.subarray(0, this.len));
      this.buf = b;
      this.dv = new DataView(b.buffer);
    } else this.flush();
  }

  private flush(): void {
    if (this.len === 0) return;
    this.hasher ??= new Xxh3();
    this.hasher.update(this.buf.subarray(0, this.len));
    this.len = 0;
  }

  /** Adds a device digest record: raw_hash u64, raw_length u32, transaction u32. */
  chunk(rawHash: bigint, rawLength: number, transaction: number): void {
    this.room(16);
    this.dv.setBigUint64(this.len, rawHash, true);
    this.dv.setUint32(this.len + 8, rawLength, true);
    this.dv.setUint32(this.len + 12, transaction >>> 0, true);
    this.len += 16;
  }

  /** Adds one u64 (a frame's payload check). */
  u64(v: bigint): void {
    this.room(8);
    this.dv.setBigUint64(this.len, v, true);
    this.len += 8;
  }

  /** The digest so far (the hasher keeps going). */
  digest(): bigint {
    this.flush();
    this.hasher ??= new Xxh3();
    return this.hasher.digest();
  }

  /** Releases the kernel state. */
  free(): void {
    this.hasher?.free();
    this.hasher = null;
  }
}
