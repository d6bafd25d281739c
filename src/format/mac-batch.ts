// Frames in MAC-verified batches, for StreamDecoder's asynchronous path (with
// or without a pool). A batch's tags are computed concurrently and all of them
// are checked before any of its frames is handed out, so a decoder never
// interprets, let alone releases, bytes whose MAC has not been verified.
// Unkeyed streams take the same path without the check.

import type { Frame, FrameReader } from "./frames.js";
import { frameKey, verifyTags } from "./mac.js";

/** Frames verified together (their MACs are computed concurrently). */
export const MAC_BATCH_FRAMES = 32;
/** ...or fewer, once their bytes reach this. */
export const MAC_BATCH_BYTES = 8 << 20;

/** Frames read by one MacBatchReader.next(). */
export interface MacBatch {
  /** Checked frames, in stream order; with a key, every one's MAC verified. */
  frames: Frame[];
  /** The error to throw once `frames` are handed out (the unit after them is bad, or a tag failed and `frames` is empty); null if none. */
  stop: unknown;
  /** False when the input pushed so far is used up. */
  more: boolean;
}

export class MacBatchReader {
  private readonly reader: FrameReader;
  private readonly key: Uint8Array | null;
  private macKey: CryptoKey | null = null;

  /** `key`: the checked shared key of a keyed stream, else null. */
  constructor(reader: FrameReader, key: Uint8Array | null) {
    this.reader = reader;
    this.key = key;
  }

  /**
   * "header" once the stream header was read (and the stream's frame key
   * derived from it), else the next batch: up to MAC_BATCH_FRAMES frames, fewer
   * once they hold MAC_BATCH_BYTES or the input runs out. When any tag in
   * the batch is wrong, none of its frames comes out: `stop` is the MAC error.
   * Never throws.
   */
  async next(): Promise<MacBatch | "header"> {
    const frames: Frame[] = [];
    let bytes = 0;
    let stop: unknown = null;
    let more = true;
    try {
      while (frames.length < MAC_BATCH_FRAMES && bytes < MAC_BATCH_BYTES) {
        const u = this.reader.next();
        if (u === null) {
          more = false;
          break;
        }
        if (u === "header") {
          if (this.key !== null) this.macKey = await frameKey(this.key, this.reader.headerBytes!);
          return u;
        }
        frames.push(u);
        bytes += u.bytes.length;
      }
    } catch (e) {
      stop = e;
    }
    if (this.macKey !== null && frames.length > 0) {
      try {
        await verifyTags(this.macKey, frames);
      } catch (e) {
        return { frames: [], stop: e, more };
      }
    }
    return { frames, stop, more };
  }
}
