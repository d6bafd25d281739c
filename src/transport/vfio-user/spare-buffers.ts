// Spare message buffers, reused. Allocating a fresh 1 MiB buffer per
// message costs more than the socket transfer itself (page faults, zeroing,
// GC), so large buffers are handed back here once the socket has flushed
// them or the handler is done, and taken again for the next message.

/** Buffers below this size are simply allocated. */
export const SPARE_MIN_SIZE = 64 << 10;
/** Free buffers kept per SpareBuffers. */
export const SPARE_MAX_FREE = 8;

/** Large message buffers handed back and taken again (see above); small ones are plain allocations. */
export class SpareBuffers {
  private readonly free: ArrayBuffer[] = [];
  private readonly mine = new WeakSet<ArrayBuffer>();

  /** A buffer of exactly `n` bytes (contents undefined). */
  take(n: number): Uint8Array {
    if (n < SPARE_MIN_SIZE) return new Uint8Array(n);
    for (let i = this.free.length - 1; i >= 0; i--) {
      const ab = this.free[i];
      if (ab.byteLength >= n) {
        this.free.splice(i, 1);
        return new Uint8Array(ab, 0, n);
      }
    }
    const ab = new ArrayBuffer(n);
    this.mine.add(ab);
    return new Uint8Array(ab, 0, n);
  }

  /** Returns a buffer from take(); anything else is ignored. */
  give(b: Uint8Array): void {
    const ab = b.buffer as ArrayBuffer;
    if (!this.mine.has(ab) || this.free.includes(ab)) return;
    if (this.free.length >= SPARE_MAX_FREE) {
      // Keep the largest buffers.
      let min = 0;
      for (let i = 1; i < this.free.length; i++) if (this.free[i].byteLength < this.free[min].byteLength) min = i;
      if (this.free[min].byteLength >= ab.byteLength) return;
      this.free.splice(min, 1);
    }
    this.free.push(ab);
  }
}
