// The vendor side of one save session: hands the dirty pages of the image
// over in transactions (see records.ts), in page order with wrap-around, runs
// of contiguous dirty pages as one DATA record, a page split across
// transactions when a transaction fills up. In stop-and-copy the last
// transaction carries the END record.

import type { DeviceImage } from "./image.js";
import { PAGE_SIZE } from "./pages.js";
import {
  DATA_RECORD,
  END_RECORD,
  TXN_HEADER,
  writeDataRecordHeader,
  writeEndRecord,
  writeTxnHeader,
} from "./records.js";

/** A prepared buffer: where it is, what it covers, how the user has handled it. */
export interface SaveBuffer {
  seq: number;
  /** Region offset (data_offset) and size (data_size). */
  offset: number;
  size: number;
  /** Pages whose bytes (whole or part) it carries, as [first, last] pairs: dirty again if it is dropped. */
  runs: number[];
  sizeRead: boolean;
  bytesRead: number;
}

export interface FillOptions {
  checksum: boolean;
  /** Digest for the END record (called once, device stopped), or undefined for none. */
  digest?: () => bigint;
}

export class SaveSession {
  seq = 0;
  /** In stop-and-copy (the device is stopped; END still to be sent). */
  stopped: boolean;
  endPending: boolean;
  /** The unacknowledged buffer, if any. */
  buffer: SaveBuffer | null = null;
  cursor = 0;
  /** A page handed over partly: the rest starts at byte `off` of page `page`. */
  partial: { page: number; off: number } | null = null;
  /** The next buffer must say the previous seq may be missing. */
  prevOptional = false;

  constructor(
    readonly image: DeviceImage,
    readonly id: number,
    stopped: boolean,
  ) {
    image.markAll();
    this.stopped = stopped;
    this.endPending = stopped;
  }

  /** pending_bytes: what is left, plus the unacknowledged buffer. */
  pendingBytes(): number {
    const img = this.image;
    let n = img.dirtyCount * PAGE_SIZE;
    if (this.partial) n += img.pageEnd(this.partial.page) - (this.partial.page * PAGE_SIZE + this.partial.off);
    if (this.endPending) n += END_RECORD;
    if (this.buffer) n += this.buffer.size;
    return n;
  }

  /** Fills `section` from byte 0 with the next transaction of at most `capacity` bytes. */
  fill(section: Uint8Array, regionOffset: number, capacity: number, opts: FillOptions): SaveBuffer {
    const img = this.image;
    const limit = capacity;
    const runs: number[] = [];
    let pos = TXN_HEADER;
    while (limit - pos > DATA_RECORD) {
      let s: number;
      let p: number;
      if (this.partial) {
        p = this.partial.page;
        s = p * PAGE_SIZE + this.partial.off;
        this.partial = null;
      } else {
        p = img.nextDirty(this.cursor);
        if (p < 0) break;
        img.take(p);
        s = p * PAGE_SIZE;
      }
      const first = p;
      let last = p;
      const avail = limit - pos - DATA_RECORD;
      let e = img.pageEnd(p);
      // Extend the run over the following dirty pages while it has room.
      while (e - s < avail && e < img.size) {
        const q = e / PAGE_SIZE;
        if (img.dirty[q] === 0) break;
        img.take(q);
        last = q;
        e = img.pageEnd(q);
      }
      let n = e - s;
      if (n > avail) {
        n = avail;
        const cut = s + n;
        const cp = Math.floor(cut / PAGE_SIZE);
        this.partial = { page: cp, off: cut - cp * PAGE_SIZE };
      }
      runs.push(first, last);
      this.cursor = this.partial ? this.partial.page : Math.ceil(e / PAGE_SIZE);
      writeDataRecordHeader(section, pos, n, s);
      section.set(img.bytes.subarray(s, s + n), pos + DATA_RECORD);
      pos += DATA_RECORD + n;
    }
    if (this.endPending && this.partial === null && img.dirtyCount === 0 && limit - pos >= END_RECORD) {
      writeEndRecord(section, pos, { transactions: this.seq + 1, imageSize: img.size, digest: opts.digest?.() });
      this.endPending = false;
      pos += END_RECORD;
    }
    writeTxnHeader(section, 0, this.seq, this.id, pos - TXN_HEADER, opts.checksum, this.prevOptional);
    this.prevOptional = false;
    this.buffer = { seq: this.seq++, offset: regionOffset, size: pos, runs, sizeRead: false, bytesRead: 0 };
    return this.buffer;
  }

  /** The user acknowledged the buffer: it is gone. */
  consume(): SaveBuffer | null {
    const b = this.buffer;
    this.buffer = null;
    return b;
  }

  /**
   * Pre-copy → stop-and-copy. The device is stopped; earlier unconsumed data
   * must not be required: an unacknowledged buffer's pages and a half-sent
   * page become dirty again (the destination may or may not get that buffer).
   */
  toStopCopy(): void {
    const img = this.image;
    if (this.buffer) {
      const r = this.buffer.runs;
      for (let i = 0; i < r.length; i += 2) for (let p = r[i]; p <= r[i + 1]; p++) img.mark(p);
      this.buffer = null;
      this.prevOptional = true;
    }
    if (this.partial) {
      img.mark(this.partial.page);
      this.partial = null;
    }
    this.cursor = 0;
    this.stopped = true;
    this.endPending = true;
  }
}
