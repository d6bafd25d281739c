// Frame payloads copied once into kernel memory, so that the frame check
// (FrameReader), the chunk decoder and the raw-hash check (Interpreter) all
// read the same copy in place instead of each copying the payload in again.
// Decoding from the copy the check read also means the bytes decoded are the
// bytes checked, whatever happens to the caller's buffer meanwhile.
//
// A ring in one KernelBuffer: each payload goes after the previous one and a
// ticket says where; once the ring wraps over a payload, its ticket is stale
// and view() returns null (the caller then reads the payload where it lies).
// Views into kernel memory detach when it grows: take view() after anything
// that may allocate kernel memory, and use it before anything else does.
// Memory: at least STAGE_MIN_BYTES, at most twice the largest payload staged.

import { allocBuffer, type KernelBuffer } from "../kernels/wasm.js";

/**
 * The ring holds at least this much: a few default frames (a MAC batch's
 * earlier frames may have gone stale: they are then read where they lie).
 * Measured: a 4 MiB ring decoded no faster and cost 3 MiB more.
 */
export const STAGE_MIN_BYTES = 1 << 20;

/** Where a staged payload lies. */
export interface StageTicket {
  /** The lap of the ring it was written in. */
  lap: number;
  at: number;
  length: number;
}

export class PayloadStage {
  private buf: KernelBuffer | null = null;
  /** Where the next payload goes, and the lap of the ring (each wrap or new buffer starts one). */
  private pos = 0;
  private lap = 0;

  /** Copies `payload` into the ring; returns its ticket. May grow kernel memory. */
  put(payload: Uint8Array): StageTicket {
    const n = payload.length;
    if (this.buf === null || this.buf.length < 2 * n) {
      this.buf?.free();
      this.buf = allocBuffer(Math.max(STAGE_MIN_BYTES, 2 * n));
      this.pos = 0;
      this.lap += 2; // tickets of the old buffer are stale
    } else if (this.pos + n > this.buf.length) {
      this.pos = 0;
      this.lap++;
    }
    const at = this.pos;
    this.buf.view(at, at + n).set(payload);
    this.pos = at + n;
    return { lap: this.lap, at, length: n };
  }

  /** The staged copy (a view of kernel memory), or null once the ring has written over it. */
  view(t: StageTicket): Uint8Array | null {
    if (this.buf === null) return null;
    const live = t.lap === this.lap || (t.lap === this.lap - 1 && t.at >= this.pos);
    return live ? this.buf.view(t.at, t.at + t.length) : null;
  }

  /** Frees the ring (every ticket goes stale); put() makes a new one. */
  dispose(): void {
    this.buf?.free();
    this.buf = null;
    this.lap += 2;
    this.pos = 0;
  }
}
