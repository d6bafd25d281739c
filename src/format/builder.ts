// Synchronous frame assembly for the encoder (FORMAT.md §4–§5): lays frames
// out in output blocks, keeps each device's counts and digest and the stream
// totals, and hands out finished blocks in stream order. No I/O, no coding.

import type { CodedChunk } from "../codec/coder.js";
import { CODEC_DEDUP_REF, CODEC_NAMES, CODEC_ZERO } from "../codec/ids.js";
import { MigstreamError } from "../errors.js";
import type { MigrationProtocol } from "../protocol/types.js";
import {
  CHUNK_HEADER_SIZE,
  DEVICE_END_PAYLOAD_SIZE,
  DEVICE_PROTOCOL_PAYLOAD_SIZE,
  FRAME_CHUNK,
  FRAME_DEVICE_BEGIN,
  FRAME_DEVICE_END,
  FRAME_DEVICE_PROTOCOL,
  FRAME_HEADER_SIZE,
  FRAME_PHASE,
  FRAME_STREAM_END,
  FRAME_TRANSACTION,
  PHASE_PAYLOAD_SIZE,
  STREAM_END_PAYLOAD_SIZE,
  TRANSACTION_PAYLOAD_SIZE,
} from "./constants.js";
import { RecordHasher } from "./digest.js";
import { FrameWriter, type TagSlot } from "./frames.js";
import { buildHeader, type HeaderFields, type StreamHeader } from "./header.js";
import {
  deviceBeginSize,
  writeChunkHeader,
  writeDeviceBegin,
  writeDeviceEnd,
  writeDeviceProtocol,
  writePhase,
  writeStreamEnd,
  writeTransaction,
} from "./payloads.js";
import type { DeviceTrailer, StreamTrailer } from "./types.js";

/** Where a CHUNK frame's coded payload starts: after the frame and chunk headers. */
export const CHUNK_PAYLOAD_OFFSET = FRAME_HEADER_SIZE + CHUNK_HEADER_SIZE;

/** Frames are assembled in a reused block of this size (or of the largest frame) before they are written. */
const OUTPUT_BLOCK_SIZE = 1 << 20;

/** A scratch buffer a frame is built in; `view` gives a fresh view of it. */
export interface ScratchFrame {
  view(start: number, end: number): Uint8Array;
}

/** Encoder statistics (also the public `StreamEncoder.stats`). */
export interface EncoderStats {
  frames: number;
  rawBytes: number;
  codedBytes: number;
  zeroBytes: number;
  dedupBytes: number;
  chunksByCodec: Record<string, number>;
  /** Bytes of stream produced so far (header and frames, including unwritten ones). */
  streamBytes: number;
}

interface DeviceCounts {
  frames: number;
  transactions: number;
  chunks: number;
  rawBytes: number;
  codedBytes: number;
  digest: RecordHasher;
  /** Index of the current transaction (the last TRANSACTION frame). */
  txn: number;
}

export class FrameBuilder {
  readonly header: StreamHeader;
  readonly headerBytes: Uint8Array;
  readonly stats: EncoderStats = {
    frames: 0,
    rawBytes: 0,
    codedBytes: 0,
    zeroBytes: 0,
    dedupBytes: 0,
    chunksByCodec: {},
    streamBytes: 0,
  };
  private readonly fw: FrameWriter;
  private readonly framesDigest = new RecordHasher();
  private readonly devices = new Map<number, DeviceCounts>();
  private deviceCount = 0;
  private totals = { transactions: 0, chunks: 0, rawBytes: 0, codedBytes: 0 };
  private block: Uint8Array;
  private used: number;
  private readonly done: Uint8Array[] = [];
  /** Tag slots of the frames in `done` and in the current block. */
  private readonly doneTags: TagSlot[] = [];
  private blockTags: TagSlot[] = [];

  /** Recycled output blocks (reuse mode); null: every output block is a new array. */
  private readonly pool: Uint8Array[] | null;
  private readonly blockSize: number;

  /**
   * `reuse`: output blocks are handed out as views of assembly blocks and come
   * back through `recycle` once written, instead of being copied into new arrays.
   */
  constructor(fields: HeaderFields, reuse = false, blockSize = OUTPUT_BLOCK_SIZE) {
    this.pool = reuse ? [] : null;
    this.blockSize = blockSize;
    const { bytes, header } = buildHeader(fields);
    this.header = header;
    this.headerBytes = bytes;
    this.fw = new FrameWriter(header);
    this.fw.onCheck = (c) => this.framesDigest.u64(c);
    this.block = new Uint8Array(Math.max(blockSize, bytes.length));
    this.block.set(bytes);
    this.used = bytes.length;
    this.stats.streamBytes = bytes.length;
  }

  /** True when full output blocks wait to be taken. */
  get hasFullBlocks(): boolean {
    return this.done.length > 0;
  }

  /**
   * Takes the output so far in stream order (the current block too when
   * `all`), with the tag slots of its frames (MAC still to be filled in).
   */
  take(all: boolean): { blocks: Uint8Array[]; tags: TagSlot[] } {
    if (all && this.used > 0) this.closeBlock();
    return { blocks: this.done.splice(0), tags: this.doneTags.splice(0) };
  }

  /**
   * Moves the frames assembled so far out of the (reused) assembly block into
   * an output array of exactly their size; the caller may keep that array.
   * A new array per block is the one allocation output needs: allocating
   * fresh large blocks instead costs more than the copy.
   */
  private closeBlock(): void {
    if (this.pool !== null) {
      this.done.push(this.block.subarray(0, this.used));
      for (const t of this.blockTags) this.doneTags.push(t);
      this.blockTags = [];
      this.block = this.pool.pop() ?? new Uint8Array(this.blockSize);
      this.used = 0;
      return;
    }
    const out = this.block.slice(0, this.used);
    this.done.push(out);
    for (const t of this.blockTags) this.doneTags.push({ buf: out, start: t.start, end: t.end });
    this.blockTags = [];
    this.used = 0;
  }

  /** Returns a written output block (reuse mode) to the pool. */
  recycle(out: Uint8Array): void {
    if (this.pool !== null && out.byteOffset === 0 && out.buffer.byteLength >= this.blockSize)
      this.pool.push(new Uint8Array(out.buffer));
  }

  /** Room for a frame with a payload of `length` bytes; returns its offset in `this.block`. */
  private reserve(length: number): number {
    const size = this.fw.size(length);
    if (this.used + size > this.block.length) {
      if (this.used > 0) this.closeBlock();
      if (size > this.block.length) this.block = new Uint8Array(size);
    }
    const at = this.used;
    this.used += size;
    this.stats.streamBytes += size;
    return at;
  }

  private seal(at: number, type: number, device: number, length: number): void {
    this.fw.seal(this.block, at, type, device, length);
    if (this.fw.tagSize > 0) for (const t of this.fw.takeTags()) this.blockTags.push(t);
    this.stats.frames = this.fw.seq;
  }

  private dev(id: number): DeviceCounts {
    const d = this.devices.get(id);
    if (d === undefined) throw new MigstreamError("INTERNAL", `device ${id} is not open in the frame builder`);
    d.frames++;
    return d;
  }

  deviceBegin(id: number, name: Uint8Array, metadata: Uint8Array): void {
    const len = deviceBeginSize(name, metadata);
    const at = this.reserve(len);
    writeDeviceBegin(this.block, at + FRAME_HEADER_SIZE, name, metadata);
    this.seal(at, FRAME_DEVICE_BEGIN, id, len);
    this.devices.set(id, {
      frames: 1,
      transactions: 0,
      chunks: 0,
      rawBytes: 0,
      codedBytes: 0,
      digest: new RecordHasher(),
      txn: -1,
    });
    this.deviceCount++;
  }

  /** DEVICE_PROTOCOL for a v2 device (right after DEVICE_BEGIN). */
  deviceProtocol(id: number, p: MigrationProtocol & { generation: 2 }): void {
    this.dev(id);
    const at = this.reserve(DEVICE_PROTOCOL_PAYLOAD_SIZE);
    writeDeviceProtocol(this.block, at + FRAME_HEADER_SIZE, p);
    this.seal(at, FRAME_DEVICE_PROTOCOL, id, DEVICE_PROTOCOL_PAYLOAD_SIZE);
  }

  phase(id: number, code: number, iteration: number): void {
    this.dev(id);
    const at = this.reserve(PHASE_PAYLOAD_SIZE);
    writePhase(this.block, at + FRAME_HEADER_SIZE, code, iteration);
    this.seal(at, FRAME_PHASE, id, PHASE_PAYLOAD_SIZE);
  }

  transaction(id: number, size: number, chunks: number): void {
    const d = this.dev(id);
    const at = this.reserve(TRANSACTION_PAYLOAD_SIZE);
    writeTransaction(this.block, at + FRAME_HEADER_SIZE, size, chunks);
    this.seal(at, FRAME_TRANSACTION, id, TRANSACTION_PAYLOAD_SIZE);
    d.txn = d.transactions++;
    this.totals.transactions++;
  }

  chunk(id: number, c: CodedChunk): void {
    const d = this.dev(id);
    const coded = c.payload.length;
    const len = CHUNK_HEADER_SIZE + coded;
    const at = this.reserve(len);
    const p = at + FRAME_HEADER_SIZE;
    writeChunkHeader(this.block, p, {
      codec: c.codec,
      level: c.level,
      rawLength: c.rawLength,
      codedLength: coded,
      rawHash: c.hash,
    });
    this.block.set(c.payload, p + CHUNK_HEADER_SIZE);
    this.seal(at, FRAME_CHUNK, id, len);
    this.account(d, c.codec, c.rawLength, coded, c.hash);
  }

  /**
   * A CHUNK frame built in a scratch buffer (kernel memory, where the coder
   * wrote `c.payload`, at CHUNK_PAYLOAD_OFFSET). The frame is sealed there and
   * copied into the output. `frame.view` is asked again after sealing, since
   * hashing may grow kernel memory and detach older views.
   */
  chunkInPlace(id: number, frame: ScratchFrame, c: CodedChunk): void {
    const d = this.dev(id);
    const coded = c.payload.length;
    const len = CHUNK_HEADER_SIZE + coded;
    const size = this.fw.size(len) - this.fw.tagSize;
    const f = frame.view(0, size);
    writeChunkHeader(f, FRAME_HEADER_SIZE, {
      codec: c.codec,
      level: c.level,
      rawLength: c.rawLength,
      codedLength: coded,
      rawHash: c.hash,
    });
    this.fw.seal(f, 0, FRAME_CHUNK, id, len, false);
    this.stats.frames = this.fw.seq;
    const at = this.reserve(len);
    this.block.set(frame.view(0, size), at);
    if (this.fw.tagSize > 0) this.blockTags.push({ buf: this.block, start: at, end: at + size });
    this.account(d, c.codec, c.rawLength, coded, c.hash);
  }

  private account(d: DeviceCounts, codec: number, raw: number, coded: number, hash: bigint): void {
    d.digest.chunk(hash, raw, d.txn);
    d.chunks++;
    d.rawBytes += raw;
    d.codedBytes += coded;
    this.totals.chunks++;
    this.totals.rawBytes += raw;
    this.totals.codedBytes += coded;
    const s = this.stats;
    s.rawBytes += raw;
    s.codedBytes += coded;
    if (codec === CODEC_ZERO) s.zeroBytes += raw;
    if (codec === CODEC_DEDUP_REF) s.dedupBytes += raw;
    const name = CODEC_NAMES[codec];
    s.chunksByCodec[name] = (s.chunksByCodec[name] ?? 0) + 1;
  }

  deviceEnd(id: number): DeviceTrailer {
    const d = this.dev(id);
    const trailer: DeviceTrailer = {
      frames: d.frames,
      transactions: d.transactions,
      chunks: d.chunks,
      rawBytes: d.rawBytes,
      codedBytes: d.codedBytes,
      digest: d.digest.digest(),
    };
    d.digest.free();
    const at = this.reserve(DEVICE_END_PAYLOAD_SIZE);
    writeDeviceEnd(this.block, at + FRAME_HEADER_SIZE, trailer);
    this.seal(at, FRAME_DEVICE_END, id, DEVICE_END_PAYLOAD_SIZE);
    this.devices.delete(id);
    return trailer;
  }

  streamEnd(): StreamTrailer {
    const trailer: StreamTrailer = {
      frames: this.fw.seq,
      devices: this.deviceCount,
      ...this.totals,
      framesDigest: this.framesDigest.digest(),
    };
    const at = this.reserve(STREAM_END_PAYLOAD_SIZE);
    writeStreamEnd(this.block, at + FRAME_HEADER_SIZE, trailer);
    this.seal(at, FRAME_STREAM_END, 0, STREAM_END_PAYLOAD_SIZE);
    this.dispose();
    return trailer;
  }

  /** Releases kernel state (after finishing, or after an error). */
  dispose(): void {
    this.framesDigest.free();
    for (const d of this.devices.values()) d.digest.free();
  }
}
