// StreamDecoder: bytes in (any split), checked events out. Synchronous for
// unkeyed streams (`write`/`finish`); `writeAsync` also verifies MACs (WebCrypto
// is asynchronous), a batch of frames at a time, before interpreting them.
// With a `pool`, chunks are decoded and verified on its threads
// (parallel-decode.ts) and events still come out in stream order, each chunk's
// after its bytes verified: the same events, asynchronously only.
// Memory: one frame being gathered, one chunk (or transaction) being decoded
// (with a pool: `inFlight` chunks), the dedup windows; never the whole stream.

import { CODEC_ZSTD } from "../codec/ids.js";
import { init } from "../codec/index.js";
import { MigstreamError } from "../errors.js";
import { bindingPolicy } from "./binding.js";
import { plain } from "./bytes.js";
import type { CodingPool } from "./chunk-coders.js";
import { CHUNK_HEADER_SIZE, FRAME_CHUNK } from "./constants.js";
import { type Frame, FrameReader } from "./frames.js";
import type { StreamHeader } from "./header.js";
import { Interpreter } from "./interpreter.js";
import { type DecoderLimits, resolveLimits } from "./limits.js";
import { checkKey } from "./mac.js";
import { MacBatchReader } from "./mac-batch.js";
import { PARALLEL_DECODE_IN_FLIGHT, ParallelDecoding } from "./parallel-decode.js";
import { PayloadStage } from "./stage.js";
import type { DecodedDevice, DecodedStream, DecodeEvent, StreamTrailer } from "./types.js";

/** Options of StreamDecoder and the one-shot decoders. */
export interface DecoderOptions extends DecoderLimits {
  /** Shared key of an authenticated stream (required for one, refused for another). */
  key?: Uint8Array;
  /**
   * This connection's challenge (16 bytes, sent in the destination's hello):
   * a keyed stream must be bound to it (FORMAT.md §7.1). Without it, a bound
   * stream is refused (MAC).
   */
  challenge?: Uint8Array;
  /** With `challenge`: also take a keyed stream bound to no connection (a saved stream, replayed on purpose). */
  allowUnbound?: boolean;
  /** Take only a sealed (AES-256-GCM) stream (MAC otherwise). */
  requireEncryption?: boolean;
  /** Check everything without decompressing; events carry no data. */
  verifyOnly?: boolean;
  /** Decode each transaction into one buffer, delivered with `transaction-end`. */
  assemble?: boolean;
  /**
   * Each chunk's `data` (with `assemble`: each transaction's, per device) is a
   * view of a reused buffer — or, for a RAW chunk decoded on this thread, of
   * the stream bytes it arrived in — valid only until the iterator is advanced
   * past that event (copy what you keep). Saves a new array (and for RAW
   * chunks any copy) per chunk or transaction. Default false.
   */
  reuseOutput?: boolean;
  /**
   * Decode and verify chunks on these threads (a WorkerPool from
   * "vfio-migstream/pool"); default: on this thread. Only the asynchronous
   * methods work then (writeAsync, end, events). Not with verifyOnly. The
   * pool is not closed by the decoder.
   */
  pool?: CodingPool;
  /** With a pool: chunks read ahead of the consumer, at most (default 24). */
  inFlight?: number;
}

/**
 * The streaming decoder: stream bytes in (any split), checked events out, in
 * stream order. Synchronous (`write`, `finish`) for unkeyed streams on this
 * thread; asynchronous (`writeAsync`, `end`, `events`) for any stream, with
 * or without a pool. A failure sticks: later calls throw USAGE.
 */
export class StreamDecoder {
  private readonly reader: FrameReader;
  private readonly batches: MacBatchReader;
  private readonly key: Uint8Array | null;
  private readonly verifyOnly: boolean;
  private readonly assemble: boolean;
  private readonly reuse: boolean;
  /** Decoding on a pool (the `pool` option). */
  private readonly parallel: ParallelDecoding | null = null;
  private interp: Interpreter | null = null;
  private failed: unknown = null;
  private started: Promise<void> | null = null;

  /** A decoder for one stream. Throws USAGE for bad options. */
  constructor(options: DecoderOptions = {}) {
    this.key = options.key === undefined ? null : checkKey(options.key);
    this.verifyOnly = options.verifyOnly ?? false;
    // Decoding: each payload is copied into kernel memory once, checked and decoded there (stage.ts).
    const stage = this.verifyOnly ? null : new PayloadStage();
    this.reader = new FrameReader(resolveLimits(options), this.key !== null, stage);
    this.batches = new MacBatchReader(this.reader, this.key, bindingPolicy(options));
    this.assemble = options.assemble ?? false;
    this.reuse = options.reuseOutput === true;
    const pool = options.pool;
    if (pool === undefined) return;
    if (typeof pool?.decoder !== "function")
      throw new MigstreamError("USAGE", "pool must be a WorkerPool (decoder())", { field: "pool" });
    if (this.verifyOnly)
      throw new MigstreamError("USAGE", "verifyOnly decodes nothing: it takes no pool", { field: "pool" });
    const inFlight = options.inFlight ?? PARALLEL_DECODE_IN_FLIGHT;
    if (!Number.isInteger(inFlight) || inFlight < 1) {
      throw new MigstreamError("USAGE", `inFlight must be a positive integer, got ${inFlight}`, { field: "inFlight" });
    }
    const { reader, batches, assemble, reuse } = this;
    this.parallel = new ParallelDecoding({ reader, batches, assemble, reuse, decoder: pool.decoder(), inFlight });
  }

  /** The stream header, once read. */
  get header(): StreamHeader | null {
    return this.reader.header;
  }
  /** True once STREAM_END was read and verified (with a pool: and every event before it released). */
  get done(): boolean {
    return this.parallel?.done ?? (this.reader.done && this.failed === null);
  }
  /** Stream bytes consumed. */
  get offset(): number {
    return this.reader.offset;
  }

  private synchronous(what: string): void {
    if (this.parallel !== null) throw new MigstreamError("USAGE", `a decoder with a pool is asynchronous: use ${what}`);
  }

  private guard(): void {
    if (this.failed !== null) throw new MigstreamError("USAGE", "the decoder already failed", { cause: this.failed });
  }

  private fail(e: unknown): never {
    this.failed = e;
    this.interp?.dispose();
    throw e;
  }

  private onHeader(): DecodeEvent {
    const h = this.reader.header!;
    this.interp = new Interpreter(h, {
      verifyOnly: this.verifyOnly,
      assemble: this.assemble,
      reuse: this.reuse,
      stage: this.reader.stage,
    });
    return { type: "header", header: h };
  }

  /** Decodes `data`; iterate the result fully before the next write. Unkeyed streams, no pool. */
  *write(data: Uint8Array): Generator<DecodeEvent> {
    this.synchronous("writeAsync");
    this.guard();
    if (this.key !== null) {
      throw new MigstreamError(
        "USAGE",
        "authenticated streams need the asynchronous API (writeAsync / decodeStreamAsync): WebCrypto is asynchronous",
      );
    }
    this.reader.push(plain(data));
    try {
      for (;;) {
        const u = this.reader.next();
        if (u === null) return;
        if (u === "header") yield this.onHeader();
        else {
          yield* this.interp!.frame(u);
          this.reader.release();
        }
      }
    } catch (e) {
      this.fail(e);
    }
  }

  /** Ends the input: throws TRUNCATED unless STREAM_END was read. No pool (see end()). */
  finish(): void {
    this.synchronous("end()");
    this.guard();
    try {
      this.reader.finish();
    } catch (e) {
      this.fail(e);
    }
  }

  /**
   * Like `write`, for keyed and unkeyed streams, with or without a pool: a
   * frame's events follow its verified MAC (with a pool, a chunk's follow its
   * verified bytes; those still being decoded come with later calls or end()).
   * `data` is not used after the iteration ends.
   */
  async *writeAsync(data: Uint8Array): AsyncGenerator<DecodeEvent> {
    if (this.parallel !== null) {
      yield* this.parallel.writeAsync(data);
      return;
    }
    this.guard();
    this.started ??= init({ zstd: false }); // the kernels; zstd once a zstd chunk comes
    await this.started;
    this.reader.push(plain(data));
    for (;;) {
      const b = await this.batches.next();
      if (b === "header") {
        yield this.onHeader();
        continue;
      }
      if (b.frames.some(isZstdChunk)) await init(); // loads zstd once (a stream without zstd never parses it)
      try {
        for (const f of b.frames) yield* this.interp!.frame(f);
        this.reader.release();
      } catch (e) {
        this.fail(e);
      }
      // Frames before a bad one are good: they went out first.
      if (b.stop !== null) this.fail(b.stop);
      if (!b.more) return;
    }
  }

  /** Ends the input: the events still pending (with a pool), then TRUNCATED unless STREAM_END was read. */
  async *end(): AsyncGenerator<DecodeEvent> {
    if (this.parallel !== null) yield* this.parallel.end();
    else this.finish();
  }

  /** Decodes a whole source: its events in stream order, then end(). */
  async *events(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<DecodeEvent> {
    for await (const piece of source) yield* this.writeAsync(piece);
    yield* this.end();
  }
}

/** True for a CHUNK frame coded with zstd. */
function isZstdChunk(f: Frame): boolean {
  return f.type === FRAME_CHUNK && f.length >= CHUNK_HEADER_SIZE && f.payload[0] === CODEC_ZSTD;
}

/** Collects a decoder's events into a DecodedStream. */
class Collector {
  header: StreamHeader | null = null;
  devices = new Map<number, DecodedDevice>();
  trailer: StreamTrailer | null = null;

  add(ev: DecodeEvent): void {
    switch (ev.type) {
      case "header":
        this.header = ev.header;
        break;
      case "device":
        this.devices.set(ev.device, {
          id: ev.device,
          name: ev.name,
          metadata: ev.metadata,
          protocol: { generation: 1 },
          items: [],
          trailer: undefined as never,
        });
        break;
      case "protocol":
        this.devices.get(ev.device)!.protocol = ev.protocol;
        break;
      case "phase":
        this.devices.get(ev.device)!.items.push({ kind: "phase", phase: ev.phase, iteration: ev.iteration });
        break;
      case "transaction-end":
        this.devices.get(ev.device)!.items.push({ kind: "transaction", data: ev.data! });
        break;
      case "device-end":
        this.devices.get(ev.device)!.trailer = ev.trailer;
        break;
      case "end":
        this.trailer = ev.trailer;
        break;
    }
  }

  result(): DecodedStream {
    return { header: this.header!, devices: [...this.devices.values()], trailer: this.trailer! };
  }
}

function oneShotOptions(options: DecoderOptions): DecoderOptions {
  if (options.verifyOnly)
    throw new MigstreamError("USAGE", "decodeStream returns data; use verifyStream to check without decompressing");
  return { ...options, assemble: true, reuseOutput: false };
}

/**
 * Decodes a whole unkeyed stream held in memory, on this thread. zstd chunks
 * need `await init()` first (decodeStreamAsync does it). Throws the first
 * problem as a MigstreamError (where: byte offset, frame, field).
 */
export function decodeStream(bytes: Uint8Array, options: DecoderOptions = {}): DecodedStream {
  const dec = new StreamDecoder(oneShotOptions(options));
  const c = new Collector();
  for (const ev of dec.write(bytes)) c.add(ev);
  dec.finish();
  return c.result();
}

/** Decodes a whole stream as decodeStream does, keyed or not, from memory or an async source, with or without a pool. */
export async function decodeStreamAsync(
  source: Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: DecoderOptions = {},
): Promise<DecodedStream> {
  await init();
  const dec = new StreamDecoder(oneShotOptions(options));
  const c = new Collector();
  for await (const ev of dec.events(source instanceof Uint8Array ? [source] : source)) c.add(ev);
  return c.result();
}

/** Verifies a stream in memory without decompressing (sync; unkeyed): every check, returns the trailer, throws the first problem. */
export function verifyStream(bytes: Uint8Array, options: DecoderOptions = {}): StreamTrailer {
  const dec = new StreamDecoder({ ...options, verifyOnly: options.verifyOnly ?? true, assemble: false });
  let trailer: StreamTrailer | null = null;
  for (const ev of dec.write(bytes)) if (ev.type === "end") trailer = ev.trailer;
  dec.finish();
  return trailer!;
}
