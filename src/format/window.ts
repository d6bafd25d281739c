// The dedup window's bookkeeping without the bytes (FORMAT.md §6.1), for
// verification without decompression: which ordinals are live and their raw
// lengths. Same eviction rule as codec/dedup.ts (tests check they agree).

import { type DedupWindow, dedupCost } from "../codec/dedup.js";

export class WindowTracker {
  readonly windowBytes: number;
  oldest = 0;
  next = 0;
  private bytes = 0;
  private lengths: number[] = [];
  private head = 0;

  constructor(windowBytes: number) {
    this.windowBytes = windowBytes;
  }

  /** The bookkeeping of a decoder's window as it stands: the same live ordinals, lengths and cost. */
  static of(w: DedupWindow): WindowTracker {
    const t = new WindowTracker(w.windowBytes);
    t.oldest = w.oldest;
    t.next = w.next;
    t.bytes = w.bytes;
    for (let o = w.oldest; o < w.next; o++) t.lengths.push(w.get(o).length);
    return t;
  }

  add(length: number): number {
    const ordinal = this.next++;
    const cost = dedupCost(length);
    if (cost > this.windowBytes) {
      this.lengths = [];
      this.head = 0;
      this.bytes = 0;
      this.oldest = this.next;
      return ordinal;
    }
    this.lengths.push(length);
    this.bytes += cost;
    while (this.bytes > this.windowBytes) {
      this.bytes -= dedupCost(this.lengths[this.head++]);
      this.oldest++;
    }
    if (this.head >= 1024 && this.head * 2 >= this.lengths.length) {
      this.lengths = this.lengths.slice(this.head);
      this.head = 0;
    }
    return ordinal;
  }

  /** Raw length of a live ordinal; -1 if never recorded, -2 if dropped. */
  lengthOf(ordinal: number): number {
    if (ordinal < 0 || ordinal >= this.next) return -1;
    if (ordinal < this.oldest) return -2;
    return this.lengths[this.head + (ordinal - this.oldest)];
  }
}
