// StreamDecoder's engine with a pool: the same checks and events, with chunk
// decoding and raw-hash verification farmed out to a ChunkDecoder (the
// pool's, chunk-coders.ts).
//
// Solo until needed: as long as every chunk is one the ChunkDecoder would
// decode on this thread anyway (decodesHere: a pool's LZ4 and RAW chunks),
// frames go through a decoding Interpreter exactly as without a pool — no
// pending queue, no job, no extra copy — so an LZ4 or RAW stream costs the
// same with threads as without. At the first chunk that may go to a thread
// the Interpreter hands over (its dedup windows, the transaction being
// assembled) and carries on as a verifying one, as below, for the rest of
// the stream.
//
// The frame layer, MACs and every structural rule run here, in order, through
// the Interpreter in verify mode (the same code StreamDecoder runs). Each
// RAW/LZ4/ZSTD chunk is offered to the decoder's decodeNow (decoded on this
// thread at once: a cheap codec, or every worker busy), else becomes a
// decode+verify job; a RAW chunk with nothing pending before it, for a
// consumer taking views, is verified in the reader's checked copy and passed
// through as its payload. ZERO and DEDUP_REF chunks are resolved here (they
// need no decompression; a reference needs earlier chunks' bytes, which are
// only known in order). Events are released strictly in stream order, a
// chunk's only after its bytes were verified, so a consumer sees exactly what
// StreamDecoder would show, and the first error in stream order: a failure
// found further ahead waits until every earlier chunk has been released or
// has failed itself.
//
// Memory: at most `inFlight` chunks between reading and release (each in one
// buffer of max_chunk bytes, recycled when the decoder owns its data), the
// dedup windows, and with `assemble` one transaction per device.

import { DedupWindow, decodeDedupRef, resolveDedupRef } from "../codec/dedup.js";
import { CODEC_DEDUP_REF, CODEC_LZ4, CODEC_RAW, CODEC_ZERO, CODEC_ZSTD, codecName } from "../codec/ids.js";
import { init, zstdAvailable } from "../codec/index.js";
import { hashOfZeros } from "../codec/zero.js";
import { isMigstreamError, MigstreamError } from "../errors.js";
import { xxh3_64 } from "../kernels/xxh3.js";
import { plain } from "./bytes.js";
import type { ChunkDecoder } from "./chunk-coders.js";
import { CHUNK_HEADER_SIZE, FRAME_CHUNK, FRAME_HEADER_SIZE } from "./constants.js";
import type { Frame, FrameReader } from "./frames.js";
import { Interpreter } from "./interpreter.js";
import type { MacBatchReader } from "./mac-batch.js";
import { readChunkHeader } from "./payloads.js";
import type { DecodeEvent } from "./types.js";

/**
 * Default read-ahead of a decoder with a pool, in chunks: enough that the
 * workers' queues are full and the calling thread still has chunks of its own
 * to decode (ChunkDecoder.decodeNow) instead of waiting for theirs.
 */
export const PARALLEL_DECODE_IN_FLIGHT = 24;

/** What the engine takes from the decoder's options (checked there). */
export interface ParallelDecodingOptions {
  reader: FrameReader;
  batches: MacBatchReader;
  assemble: boolean;
  reuse: boolean;
  decoder: ChunkDecoder;
  inFlight: number;
}

type ChunkEvent = Extract<DecodeEvent, { type: "chunk" }>;

/** A frame's events waiting for release, and how to get its chunk's bytes. */
interface Pending {
  events: DecodeEvent[];
  chunk: ChunkEvent | null;
  /** RAW/LZ4/ZSTD: the decode job while it runs (null once settled, or when decoded at once). */
  job: Promise<Uint8Array> | null;
  /** RAW/LZ4/ZSTD: the verified bytes, once decoded... */
  data: Uint8Array | null;
  /** ...which are a view of the stream's bytes (a RAW chunk passed through), not a job's buffer. */
  view: boolean;
  /** ...or why they could not be. */
  error: unknown;
  hash: bigint;
  /** DEDUP_REF: the ordinal named. */
  ordinal: number;
}

interface DeviceAssembly {
  window: DedupWindow | null;
  /** Transaction being assembled, and its reused buffer (reuse mode). */
  buf: Uint8Array | null;
  filled: number;
  reused: Uint8Array | null;
}

const noop = () => {};

/**
 * A turn of the event loop (replies from other threads are taken in), where
 * the runtime has a cheap one (setImmediate: Node, Deno); null elsewhere.
 */
const nextTurn: (() => Promise<void>) | null =
  typeof (globalThis as { setImmediate?: unknown }).setImmediate === "function"
    ? () =>
        new Promise<void>((resolve) =>
          (globalThis as unknown as { setImmediate(f: () => void): void }).setImmediate(resolve),
        )
    : null;

export class ParallelDecoding {
  private readonly reader: FrameReader;
  private readonly batches: MacBatchReader;
  private readonly assemble: boolean;
  private readonly reuse: boolean;
  private readonly decoder: ChunkDecoder;
  private readonly inFlight: number;
  private interp: Interpreter | null = null;
  private failed: unknown = null;
  private readonly pending: Pending[] = [];
  private readonly devices = new Map<number, DeviceAssembly>();
  /** Job buffers (max_chunk bytes each) free for reuse. */
  private readonly free: ArrayBuffer[] = [];
  /** Decode jobs started and not yet settled. */
  private jobsOut = 0;
  private started: Promise<void> | null = null;
  /** Frames are still decoded by the Interpreter itself, as without a pool (see the top of the file). */
  private solo = true;

  constructor(o: ParallelDecodingOptions) {
    this.decoder = o.decoder;
    this.inFlight = o.inFlight;
    this.reader = o.reader;
    this.batches = o.batches;
    this.assemble = o.assemble;
    this.reuse = o.reuse;
  }

  /** True once STREAM_END was read and every event before it released. */
  get done(): boolean {
    return this.reader.done && this.pending.length === 0 && this.failed === null;
  }

  /**
   * Decodes `data`: yields the events it can release (chunks still being
   * decoded are released by later calls or by `end`). Iterate to the end before
   * the next call. `data` is not used after the iteration ends.
   */
  async *writeAsync(data: Uint8Array): AsyncGenerator<DecodeEvent> {
    this.guard();
    this.started ??= init({ zstd: false }); // kernels for the checks; chunks decode in the decoder
    await this.started;
    this.reader.push(plain(data));
    for (;;) {
      const b = await this.batches.next();
      if (b === "header") {
        const h = this.reader.header!;
        // Decoding while solo, checking only once handed over; it frees the reader's stage with its own state.
        const { assemble, reuse } = this;
        this.interp = new Interpreter(h, { verifyOnly: false, assemble, reuse, stage: this.reader.stage });
        yield { type: "header", header: h };
        continue;
      }
      let stop = b.stop; // frames before the bad one are still good
      try {
        for (const f of b.frames) {
          if (this.solo && !this.soloTakes(f)) this.handOver();
          if (this.solo) {
            if (chunkCodec(f) === CODEC_ZSTD && !zstdAvailable()) await init(); // a ChunkDecoder that decodes zstd here
            yield* this.interp!.frame(f);
            continue;
          }
          while (this.pending.length >= this.inFlight) yield* this.release();
          const here = this.take(f, this.interp!.frame(f));
          // A chunk decoded here while others are out: let their replies in, so that the threads they
          // went to get more work now rather than after this whole batch.
          if (here && this.jobsOut > 0 && nextTurn !== null) await nextTurn();
          // Out at once when nothing waits before it (a chunk decoded here, a frame without one).
          if (this.ready(this.pending[0])) yield* this.releaseReady();
        }
        // Every frame of the batch is taken: payloads were copied (or decoded) when submitted and
        // events hold no views of them, so the buffers frames were gathered in can be reused.
        this.reader.release();
      } catch (e) {
        stop = e;
      }
      if (stop !== null) {
        yield* this.drain();
        this.fail(stop);
      }
      // Hand out whatever is already decoded, without waiting.
      yield* this.releaseReady();
      if (!b.more) return;
    }
  }

  /** Ends the input: releases everything still pending, then throws TRUNCATED unless STREAM_END was read. */
  async *end(): AsyncGenerator<DecodeEvent> {
    this.guard();
    yield* this.drain();
    try {
      this.reader.finish();
    } catch (e) {
      this.fail(e);
    }
  }

  private guard(): void {
    if (this.failed !== null) throw new MigstreamError("USAGE", "the decoder already failed", { cause: this.failed });
  }

  private fail(e: unknown): never {
    this.failed ??= e;
    this.interp?.dispose();
    this.pending.length = 0; // every job's rejection is already handled (submit)
    throw e;
  }

  /** True while frame `f` can be decoded solo: not a chunk, or one the ChunkDecoder would decode here anyway. */
  private soloTakes(f: Frame): boolean {
    const codec = chunkCodec(f);
    if (codec < 0 || codec === CODEC_ZERO || codec === CODEC_DEDUP_REF) return true;
    return this.decoder.decodesHere?.(codec) === true;
  }

  /** Ends the solo part: the interpreter only checks from here on; chunks are decoded below, with its state. */
  private handOver(): void {
    for (const d of this.interp!.handOver()) {
      const { window, buf, filled, reused } = d;
      this.devices.set(d.device, { window, buf, filled, reused });
    }
    this.solo = false;
  }

  private ready(p: Pending): boolean {
    return p.job === null;
  }

  /** Queues a frame's events; decodes its chunk here or starts its decode job. True when it decoded a chunk here. */
  private take(f: Frame, events: DecodeEvent[]): boolean {
    const p = pendingOf(events);
    let here = false;
    for (const ev of events) {
      if (ev.type !== "chunk") continue;
      p.chunk = ev;
      const c = readChunkHeader(f);
      p.hash = c.rawHash;
      const payload = f.payload.subarray(CHUNK_HEADER_SIZE);
      if (ev.codec === CODEC_DEDUP_REF) p.ordinal = decodeDedupRef(payload);
      else if (ev.codec === CODEC_RAW && this.passThrough(f, p, ev, payload, c.rawHash)) here = true;
      else if (ev.codec === CODEC_RAW || ev.codec === CODEC_LZ4 || ev.codec === CODEC_ZSTD)
        here = this.submit(p, ev, payload, c.rawHash);
    }
    this.pending.push(p);
    return here;
  }

  /**
   * A RAW chunk released at once (nothing pending before it) to a consumer
   * that takes views (reuse, no assembly): verified in the reader's checked
   * copy, in place, and handed out as its payload, which stays valid until
   * the batch's frames are released — no copy, no job. False when it cannot.
   */
  private passThrough(f: Frame, p: Pending, ev: ChunkEvent, payload: Uint8Array, hash: bigint): boolean {
    const stage = this.reader.stage;
    if (!this.reuse || this.assemble || this.pending.length > 0 || payload.length !== ev.rawLength) return false;
    const staged = stage !== null && f.staged ? stage.view(f.staged) : null;
    if (staged === null) return false;
    if (xxh3_64(staged.subarray(CHUNK_HEADER_SIZE)) === hash) {
      p.data = payload;
      p.view = true;
    } else p.error = badHash(ev);
    return true;
  }

  /** Decodes the chunk of `p` at once when the decoder takes it so (returns true), else starts its job. */
  private submit(p: Pending, ev: ChunkEvent, payload: Uint8Array, hash: bigint): boolean {
    const request = { codec: ev.codec, payload, rawLength: ev.rawLength, hash };
    if (this.decoder.decodeNow !== undefined) {
      try {
        p.data = this.decoder.decodeNow(request);
      } catch (e) {
        p.error = e; // thrown in stream order, when its frame is released
      }
      if (p.data !== null || p.error !== null) return true;
    }
    let job: Promise<Uint8Array>;
    if (this.decoder.copiesInput) job = this.decoder.decode(request);
    else {
      // The payload goes in a buffer of its own with room for the raw bytes (reused once released).
      const cap = Math.max(this.reader.header!.maxChunk, payload.length, ev.rawLength);
      let buf = this.free.pop();
      if (buf === undefined || buf.byteLength < cap) buf = new ArrayBuffer(cap);
      const copy = new Uint8Array(buf, 0, payload.length);
      copy.set(payload);
      job = this.decoder.decode({ ...request, payload: copy, whole: true });
    }
    p.job = job;
    this.jobsOut++;
    job.then(
      (data) => {
        p.data = data;
        p.job = null;
        this.jobsOut--;
      },
      (e) => {
        p.error = e ?? new MigstreamError("INTERNAL", "a chunk decode job failed without a reason");
        p.job = null;
        this.jobsOut--;
      },
    );
    return false;
  }

  /** Releases every pending frame, in order (the first failure throws). */
  private async *drain(): AsyncGenerator<DecodeEvent> {
    while (this.pending.length > 0) yield* this.release();
  }

  /** Waits for the oldest pending frame's chunk, then releases it and every ready frame after it. */
  private async *release(): AsyncGenerator<DecodeEvent> {
    const job = this.pending[0].job;
    if (job !== null) await job.catch(noop); // settles the frame (submit's handlers ran first)
    yield* this.releaseReady();
  }

  /** Releases the pending frames that are ready, oldest first, without waiting (the first failure throws). */
  private *releaseReady(): Generator<DecodeEvent> {
    while (this.pending.length > 0 && this.ready(this.pending[0])) {
      const p = this.pending[0];
      let recycle: Uint8Array | null = null;
      if (p.chunk !== null) {
        try {
          recycle = this.finishChunk(p, p.chunk);
        } catch (e) {
          this.fail(e);
        }
      }
      this.pending.shift();
      for (const ev of p.events) {
        this.before(ev);
        yield ev;
      }
      if (recycle !== null && (this.reuse || this.assemble)) {
        if (this.decoder.release) this.decoder.release(recycle);
        else if (recycle.buffer.byteLength >= this.reader.header!.maxChunk && this.free.length < this.inFlight)
          this.free.push(recycle.buffer as ArrayBuffer);
      }
    }
  }

  /** Per-device bookkeeping done in stream order, just before an event goes out. */
  private before(ev: DecodeEvent): void {
    switch (ev.type) {
      case "device": {
        const w = this.reader.header!.dedupWindow;
        this.devices.set(ev.device, { window: w > 0 ? new DedupWindow(w) : null, buf: null, filled: 0, reused: null });
        break;
      }
      case "transaction": {
        const a = this.devices.get(ev.device)!;
        if (!this.assemble || ev.size === 0) break;
        if (!this.reuse) a.buf = new Uint8Array(ev.size);
        else {
          if (a.reused === null || a.reused.length < ev.size) a.reused = new Uint8Array(ev.size);
          a.buf = a.reused.subarray(0, ev.size);
        }
        a.filled = 0;
        break;
      }
      case "transaction-end": {
        const a = this.devices.get(ev.device)!;
        if (this.assemble) ev.data = ev.size === 0 ? new Uint8Array(0) : a.buf!;
        a.buf = null;
        break;
      }
      case "device-end":
        this.devices.delete(ev.device);
        break;
    }
  }

  /**
   * The verified bytes of a settled chunk, put where the consumer gets them;
   * returns the job buffer to recycle once the chunk's events are out.
   */
  private finishChunk(p: Pending, ev: ChunkEvent): Uint8Array | null {
    const a = this.devices.get(ev.device)!;
    const raw = ev.rawLength;
    let data: Uint8Array;
    let job: Uint8Array | null = null;
    try {
      if (p.error !== null) throw p.error;
      if (p.data !== null) {
        data = p.data;
        if (!p.view) job = data;
      } else if (ev.codec === CODEC_ZERO) {
        data = new Uint8Array(raw);
        if (hashOfZeros(data) !== p.hash) throw badHash(ev);
      } else {
        data = resolveDedupRef(a.window!, encodeOrdinal(p.ordinal), raw);
        if (xxh3_64(data) !== p.hash) throw badHash(ev);
      }
    } catch (e) {
      throw atChunk(e, ev);
    }
    if (ev.codec !== CODEC_ZERO && ev.codec !== CODEC_DEDUP_REF) a.window?.add(data);
    if (a.buf !== null) {
      const into = a.buf.subarray(a.filled, a.filled + raw);
      into.set(data);
      a.filled += raw;
      ev.data = into;
      return job;
    }
    // Without assembly the consumer gets the job's buffer (reuse mode: until it moves on) or a copy of a window entry.
    ev.data = ev.codec === CODEC_DEDUP_REF ? data.slice() : data;
    return job;
  }
}

/** The codec byte of a CHUNK frame, or −1 for any other frame (or one too short to have a chunk header). */
function chunkCodec(f: Frame): number {
  return f.type === FRAME_CHUNK && f.length >= CHUNK_HEADER_SIZE ? f.payload[0] : -1;
}

/** A frame's events, pending, with no chunk yet. */
function pendingOf(events: DecodeEvent[]): Pending {
  return { events, chunk: null, job: null, data: null, view: false, error: null, hash: 0n, ordinal: -1 };
}

/** The DEDUP_REF payload naming `ordinal` (resolveDedupRef reads it back). */
function encodeOrdinal(ordinal: number): Uint8Array {
  const p = new Uint8Array(8);
  new DataView(p.buffer).setBigUint64(0, BigInt(ordinal), true);
  return p;
}

function badHash(ev: ChunkEvent): MigstreamError {
  return new MigstreamError("CHECKSUM", `decoded ${codecName(ev.codec)} chunk does not match its raw_hash`, {
    offset: ev.offset,
    frame: ev.frame,
    device: ev.device,
    field: "raw_hash",
  });
}

/** A chunk's failure as StreamDecoder reports it: at the frame, codec offsets made stream offsets. */
function atChunk(e: unknown, ev: ChunkEvent): unknown {
  if (!isMigstreamError(e) || e.frame !== undefined) return e;
  if (e.code === "CHECKSUM" && e.field === "xxh3") return badHash(ev);
  const offset = e.offset === undefined ? ev.offset : ev.offset + FRAME_HEADER_SIZE + CHUNK_HEADER_SIZE + e.offset;
  return new MigstreamError(e.code, e.message, {
    offset,
    frame: ev.frame,
    device: ev.device,
    field: e.field ?? "payload",
    cause: e,
  });
}
