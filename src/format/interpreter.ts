// Frame semantics on the decoding side (FORMAT.md §5–§6): device, phase and
// transaction rules, chunk decoding and raw-hash checks (or, verifying only,
// the codec rules and a lengths-only dedup window), trailers and digests.
// Takes frames that already passed the frame layer's checks and MAC, in order.

import { DEDUP_REF_SIZE, DedupWindow, decodeDedupRef, resolveDedupRef } from "../codec/dedup.js";
import {
  CODEC_DEDUP_REF,
  CODEC_LZ4,
  CODEC_MAX_ID,
  CODEC_RAW,
  CODEC_ZERO,
  CODEC_ZSTD,
  codecName,
} from "../codec/ids.js";
import { decodeChunk } from "../codec/index.js";
import { hashOfZeros } from "../codec/zero.js";
import { ZSTD_MAX_DECODE_SIZE, ZSTD_MAX_LEVEL, ZSTD_MIN_LEVEL } from "../codec/zstd.js";
import { isMigstreamError, MigstreamError } from "../errors.js";
import { allocBuffer, type KernelBuffer } from "../kernels/wasm.js";
import { xxh3_64 } from "../kernels/xxh3.js";
import {
  CHUNK_HEADER_SIZE,
  FRAME_CHUNK,
  FRAME_DEVICE_BEGIN,
  FRAME_DEVICE_END,
  FRAME_DEVICE_PROTOCOL,
  FRAME_HEADER_SIZE,
  FRAME_PHASE,
  FRAME_SKIPPABLE,
  FRAME_STREAM_END,
  FRAME_TRANSACTION,
  PHASES,
  phaseCode,
} from "./constants.js";
import { RecordHasher } from "./digest.js";
import type { Frame } from "./frames.js";
import type { StreamHeader } from "./header.js";
import {
  formatError,
  readChunkHeader,
  readDeviceBegin,
  readDeviceEnd,
  readDeviceProtocol,
  readPhase,
  readStreamEnd,
  readTransaction,
} from "./payloads.js";
import type { PayloadStage } from "./stage.js";
import type { DecodeEvent, DeviceTrailer } from "./types.js";
import { WindowTracker } from "./window.js";

export interface InterpreterOptions {
  /** Check everything that needs no raw bytes; emit no data. */
  verifyOnly: boolean;
  /** Decode each transaction into one buffer and emit it with `transaction-end`. */
  assemble: boolean;
  /** Decode every chunk (with assemble: every transaction of a device) into one reused buffer (see DecoderOptions.reuseOutput). */
  reuse?: boolean;
  /**
   * The FrameReader's PayloadStage, if it stages payloads: chunks are decoded
   * and verified from the checked copy there, in place. The interpreter frees
   * it with its own kernel state (dispose).
   */
  stage?: PayloadStage | null;
}

interface Txn {
  index: number;
  size: number;
  chunks: number;
  filled: number;
  chunksSeen: number;
  buf: Uint8Array | null;
  frame: number;
  offset: number;
}

interface DeviceState {
  id: number;
  /** A DEVICE_PROTOCOL frame was read. */
  protocol: boolean;
  /** Phase code of the last PHASE frame, -1 before any. */
  phase: number;
  iteration: number;
  counts: Omit<DeviceTrailer, "digest">;
  digest: RecordHasher;
  window: DedupWindow | null;
  tracker: WindowTracker | null;
  txn: Txn | null;
  ended: boolean;
  /** Assembly buffer reused by this device's transactions (reuse mode). */
  txnBuf: Uint8Array | null;
}

const END_CODE = phaseCode("end");
const PRECOPY_CODE = phaseCode("precopy");

/** Staging buffers start at this size (or max_chunk if smaller) and grow to the largest chunk. */
const STAGE_MIN = 256 << 10;

function badHash(f: Frame, codec: number): MigstreamError {
  return formatError(f, `decoded ${codecName(codec)} chunk does not match its raw_hash`, "raw_hash", "CHECKSUM");
}

/**
 * Re-throws a codec-layer error with the frame's position: its offset, when
 * it has one, is within the coded payload and becomes a stream offset.
 */
function atFrame(e: unknown, f: Frame): never {
  if (isMigstreamError(e) && e.frame === undefined) {
    const offset = e.offset === undefined ? f.offset : f.offset + FRAME_HEADER_SIZE + CHUNK_HEADER_SIZE + e.offset;
    throw new MigstreamError(e.code, e.message, {
      offset,
      frame: f.seq,
      device: f.device,
      field: e.field ?? "payload",
      cause: e,
    });
  }
  throw e;
}

/**
 * A device's decoding state handed over by Interpreter.handOver: its dedup
 * window and the transaction being assembled (the buffer, bytes filled so
 * far, and the device's reused buffer in reuse mode).
 */
export interface DeviceHandOver {
  device: number;
  window: DedupWindow | null;
  buf: Uint8Array | null;
  filled: number;
  reused: Uint8Array | null;
}

export class Interpreter {
  private readonly header: StreamHeader;
  private opts: InterpreterOptions;
  private readonly devices = new Map<number, DeviceState>();
  private readonly framesDigest = new RecordHasher();
  private totals = { transactions: 0, chunks: 0, rawBytes: 0, codedBytes: 0 };
  private staging: KernelBuffer | null = null;
  private reuseBuf: Uint8Array | null = null;

  constructor(header: StreamHeader, opts: InterpreterOptions) {
    this.header = header;
    this.opts = opts;
  }

  /** Interprets one frame; returns its events. */
  frame(f: Frame): DecodeEvent[] {
    let out: DecodeEvent[];
    switch (f.type) {
      case FRAME_DEVICE_BEGIN:
        out = this.deviceBegin(f);
        break;
      case FRAME_PHASE:
        out = this.phase(f);
        break;
      case FRAME_DEVICE_PROTOCOL:
        out = this.deviceProtocol(f);
        break;
      case FRAME_TRANSACTION:
        out = this.transaction(f);
        break;
      case FRAME_CHUNK:
        out = this.chunk(f);
        break;
      case FRAME_DEVICE_END:
        out = this.deviceEnd(f);
        break;
      case FRAME_STREAM_END:
        return this.streamEnd(f);
      default:
        if ((f.type & FRAME_SKIPPABLE) === 0) {
          throw new MigstreamError("VERSION", `unknown frame type 0x${f.type.toString(16)} (not skippable)`, {
            offset: f.offset,
            frame: f.seq,
            field: "type",
          });
        }
        out = [
          { type: "skipped", frameType: f.type, device: f.device, length: f.length, frame: f.seq, offset: f.offset },
        ];
    }
    this.framesDigest.u64(f.check);
    return out;
  }

  private open(f: Frame): DeviceState {
    const d = this.devices.get(f.device);
    if (d === undefined) throw formatError(f, `device ${f.device} was never opened`, "device");
    if (d.ended) throw formatError(f, `device ${f.device} already ended`, "device");
    d.counts.frames++;
    return d;
  }

  private deviceBegin(f: Frame): DecodeEvent[] {
    if (this.devices.has(f.device)) throw formatError(f, `device ${f.device} is opened twice`, "device");
    if (this.devices.size >= this.header.maxDevices) {
      throw formatError(f, `more than max_devices ${this.header.maxDevices} devices`, "device", "LIMIT");
    }
    const { name, metadata } = readDeviceBegin(f, this.header.maxMetadata);
    const w = this.header.dedupWindow;
    this.devices.set(f.device, {
      id: f.device,
      protocol: false,
      phase: -1,
      iteration: 0,
      counts: { frames: 1, transactions: 0, chunks: 0, rawBytes: 0, codedBytes: 0 },
      digest: new RecordHasher(),
      window: w > 0 && !this.opts.verifyOnly ? new DedupWindow(w) : null,
      tracker: w > 0 && this.opts.verifyOnly ? new WindowTracker(w) : null,
      txn: null,
      ended: false,
      txnBuf: null,
    });
    return [{ type: "device", device: f.device, name, metadata, frame: f.seq, offset: f.offset }];
  }

  private notInTxn(d: DeviceState, f: Frame, what: string): void {
    if (d.txn !== null) {
      throw formatError(
        f,
        `${what} inside transaction ${d.txn.index} (${d.txn.chunks - d.txn.chunksSeen} chunk(s) missing)`,
        "type",
      );
    }
  }

  /** DEVICE_PROTOCOL: once per device, before its first PHASE. */
  private deviceProtocol(f: Frame): DecodeEvent[] {
    const d = this.open(f);
    if (d.protocol) throw formatError(f, "DEVICE_PROTOCOL repeated", "type");
    if (d.phase >= 0) throw formatError(f, "DEVICE_PROTOCOL after the first PHASE", "type");
    const protocol = readDeviceProtocol(f);
    d.protocol = true;
    return [{ type: "protocol", device: f.device, protocol, frame: f.seq, offset: f.offset }];
  }

  private phase(f: Frame): DecodeEvent[] {
    const d = this.open(f);
    this.notInTxn(d, f, "PHASE");
    const p = readPhase(f);
    if (d.phase === END_CODE) throw formatError(f, "PHASE after the end phase", "phase");
    if (p.code < d.phase) throw formatError(f, `phase ${p.phase} after ${PHASES[d.phase]}`, "phase");
    if (p.code === d.phase && !(p.code === PRECOPY_CODE && p.iteration > d.iteration)) {
      throw formatError(f, `phase ${p.phase} (iteration ${p.iteration}) repeated`, "iteration");
    }
    d.phase = p.code;
    d.iteration = p.iteration;
    return [
      { type: "phase", device: f.device, phase: p.phase, iteration: p.iteration, frame: f.seq, offset: f.offset },
    ];
  }

  private transaction(f: Frame): DecodeEvent[] {
    const d = this.open(f);
    this.notInTxn(d, f, "TRANSACTION");
    if (d.phase < 0) throw formatError(f, "TRANSACTION before any PHASE", "type");
    if (d.phase === END_CODE) throw formatError(f, "TRANSACTION after the end phase", "type");
    const { size, chunks } = readTransaction(f);
    if (size > this.header.maxTransaction) {
      throw formatError(
        f,
        `transaction of ${size} bytes exceeds max_transaction ${this.header.maxTransaction}`,
        "size",
        "LIMIT",
      );
    }
    const minChunks = Math.ceil(size / this.header.maxChunk);
    if ((size === 0) !== (chunks === 0) || chunks > size || chunks < minChunks) {
      throw formatError(f, `transaction of ${size} bytes cannot be carried by ${chunks} chunk(s)`, "chunks");
    }
    const index = d.counts.transactions++;
    this.totals.transactions++;
    const ev: DecodeEvent[] = [{ type: "transaction", device: f.device, size, chunks, frame: f.seq, offset: f.offset }];
    if (size === 0) {
      ev.push({
        type: "transaction-end",
        device: f.device,
        size: 0,
        data: this.opts.assemble && !this.opts.verifyOnly ? new Uint8Array(0) : undefined,
        frame: f.seq,
        offset: f.offset,
      });
      return ev;
    }
    d.txn = {
      index,
      size,
      chunks,
      filled: 0,
      chunksSeen: 0,
      buf: this.opts.assemble && !this.opts.verifyOnly ? this.assembly(d, size) : null,
      frame: f.seq,
      offset: f.offset,
    };
    return ev;
  }

  private chunk(f: Frame): DecodeEvent[] {
    const d = this.open(f);
    const t = d.txn;
    if (t === null) throw formatError(f, "CHUNK outside a transaction", "type");
    const c = readChunkHeader(f);
    const raw = c.rawLength;
    if (c.codec > CODEC_MAX_ID) throw formatError(f, `unknown codec ${c.codec}`, "codec", "CODEC");
    if (c.codec === CODEC_ZSTD ? c.level < ZSTD_MIN_LEVEL || c.level > ZSTD_MAX_LEVEL : c.level !== 0) {
      throw formatError(f, `level ${c.level} is invalid for codec ${codecName(c.codec)}`, "level");
    }
    if (raw === 0) throw formatError(f, "chunk raw_length is 0", "raw_length");
    if (raw > this.header.maxChunk) {
      throw formatError(f, `chunk of ${raw} bytes exceeds max_chunk ${this.header.maxChunk}`, "raw_length", "LIMIT");
    }
    if (raw > t.size - t.filled) {
      throw formatError(
        f,
        `chunk of ${raw} bytes overruns its transaction (${t.size - t.filled} bytes left)`,
        "raw_length",
      );
    }
    if (c.codec === CODEC_ZSTD && raw > ZSTD_MAX_DECODE_SIZE) {
      // Checked here too so that verification and decoding agree.
      throw formatError(f, `zstd chunk of ${raw} bytes exceeds ${ZSTD_MAX_DECODE_SIZE}`, "raw_length", "LIMIT");
    }
    const coded = c.codedLength;
    const codedOk =
      c.codec === CODEC_RAW
        ? coded === raw
        : c.codec === CODEC_ZERO
          ? coded === 0
          : c.codec === CODEC_DEDUP_REF
            ? coded === DEDUP_REF_SIZE
            : coded > 0;
    if (!codedOk)
      throw formatError(
        f,
        `coded_length ${coded} is invalid for a ${raw}-byte ${codecName(c.codec)} chunk`,
        "coded_length",
      );
    if (c.codec === CODEC_DEDUP_REF && this.header.dedupWindow === 0) {
      throw formatError(f, "dedup reference in a stream without a dedup window", "codec");
    }
    const payload = f.payload.subarray(20);
    const recorded = c.codec === CODEC_RAW || c.codec === CODEC_LZ4 || c.codec === CODEC_ZSTD;
    let data: Uint8Array | undefined;
    try {
      if (this.opts.verifyOnly) {
        if (c.codec === CODEC_DEDUP_REF) {
          const ord = decodeDedupRef(payload);
          const len = d.tracker!.lengthOf(ord);
          if (len === -1) throw formatError(f, `dedup reference to chunk ${ord}, which was never recorded`, "dedupRef");
          if (len === -2)
            throw formatError(f, `dedup reference to chunk ${ord}, already outside the window`, "dedupRef", "LIMIT");
          if (len !== raw)
            throw formatError(f, `dedup reference names a ${len}-byte chunk, expected ${raw}`, "dedupRef", "CODEC");
        } else if (recorded) {
          d.tracker?.add(raw);
        }
      } else {
        const handOut = t.buf === null && this.opts.reuse === true; // the consumer takes a view, valid until it moves on
        const into = t.buf !== null ? t.buf.subarray(t.filled, t.filled + raw) : handOut ? this.reused(raw) : undefined;
        if (c.codec === CODEC_RAW && handOut && payload.length === raw && this.staged(f) !== null) {
          // The chunk is its payload: verified in the checked copy, in place, and handed out as it lies (no copy).
          if (xxh3_64(this.staged(f)!) !== c.rawHash) throw badHash(f, c.codec);
          data = payload;
        } else if (c.codec === CODEC_LZ4) {
          // Decoded (from the checked copy when staged) and hashed in kernel memory, copied out once.
          const out = this.stage(raw); // may grow kernel memory: views after
          decodeChunk(c.codec, this.staged(f) ?? payload, raw, out.view(0, raw));
          const v = out.view(0, raw);
          if (xxh3_64(v) !== c.rawHash) throw badHash(f, c.codec);
          data = into ?? new Uint8Array(raw);
          data.set(v);
        } else {
          // A resolved reference without `into` is the window's own copy: hand out a copy of it.
          data =
            c.codec === CODEC_DEDUP_REF
              ? into === undefined
                ? resolveDedupRef(d.window!, payload, raw).slice()
                : resolveDedupRef(d.window!, payload, raw, into)
              : decodeChunk(c.codec, payload, raw, into);
          if (this.hashOf(c.codec, data) !== c.rawHash) throw badHash(f, c.codec);
        }
        if (recorded) d.window?.add(data);
      }
    } catch (e) {
      atFrame(e, f);
    }
    return this.chunkDone(f, d, t, c, data);
  }

  /** A chunk checked (and decoded into `data`, unless verifying only): counts, digest, its events. */
  private chunkDone(
    f: Frame,
    d: DeviceState,
    t: Txn,
    c: ReturnType<typeof readChunkHeader>,
    data: Uint8Array | undefined,
  ): DecodeEvent[] {
    const raw = c.rawLength;
    const coded = c.codedLength;
    d.digest.chunk(c.rawHash, raw, t.index);
    d.counts.chunks++;
    d.counts.rawBytes += raw;
    d.counts.codedBytes += coded;
    this.totals.chunks++;
    this.totals.rawBytes += raw;
    this.totals.codedBytes += coded;
    t.filled += raw;
    t.chunksSeen++;
    const ev: DecodeEvent[] = [
      {
        type: "chunk",
        device: f.device,
        codec: c.codec,
        level: c.level,
        rawLength: raw,
        codedLength: coded,
        data,
        frame: f.seq,
        offset: f.offset,
      },
    ];
    if (t.chunksSeen === t.chunks || t.filled === t.size) {
      if (t.chunksSeen !== t.chunks || t.filled !== t.size) {
        throw formatError(
          f,
          `transaction ${t.index} declared ${t.chunks} chunk(s) for ${t.size} bytes, got ${t.chunksSeen} for ${t.filled}`,
          "chunks",
        );
      }
      d.txn = null;
      ev.push({
        type: "transaction-end",
        device: f.device,
        size: t.size,
        data: t.buf ?? undefined,
        frame: f.seq,
        offset: f.offset,
      });
    }
    return ev;
  }

  /** Where a transaction of `size` bytes is assembled: a new array, or in reuse mode the device's reused one. */
  private assembly(d: DeviceState, size: number): Uint8Array {
    if (!this.opts.reuse) return new Uint8Array(size);
    if (d.txnBuf === null || d.txnBuf.length < size) d.txnBuf = new Uint8Array(size);
    return d.txnBuf.subarray(0, size);
  }

  /** The reused output buffer (reuse mode), with room for `n` bytes (≤ max_chunk). */
  private reused(n: number): Uint8Array {
    if (this.reuseBuf === null || this.reuseBuf.length < n)
      this.reuseBuf = new Uint8Array(Math.max(n, Math.min(this.header.maxChunk, STAGE_MIN)));
    return this.reuseBuf.subarray(0, n);
  }

  /** The chunk payload of `f` in the checked, staged copy (a kernel view: take it after any allocation), or null. */
  private staged(f: Frame): Uint8Array | null {
    const stage = this.opts.stage;
    const v = stage && f.staged ? stage.view(f.staged) : null;
    return v === null ? null : v.subarray(CHUNK_HEADER_SIZE);
  }

  /** Kernel-memory room for one decoded chunk of `n` bytes (≤ max_chunk). */
  private stage(n: number): KernelBuffer {
    if (this.staging === null || this.staging.length < n) {
      this.staging?.free();
      this.staging = allocBuffer(Math.max(n, Math.min(this.header.maxChunk, STAGE_MIN)));
    }
    return this.staging;
  }

  /** XXH3-64 of decoded bytes (all-zero chunks of a repeated length are hashed once). */
  private hashOf(codec: number, data: Uint8Array): bigint {
    return codec === CODEC_ZERO ? hashOfZeros(data) : xxh3_64(data);
  }

  private deviceEnd(f: Frame): DecodeEvent[] {
    const d = this.open(f);
    this.notInTxn(d, f, "DEVICE_END");
    const t = readDeviceEnd(f);
    const c = d.counts;
    for (const k of ["frames", "transactions", "chunks", "rawBytes", "codedBytes"] as const) {
      if (t[k] !== c[k]) throw formatError(f, `device trailer says ${k} ${t[k]}, the stream carried ${c[k]}`, k);
    }
    const digest = d.digest.digest();
    d.digest.free();
    if (t.digest !== digest) throw formatError(f, "device digest mismatch", "digest", "CHECKSUM");
    d.ended = true;
    d.window = null;
    d.txnBuf = null;
    d.tracker = null;
    return [{ type: "device-end", device: f.device, trailer: t, frame: f.seq, offset: f.offset }];
  }

  private streamEnd(f: Frame): DecodeEvent[] {
    if (f.device !== 0) throw formatError(f, "STREAM_END names a device", "device");
    const t = readStreamEnd(f);
    for (const d of this.devices.values()) {
      if (!d.ended) throw formatError(f, `device ${d.id} has no DEVICE_END`, "device");
    }
    const have = { frames: f.seq, devices: this.devices.size, ...this.totals };
    for (const k of ["frames", "devices", "transactions", "chunks", "rawBytes", "codedBytes"] as const) {
      if (t[k] !== have[k]) throw formatError(f, `stream trailer says ${k} ${t[k]}, the stream carried ${have[k]}`, k);
    }
    const digest = this.framesDigest.digest();
    this.dispose();
    if (t.framesDigest !== digest) throw formatError(f, "frames digest mismatch", "frames_digest", "CHECKSUM");
    return [{ type: "end", trailer: t, frame: f.seq, offset: f.offset }];
  }

  /**
   * Turns a decoding interpreter into a verifying one between two frames:
   * from the next frame on it checks only (as with `verifyOnly`, dedup
   * references against lengths), and the caller, which decodes the chunks
   * itself from then on, takes over each open device's dedup window and the
   * transaction being assembled. Every check and count so far carries on.
   */
  handOver(): DeviceHandOver[] {
    const out: DeviceHandOver[] = [];
    for (const d of this.devices.values()) {
      if (d.ended) continue;
      const t = d.txn;
      out.push({ device: d.id, window: d.window, buf: t?.buf ?? null, filled: t?.filled ?? 0, reused: d.txnBuf });
      d.tracker = d.window === null ? null : WindowTracker.of(d.window);
      d.window = null;
      d.txnBuf = null;
      if (t !== null) t.buf = null;
    }
    this.opts = { ...this.opts, verifyOnly: true, assemble: false, reuse: false };
    this.staging?.free();
    this.staging = null;
    this.reuseBuf = null;
    return out;
  }

  /** Releases kernel state (at the end, or after an error). */
  dispose(): void {
    this.staging?.free();
    this.staging = null;
    this.opts.stage?.dispose();
    this.framesDigest.free();
    for (const d of this.devices.values()) d.digest.free();
  }
}
