// Frame layer (FORMAT.md §4): header(16) ‖ payload ‖ payload check(8) ‖ [tag(16)].
// FrameWriter seals frames the encoder lays out in its own buffers; FrameReader
// cuts frames out of input pushed in any split, checking header CRC, sequence,
// length limit and payload check, with at most one frame buffered.

import { MigstreamError } from "../errors.js";
import { xxh3_64 } from "../kernels/xxh3.js";
import { view } from "./bytes.js";
import {
  FRAME_CHECK_SIZE,
  FRAME_HEADER_SIZE,
  FRAME_STREAM_END,
  frameName,
  HEADER_SIZE,
  MAC_AES_256_GCM,
  MAC_NONE,
  MAC_TAG_SIZE,
  MAX_FRAMES,
} from "./constants.js";
import { crcSmall } from "./crc.js";
import { checkMagic, parseHeader, type StreamHeader } from "./header.js";
import type { DecoderLimits } from "./limits.js";
import type { PayloadStage, StageTicket } from "./stage.js";

/** Seed of a frame's payload check: stream_seed XOR (length | header_crc << 32). */
export function payloadSeed(streamSeed: bigint, length: number, headerCrc: number): bigint {
  return streamSeed ^ (BigInt(length) | (BigInt(headerCrc) << 32n));
}

/** Where a frame's MAC tag goes: the tag of bytes[start..end) is written at end. */
export interface TagSlot {
  buf: Uint8Array;
  start: number;
  end: number;
}

export class FrameWriter {
  readonly header: StreamHeader;
  readonly tagSize: number;
  private readonly crc: number;
  /** seq of the next frame. */
  seq = 0;
  /** Frames sealed since the last takeTags(), whose tags are still zero. */
  private tags: TagSlot[] = [];
  /** Called with each frame's payload check, in order (the frames digest). */
  onCheck: ((check: bigint) => void) | null = null;

  constructor(header: StreamHeader) {
    this.header = header;
    this.tagSize = header.macAlg === MAC_NONE ? 0 : MAC_TAG_SIZE;
    this.crc = Number(header.check & 0xffffffffn);
  }

  /** Bytes a frame with this payload length occupies. */
  size(length: number): number {
    return FRAME_HEADER_SIZE + length + FRAME_CHECK_SIZE + this.tagSize;
  }

  /**
   * Seals the frame at out[at..]: its payload is already at out[at+16 ..
   * at+16+length). Writes header, CRC and payload check; returns the frame end
   * (after the room for its tag). With `track` false the caller records where
   * the tag goes (the frame is sealed in a scratch buffer and copied out).
   */
  seal(out: Uint8Array, at: number, type: number, device: number, length: number, track = true): number {
    if (this.seq > MAX_FRAMES) throw new MigstreamError("LIMIT", `a stream holds at most ${MAX_FRAMES + 1} frames`);
    if (length > this.header.maxFrame) {
      throw new MigstreamError(
        "INTERNAL",
        `${frameName(type)} frame of ${length} bytes exceeds declared max_frame ${this.header.maxFrame}`,
      );
    }
    const dv = view(out);
    out[at] = type;
    out[at + 1] = 0;
    dv.setUint16(at + 2, device, true);
    dv.setUint32(at + 4, this.seq, true);
    dv.setUint32(at + 8, length, true);
    const hcrc = crcSmall(out, at, at + 12, this.crc);
    dv.setUint32(at + 12, hcrc, true);
    const p = at + FRAME_HEADER_SIZE;
    const check = xxh3_64(out.subarray(p, p + length), payloadSeed(this.header.check, length, hcrc));
    dv.setBigUint64(p + length, check, true);
    const end = p + length + FRAME_CHECK_SIZE;
    if (this.tagSize > 0 && track) this.tags.push({ buf: out, start: at, end });
    this.onCheck?.(check);
    this.seq++;
    return end + this.tagSize;
  }

  /** Tag slots of frames sealed since the last call. */
  takeTags(): TagSlot[] {
    const t = this.tags;
    this.tags = [];
    return t;
  }
}

/**
 * CHECKSUM unless a frame's payload check matches its payload (FORMAT.md §4.2);
 * `bytes`: where the payload's bytes are read (a staged copy), default f.payload.
 */
export function checkPayload(f: Frame, h: StreamHeader, bytes: Uint8Array = f.payload): void {
  const hcrc = view(f.bytes).getUint32(12, true);
  if (xxh3_64(bytes, payloadSeed(h.check, f.length, hcrc)) !== f.check) {
    throw new MigstreamError("CHECKSUM", `${frameName(f.type)} payload check mismatch`, {
      offset: f.offset,
      frame: f.seq,
      device: f.device,
      field: "payload_check",
    });
  }
}

/**
 * One checked frame. Views stay valid: the reader never reuses their memory.
 * For a sealed frame (mac_alg 2) `payload` and `check` are the ciphertext
 * until it is opened; then they hold the plaintext (new memory).
 */
export interface Frame {
  type: number;
  device: number;
  seq: number;
  length: number;
  /** Stream offset of the frame's first byte. */
  offset: number;
  /** Header ‖ payload ‖ payload check: what the MAC covers. */
  bytes: Uint8Array;
  payload: Uint8Array;
  check: bigint;
  /** The MAC tag, or null for an unkeyed stream. */
  tag: Uint8Array | null;
  /** Where the reader's PayloadStage holds the checked copy of `payload`, if it staged it. */
  staged?: StageTicket | null;
}

const EMPTY = new Uint8Array(0);
/** Spare gather buffers a FrameReader keeps for reuse (bytes, at most). */
export const GATHER_SPARE_BYTES = 16 << 20;

export class FrameReader {
  private readonly limits: Required<DecoderLimits>;
  private readonly keyed: boolean;
  header: StreamHeader | null = null;
  /** The 64 header bytes (a copy), once read. */
  headerBytes: Uint8Array | null = null;
  private crc = 0;
  private tagSize = 0;
  /** mac_alg 2: payload checks are checked after the frames are opened. */
  private sealed = false;
  /** seq the next frame must carry. */
  private seq = 0;
  /** Current input piece and read position in it. */
  private input: Uint8Array = EMPTY;
  private pos = 0;
  /** Bytes of the current unit gathered from earlier pieces (null: none). */
  private part: Uint8Array | null = null;
  private partLen = 0;
  /** Validated header of the frame being gathered: its total size, or 0. */
  private total = 0;
  /** Stream offset of the current unit's first byte. */
  private unitOffset = 0;
  /** Set once the STREAM_END frame was read. */
  private ended = false;
  /** Gather buffers of frames handed out since the last release(), and spare ones for reuse. */
  private lent: Uint8Array[] = [];
  private spare: Uint8Array[] = [];
  private spareBytes = 0;
  /** Where payloads are copied to be checked (and then decoded) in place, or null: checked where they lie. */
  readonly stage: PayloadStage | null;

  constructor(limits: Required<DecoderLimits>, keyed: boolean, stage: PayloadStage | null = null) {
    this.limits = limits;
    this.keyed = keyed;
    this.stage = stage;
  }

  /** Stream bytes consumed so far (complete units plus a partial one). */
  get offset(): number {
    return this.unitOffset + this.partLen;
  }

  get done(): boolean {
    return this.ended;
  }

  /** Sets the next input piece; call `next()` until it returns null before pushing again. */
  push(data: Uint8Array): void {
    if (this.pos < this.input.length) {
      throw new MigstreamError(
        "USAGE",
        "the previous write was not fully consumed (iterate its events to the end first)",
      );
    }
    this.input = data;
    this.pos = 0;
  }

  /**
   * The next unit: "header" once the stream header is parsed, then frames.
   * null when the input is exhausted mid-unit.
   */
  next(): Frame | "header" | null {
    if (this.pos >= this.input.length) return null;
    if (this.ended) {
      throw new MigstreamError("FORMAT", "data after the end of the stream", { offset: this.unitOffset });
    }
    if (this.header === null) return this.readHeader() ? "header" : null;
    return this.readFrame();
  }

  /** Ends the input: TRUNCATED unless the stream is complete. */
  finish(): void {
    if (this.ended) return;
    const at = this.offset;
    if (at === 0) throw new MigstreamError("TRUNCATED", "the stream is empty", { offset: 0 });
    const frame = this.total > 0 ? this.seq - 1 : this.seq;
    const what =
      this.header === null
        ? "in the stream header"
        : this.partLen > 0
          ? `inside frame ${frame}`
          : `before frame ${frame} (no STREAM_END)`;
    throw new MigstreamError("TRUNCATED", `the stream ends ${what}, after ${at} bytes`, { offset: at, frame });
  }

  /**
   * The frames handed out so far are no longer needed (their events were
   * delivered): the buffers they were gathered in may be reused. A frame
   * being gathered keeps its buffer.
   */
  release(): void {
    for (const b of this.lent) {
      if (b === this.part) continue;
      if (this.spareBytes + b.length > GATHER_SPARE_BYTES) continue;
      this.spare.push(b);
      this.spareBytes += b.length;
    }
    this.lent = this.part !== null && this.lent.includes(this.part) ? [this.part] : [];
  }

  /** A buffer of at least `n` bytes to gather a unit in: the smallest spare one that fits, else a new one. */
  private gatherBuffer(n: number): Uint8Array {
    let best = -1;
    for (let i = 0; i < this.spare.length; i++) {
      if (this.spare[i].length >= n && (best < 0 || this.spare[i].length < this.spare[best].length)) best = i;
    }
    // New buffers are rounded up to a power of two, so frames of similar sizes can share them.
    const b = best < 0 ? new Uint8Array(n <= 1 ? n : 2 ** Math.ceil(Math.log2(n))) : this.spare.splice(best, 1)[0];
    if (best >= 0) this.spareBytes -= b.length;
    this.lent.push(b);
    return b;
  }

  /** Gathers `need` bytes of the current unit; returns them when complete. */
  private gather(need: number): Uint8Array | null {
    const avail = this.input.length - this.pos;
    if (this.partLen === 0 && avail >= need) {
      const v = this.input.subarray(this.pos, this.pos + need);
      this.pos += need;
      return v;
    }
    if (this.part === null || this.part.length < need) {
      const p = this.gatherBuffer(need);
      if (this.part !== null) p.set(this.part.subarray(0, this.partLen));
      this.part = p;
    }
    const n = Math.min(need - this.partLen, avail);
    this.part.set(this.input.subarray(this.pos, this.pos + n), this.partLen);
    this.partLen += n;
    this.pos += n;
    if (this.partLen < need) return null;
    const v = this.part.subarray(0, need);
    this.part = null;
    this.partLen = 0;
    return v;
  }

  private readHeader(): boolean {
    // Early BAD_MAGIC on whatever prefix is there.
    const start = this.partLen;
    if (start < 8) {
      const have = this.part === null ? EMPTY : this.part.subarray(0, start);
      const more = this.input.subarray(this.pos, this.pos + Math.min(8 - start, this.input.length - this.pos));
      const probe = new Uint8Array(have.length + more.length);
      probe.set(have);
      probe.set(more, have.length);
      checkMagic(probe);
    }
    const b = this.gather(HEADER_SIZE);
    if (b === null) return false;
    const h = parseHeader(b, this.limits, this.keyed);
    this.header = h;
    this.headerBytes = b.slice();
    this.crc = Number(h.check & 0xffffffffn);
    this.tagSize = h.macAlg === MAC_NONE ? 0 : MAC_TAG_SIZE;
    this.sealed = h.macAlg === MAC_AES_256_GCM;
    this.unitOffset = HEADER_SIZE;
    return true;
  }

  private readFrame(): Frame | null {
    const h = this.header!;
    if (this.total === 0) {
      // Peek the 16 header bytes without consuming them from the unit.
      const avail = this.input.length - this.pos;
      let hb: Uint8Array;
      if (this.partLen === 0 && avail >= FRAME_HEADER_SIZE) {
        hb = this.input.subarray(this.pos, this.pos + FRAME_HEADER_SIZE);
      } else {
        const got = this.gather(FRAME_HEADER_SIZE);
        if (got === null) return null;
        // Keep the 16 bytes as the start of the unit.
        this.part = got.slice();
        this.partLen = FRAME_HEADER_SIZE;
        hb = this.part;
      }
      this.total = this.checkFrameHeader(hb);
    }
    const b = this.gather(this.total);
    if (b === null) return null;
    const total = this.total;
    this.total = 0;
    const offset = this.unitOffset;
    this.unitOffset += total;
    const dv = view(b);
    const length = dv.getUint32(8, true);
    const payload = b.subarray(FRAME_HEADER_SIZE, FRAME_HEADER_SIZE + length);
    const check = dv.getBigUint64(FRAME_HEADER_SIZE + length, true);
    const seq = dv.getUint32(4, true);
    const type = b[0];
    const end = FRAME_HEADER_SIZE + length + FRAME_CHECK_SIZE;
    const frame: Frame = {
      type,
      device: dv.getUint16(2, true),
      seq,
      length,
      offset,
      bytes: b.subarray(0, end),
      payload,
      check,
      tag: this.tagSize > 0 ? b.subarray(end, end + this.tagSize) : null,
      staged: null,
    };
    // A sealed frame's payload and check are ciphertext: checked once opened (aead.ts).
    if (!this.sealed) {
      if (this.stage === null) checkPayload(frame, h);
      else {
        frame.staged = this.stage.put(payload);
        checkPayload(frame, h, this.stage.view(frame.staged)!);
      }
    }
    if (type === FRAME_STREAM_END) this.ended = true;
    return frame;
  }

  /** Validates a frame header; returns the frame's total size. */
  private checkFrameHeader(hb: Uint8Array): number {
    const dv = view(hb);
    const offset = this.unitOffset;
    if (crcSmall(hb, 0, 12, this.crc) !== dv.getUint32(12, true)) {
      throw new MigstreamError("CHECKSUM", "frame header CRC mismatch", {
        offset,
        frame: this.seq,
        field: "header_crc",
      });
    }
    const type = hb[0];
    const seq = dv.getUint32(4, true);
    const device = dv.getUint16(2, true);
    if (seq !== this.seq) {
      const what = seq > this.seq ? `${seq - this.seq} frame(s) missing` : "a frame repeated or moved";
      throw new MigstreamError("SEQUENCE", `expected frame ${this.seq}, found frame ${seq} (${what})`, {
        offset,
        frame: seq,
        device,
        field: "seq",
      });
    }
    if (hb[1] !== 0)
      throw new MigstreamError("FORMAT", `frame flags 0x${hb[1].toString(16)} are reserved`, {
        offset,
        frame: seq,
        device,
        field: "flags",
      });
    const length = dv.getUint32(8, true);
    if (length > this.header!.maxFrame) {
      throw new MigstreamError(
        "LIMIT",
        `${frameName(type)} frame of ${length} bytes exceeds declared max_frame ${this.header!.maxFrame}`,
        {
          offset,
          frame: seq,
          device,
          field: "length",
        },
      );
    }
    this.seq++;
    return FRAME_HEADER_SIZE + length + FRAME_CHECK_SIZE + this.tagSize;
  }
}
