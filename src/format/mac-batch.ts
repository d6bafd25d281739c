// Frames in MAC-verified batches, for StreamDecoder's asynchronous path (with
// or without a pool). A batch's tags are computed (or its sealed frames
// opened) concurrently and all of them are checked before any of its frames
// is handed out, so a decoder never interprets, let alone releases, bytes
// whose MAC has not been verified. Unkeyed streams take the same path without
// the check, a frame at a time: each frame is taken before the next is read,
// so its payload is still in the reader's PayloadStage ring when decoded
// (a batch of frames could stage more than the ring holds).

import { type BindingPolicy, bindingFor } from "./binding.js";
import type { Frame, FrameReader } from "./frames.js";
import { type Protection, protectionFor } from "./protection.js";

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
  private readonly policy: BindingPolicy;
  private protection: Protection | null = null;

  /** `key`: the checked shared key of a keyed stream, else null; `policy`: which bindings this reader accepts. */
  constructor(reader: FrameReader, key: Uint8Array | null, policy: BindingPolicy) {
    this.reader = reader;
    this.key = key;
    this.policy = policy;
  }

  /**
   * "header" once the stream header was read (and the stream's frame key
   * derived from it), else the next batch: up to MAC_BATCH_FRAMES frames (one for an unkeyed stream), fewer
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
      const most = this.key === null ? 1 : MAC_BATCH_FRAMES;
      while (frames.length < most && bytes < MAC_BATCH_BYTES) {
        const u = this.reader.next();
        if (u === null) {
          more = false;
          break;
        }
        if (u === "header") {
          // The binding rules come first: a stream this reader must not authenticate fails before any key is made.
          const h = this.reader.header!;
          const binding = bindingFor(h, this.policy);
          if (this.key !== null) this.protection = await protectionFor(this.key, h, this.reader.headerBytes!, binding);
          return u;
        }
        frames.push(u);
        bytes += u.bytes.length;
      }
    } catch (e) {
      stop = e;
    }
    if (this.protection !== null && frames.length > 0) {
      try {
        await this.protection.open(frames);
      } catch (e) {
        return { frames: [], stop: e, more };
      }
    }
    return { frames, stop, more };
  }
}
