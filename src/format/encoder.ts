// The stream encoder (FORMAT.md §12): devices, phases and transactions in;
// stream bytes out. StreamEncoder is the streaming class (awaits `write`, so a
// slow consumer slows the producer; keyed streams are authenticated with
// WebCrypto); encodeStream / encodeStreamAsync are the one-shot forms.
//
// Chunks are coded on this thread (inline.ts), or with the `pool` option on
// a pool's threads (a ChunkCoder, chunk-coders.ts) and framed here in stream
// order: the same bytes either way.
//
// Memory: one output block (OUTPUT_BLOCK_SIZE, or one frame if larger; with
// dedup coded inline, the blocks of one transaction staged in kernel memory,
// at most DEDUP_STAGE_MAX of input), the chunks in flight in a ChunkCoder
// (CODER_IN_FLIGHT) and each device's dedup index (at most dedupWindow bytes);
// never the whole stream.

import { type CodedChunk, screenChunk } from "../codec/coder.js";
import { init } from "../codec/index.js";
import { isMigstreamError, MigstreamError } from "../errors.js";
import type { MigrationProtocol, Phase } from "../protocol/types.js";
import { type EncoderStats, FrameBuilder } from "./builder.js";
import { concat, plain } from "./bytes.js";
import type { ChunkCoder } from "./chunk-coders.js";
import { arraySource } from "./chunking.js";
import { ChunkCoding, checkCoded, checkDeviceId, DeviceState, nameBytes } from "./encoder-device.js";
import { declared, type EncoderOptions, intOption, type Settings, settings, survey, usage } from "./encoder-options.js";
import { type Protection, protectionFor } from "./protection.js";
import type { DeviceInfo, DeviceInput, DeviceTrailer, StreamTrailer } from "./types.js";

export type { EncoderOptions, EncoderStats };

/** Chunks a ChunkCoder may hold at once (submitted, not yet framed): 8 batches of 1 MiB, so the calling thread can code ahead while a worker holds the oldest (2 threads: 3–5% faster than 16 on lz4 and zstd-1). */
export const CODER_IN_FLIGHT = 32;

/** One device of a StreamEncoder; structurally a SaveSink (src/protocol/types.ts). */
export interface DeviceWriter {
  /**
   * Records which VFIO migration protocol produced the data (FORMAT.md §5.8):
   * a DEVICE_PROTOCOL frame for v2, nothing for v1. Before the first phase only.
   */
  protocol(p: MigrationProtocol): Promise<void>;
  /** Records a phase change; resolves once everything framed so far is written. */
  phase(phase: Phase, iteration: number): Promise<void>;
  /**
   * Frames one transaction. `data` may be reused by the caller once the
   * promise settles — except a buffer from `buffer()`, which the encoder
   * takes over. Output is written in blocks of OUTPUT_BLOCK_SIZE: the last,
   * partial one at the next phase(), end() or finish().
   */
  transaction(data: Uint8Array): Promise<void>;
  /**
   * Zero copy: a buffer of `size` bytes to read the next transaction's data
   * into and pass to transaction(), which takes it over (the coder's workers
   * get it without a copy). Do not touch it after. Present only when the
   * coder can lend (a pool coder), absent when coding inline.
   */
  buffer?(size: number): Uint8Array;
  /** DEVICE_END; resolves with the device trailer once everything is written. */
  end(): Promise<DeviceTrailer>;
}

/** A frame-building step queued behind chunks still being coded. */
interface Job {
  chunk: Promise<CodedChunk> | null;
  run(c: CodedChunk | null): void;
  ran(): void;
  failed(e: unknown): void;
}

const nothing = () => {};

/**
 * The streaming encoder: devices (phases, transactions) in, stream bytes out
 * to `write`, in order. Devices may interleave; each device's calls are
 * awaited one at a time. A failure sticks: later calls throw it again.
 */
export class StreamEncoder {
  private readonly s: Settings;
  private readonly b: FrameBuilder;
  /** Inline coding (no pool). */
  private readonly inline: ChunkCoding | null;
  /** Coding on the pool's threads. */
  private readonly coder: ChunkCoder | null;
  private readonly write: (bytes: Uint8Array) => void | Promise<void>;
  private readonly devices = new Map<number, DeviceState>();
  /** Buffers handed over whole (zero copy): passing one again is a caller's bug, not an empty transaction. */
  private readonly handedOver = new WeakSet<ArrayBufferLike>();
  private readonly started: Promise<Protection | null>;
  private writing: Promise<void> = Promise.resolve();
  private failure: unknown = null;
  private finished = false;
  // Coder pipeline (only with a pool).
  private readonly queue: Job[] = [];
  private pumping = false;
  private waiters: (() => void)[] = [];

  /**
   * Starts a stream whose bytes go to `write`, in order; a write that returns
   * a promise is awaited before the next (backpressure), and a rejection
   * fails the encoder. Throws USAGE (or LIMIT) for bad options.
   */
  constructor(write: (bytes: Uint8Array) => void | Promise<void>, options: EncoderOptions = {}) {
    if (typeof write !== "function") throw usage("write must be a function");
    this.s = settings(options, null);
    this.write = this.s.sink?.wrap(write) ?? write;
    this.b = new FrameBuilder(this.s.fields, this.s.reuseOutput);
    this.coder = this.s.pool?.coder() ?? null;
    this.inline = this.coder === null ? new ChunkCoding(this.s) : null;
    const s = this.s;
    const headerBytes = this.b.headerBytes;
    const codec = s.coding.codec;
    const inline = this.coder === null;
    const header = this.b.header;
    this.started = (async () => {
      if (inline) await init({ zstd: codec === "zstd" || codec === "auto" });
      return s.key === null ? null : protectionFor(s.key, header, headerBytes, s.binding);
    })();
    this.started.catch(() => {});
  }

  get stats(): EncoderStats {
    return this.b.stats;
  }

  /** The stream header (its bytes start the output). */
  get header() {
    return this.b.header;
  }

  private check(): void {
    if (this.failure !== null) throw this.failure;
    if (this.finished) throw usage("the stream is finished");
  }

  private fail(e: unknown): never {
    this.failure ??= e;
    this.b.dispose();
    this.inline?.free();
    for (const d of this.devices.values()) d.index?.free();
    for (const w of this.waiters.splice(0)) w();
    throw e;
  }

  /** Writes finished output blocks (all output with `all`), in order, after their MAC tags. */
  private flush(all: boolean): Promise<void> {
    const { blocks, tags } = this.b.take(all);
    if (blocks.length === 0) return this.writing;
    this.writing = this.writing.then(async () => {
      if (this.failure !== null) throw this.failure;
      try {
        const p = await this.started;
        if (p !== null) await p.seal(tags);
        for (const blk of blocks) {
          await this.write(blk);
          this.b.recycle(blk);
        }
      } catch (e) {
        this.failure ??= e;
        throw e;
      }
    });
    return this.writing;
  }

  /**
   * Runs a frame step now (inline coding) or after the chunks queued before
   * it; the coder sends what it holds, since the step's caller waits for it
   * (except a transaction's own record, `held`: its chunks follow it).
   */
  private step(run: () => void, held = false): Promise<void> {
    if (this.coder === null) {
      run();
      return Promise.resolve();
    }
    const p = new Promise<void>((ran, failed) => this.enqueue({ chunk: null, run: () => run(), ran, failed }));
    if (!held) this.coder.flush?.();
    return p;
  }

  private enqueue(j: Job): void {
    this.queue.push(j);
    if (!this.pumping) void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      for (;;) {
        while (this.queue.length > 0) {
          const j = this.queue[0];
          const c = j.chunk === null ? null : await j.chunk;
          if (this.failure !== null) throw this.failure;
          j.run(c);
          this.queue.shift();
          j.ran();
          for (const w of this.waiters.splice(0)) w();
          if (this.b.hasFullBlocks) await this.flush(false);
        }
        await this.flush(false);
        if (this.queue.length === 0) break;
      }
    } catch (e) {
      this.failure ??= e;
      this.b.dispose();
      for (const j of this.queue.splice(0)) j.failed(e);
      for (const w of this.waiters.splice(0)) w();
    } finally {
      this.pumping = false;
    }
  }

  /** Chunks the coder pipeline may hold: CODER_IN_FLIGHT, fewer while auto waits for its first measurement of the sink. */
  private inFlightLimit(): number {
    return this.s.sink?.inFlight(CODER_IN_FLIGHT) ?? CODER_IN_FLIGHT;
  }

  /** Waits until the coder pipeline has room for one more chunk. */
  private async room(): Promise<void> {
    while (this.queue.length >= this.inFlightLimit()) {
      this.coder?.flush?.(); // the chunks it holds are what the pipeline waits for
      await new Promise<void>((w) => this.waiters.push(w));
      if (this.failure !== null) throw this.failure;
    }
  }

  /** Writes all output framed so far (call after the step of interest ran). */
  private async settle(): Promise<void> {
    await this.flush(true);
    if (this.failure !== null) throw this.failure;
  }

  /** Starts a device (DEVICE_BEGIN). Devices may interleave; ids 0..65535, unique. */
  device(id: number, info?: DeviceInfo): DeviceWriter {
    this.check();
    const n = checkDeviceId(id, this.devices, this.s);
    const { name, metadata } = nameBytes(info, this.s);
    const d = new DeviceState(n, this.s);
    this.devices.set(n, d);
    const meta = metadata.slice();
    this.step(() => this.b.deviceBegin(n, name, meta)).catch(() => {});
    const coder = this.coder;
    const writer: DeviceWriter = {
      protocol: (p) => this.protocol(d, p),
      phase: (phase, iteration) => this.phase(d, phase, iteration),
      transaction: (data) => this.transaction(d, data),
      end: () => this.end(d),
    };
    if (coder?.lend !== undefined && coder.encodeOwned !== undefined) writer.buffer = (size) => this.lend(coder, size);
    return writer;
  }

  private async guarded<T>(d: DeviceState, body: () => Promise<T>): Promise<T> {
    d.busy = true;
    try {
      return await body();
    } catch (e) {
      this.fail(e);
    } finally {
      d.busy = false;
    }
  }

  /** DEVICE_PROTOCOL for a v2 device; v1 is recorded by its absence. Only before the first phase. */
  private async protocol(d: DeviceState, p: MigrationProtocol): Promise<void> {
    this.check();
    d.checkProtocol(p);
    if (p.generation !== 2) return;
    await this.guarded(d, async () => {
      await this.step(() => this.b.deviceProtocol(d.id, p));
      await this.settle();
    });
  }

  private async phase(d: DeviceState, phase: Phase, iteration: number): Promise<void> {
    this.check();
    const code = d.checkPhase(phase, iteration);
    d.commitPhase(code, iteration);
    await this.guarded(d, async () => {
      await this.step(() => this.b.phase(d.id, code, iteration));
      await this.settle();
    });
  }

  private lend(coder: ChunkCoder, size: number): Uint8Array {
    intOption(size, "size", 0, this.s.fields.maxTransaction);
    const view = coder.lend!(size);
    // A coder may lend a buffer again once it copied its bytes (encodeOwned): handed out anew, it may be passed anew.
    this.handedOver.delete(view.buffer);
    return view;
  }

  private async transaction(d: DeviceState, input: Uint8Array): Promise<void> {
    this.check();
    d.checkTransaction(input, this.s.fields.maxTransaction);
    if (this.handedOver.has(input.buffer))
      throw usage(
        `device ${d.id}: this buffer was taken over by an earlier transaction (get a new one from buffer())`,
        "data",
      );
    const data = plain(input);
    await this.guarded(d, async () => {
      await this.started;
      const size = data.length;
      if (this.coder === null) {
        const inline = this.inline!;
        const src = inline.source(data);
        const units = d.plan(src);
        this.b.transaction(d.id, size, units.length);
        let start = 0;
        for (const u of units) {
          inline.code(this.b, d, src, start, u.end, u.facts);
          start = u.end;
          // A staged source is shared by the encoder's devices: no awaiting before the last unit.
          if (this.b.hasFullBlocks && src.shared !== true) {
            await this.flush(false);
            if (this.failure !== null) throw this.failure;
          }
        }
        // Full blocks only: a partial one waits for more frames, phase(), end() or finish().
        await this.flush(false);
        return;
      }
      const coder = this.coder;
      const units = d.plan(arraySource(data));
      this.step(() => this.b.transaction(d.id, size, units.length), true).catch(nothing); // a failure surfaces through the chunks
      if (d.index === null && units.length > 0 && (await this.owned(d, data, units))) return;
      let start = 0;
      for (const u of units) {
        const end = u.end;
        await this.room();
        const raw = data.subarray(start, end);
        // The coding rule's ZERO and dedup steps run here, in stream order; the rest on the pool.
        const screened = d.index === null ? null : screenChunk(raw, d.index, u.facts);
        const coded = screened !== null && typeof screened !== "bigint";
        let chunk: Promise<CodedChunk>;
        if (coded) chunk = Promise.resolve(screened);
        else {
          const hash = screened;
          chunk = coder.encode(raw, this.s.coding, this.autoContext()).then((c) => checkCoded(c, raw.length, hash));
          chunk.catch(() => {});
        }
        const run = (c: CodedChunk | null) => {
          this.b.chunk(d.id, c!);
          if (!coded) coder.release?.(c!); // framed (copied): the coder may reuse its payload
        };
        this.enqueue({ chunk, run, ran: nothing, failed: nothing });
        start = end;
      }
      if (this.failure !== null) throw this.failure;
    });
  }

  /**
   * Zero copy: hands a buffer lent by the coder over whole (its chunks coded
   * in place on a worker). False when the coder declines: code chunk by chunk.
   */
  private async owned(d: DeviceState, data: Uint8Array, units: readonly { end: number }[]): Promise<boolean> {
    const coder = this.coder!;
    if (coder.encodeOwned === undefined) return false;
    await this.room();
    const spans = units.map((u, i) => {
      const offset = i === 0 ? 0 : units[i - 1].end;
      return { offset, length: u.end - offset };
    });
    const buffer = data.buffer;
    const chunks = coder.encodeOwned(data, spans, this.s.coding, this.autoContext());
    if (chunks === null) return false;
    this.handedOver.add(buffer);
    if (chunks.length !== spans.length)
      throw new MigstreamError("INTERNAL", `the chunk coder returned ${chunks.length} chunks for ${spans.length}`);
    for (let i = 0; i < spans.length; i++) {
      const n = spans[i].length;
      const chunk = chunks[i].then((c) => checkCoded(c, n, null));
      chunk.catch(() => {});
      const run = (c: CodedChunk | null) => {
        this.b.chunk(d.id, c!);
        coder.release?.(c!);
      };
      this.enqueue({ chunk, run, ran: nothing, failed: nothing });
    }
    if (this.failure !== null) throw this.failure;
    return true;
  }

  /** auto's context for chunks coded on the pool now (undefined for other codecs). */
  private autoContext() {
    return this.s.sink?.context(this.s.pool!.threads);
  }

  private async end(d: DeviceState): Promise<DeviceTrailer> {
    this.check();
    d.checkEnd();
    d.ended = true;
    return this.guarded(d, async () => {
      let t: DeviceTrailer | null = null;
      await this.step(() => {
        t = this.b.deviceEnd(d.id);
      });
      await this.settle();
      return t!;
    });
  }

  /**
   * Writes out everything given so far — chunks still being coded are waited
   * for, and a partial output block goes out too — instead of waiting for a
   * full block or the next phase. A network source does this after its first
   * transaction, so that the destination sees data (and can prove the stream)
   * at once, however slowly the device fills the first block.
   */
  async writeOut(): Promise<void> {
    this.check();
    await this.step(() => {});
    await this.settle();
  }

  /** Ends the stream (STREAM_END) and writes everything; every device must have ended. */
  async finish(): Promise<StreamTrailer> {
    this.check();
    for (const d of this.devices.values()) {
      if (!d.ended) throw usage(`device ${d.id} has not ended`);
      if (d.busy) throw usage(`device ${d.id} is still ending (await its end())`);
    }
    this.finished = true;
    try {
      let t: StreamTrailer | null = null;
      await this.step(() => {
        t = this.b.streamEnd();
        this.inline?.free();
        for (const d of this.devices.values()) d.index?.free();
      });
      await this.settle();
      return t!;
    } catch (e) {
      this.failure ??= e;
      throw e;
    }
  }
}

/**
 * The order the one-shot encoders emit: every DEVICE_BEGIN in input order,
 * then rounds — in round r each device, in input order, gives its item r, or
 * its DEVICE_END in the round after its last item — then STREAM_END.
 */
function* schedule(devices: DeviceInput[]): Generator<{ d: number; item: number }> {
  const rounds = Math.max(0, ...devices.map((d) => d.items.length)) + 1;
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < devices.length; i++) if (r <= devices[i].items.length) yield { d: i, item: r };
  }
}

/**
 * Encodes devices held in memory into one stream (synchronous, unkeyed, coded
 * on this thread). zstd and auto need `await init()` first. Throws USAGE for
 * bad input or options, LIMIT where they exceed the format's limits.
 */
export function encodeStream(devices: DeviceInput[], options: EncoderOptions = {}): Uint8Array {
  if (options.key !== undefined) {
    throw usage("authenticated streams need encodeStreamAsync (WebCrypto is asynchronous)", "key");
  }
  if (options.pool !== undefined)
    throw usage("encodeStream codes on this thread; use encodeStreamAsync with a pool", "pool");
  const s = settings(options, survey(devices));
  const b = new FrameBuilder(s.fields);
  const coding = new ChunkCoding(s);
  const order: DeviceState[] = [];
  try {
    const states = new Map<number, DeviceState>();
    for (const d of devices) {
      const id = checkDeviceId(d.id, states, s);
      const { name, metadata } = nameBytes(d, s);
      const st = new DeviceState(id, s);
      states.set(id, st);
      order.push(st);
      b.deviceBegin(id, name, metadata);
      if (d.protocol !== undefined) {
        st.checkProtocol(d.protocol);
        if (d.protocol.generation === 2) b.deviceProtocol(id, d.protocol);
      }
    }
    for (const { d, item } of schedule(devices)) {
      const st: DeviceState = order[d];
      const items = devices[d].items;
      if (item === items.length) {
        st.checkEnd();
        b.deviceEnd(st.id);
        st.ended = true;
        continue;
      }
      const it = items[item];
      if (it?.kind === "phase") {
        const code = st.checkPhase(it.phase, it.iteration);
        st.commitPhase(code, it.iteration);
        b.phase(st.id, code, it.iteration);
      } else if (it?.kind === "transaction") {
        st.checkTransaction(it.data, s.fields.maxTransaction);
        const data = plain(it.data);
        const src = coding.source(data);
        const units = st.plan(src);
        b.transaction(st.id, data.length, units.length);
        let start = 0;
        for (const u of units) {
          coding.code(b, st, src, start, u.end, u.facts);
          start = u.end;
        }
      } else {
        throw usage(`device ${st.id} item ${item} is neither a phase nor a transaction`, "items");
      }
    }
    b.streamEnd();
    coding.free();
    for (const st of order) st.index?.free();
    return concat(b.take(true).blocks);
  } catch (e) {
    b.dispose();
    coding.free();
    for (const st of order) st.index?.free();
    if (isMigstreamError(e)) throw e;
    throw new MigstreamError("INTERNAL", `encoding failed: ${String(e)}`, { cause: e });
  }
}

/** Encodes devices held in memory into one stream, as encodeStream does; keyed streams and pools too. */
export async function encodeStreamAsync(devices: DeviceInput[], options: EncoderOptions = {}): Promise<Uint8Array> {
  const known = survey(devices);
  const parts: Uint8Array[] = [];
  const enc = new StreamEncoder((b) => void parts.push(b), { ...options, ...declared(options, known) });
  // Each device's DEVICE_PROTOCOL right after its DEVICE_BEGIN, as encodeStream writes it.
  const writers: DeviceWriter[] = [];
  for (const d of devices) {
    const w = enc.device(d.id, d);
    writers.push(w);
    if (d.protocol !== undefined) await w.protocol(d.protocol);
  }
  for (const { d, item } of schedule(devices)) {
    const items = devices[d].items;
    if (item === items.length) {
      await writers[d].end();
      continue;
    }
    const it = items[item];
    if (it?.kind === "phase") await writers[d].phase(it.phase, it.iteration);
    else if (it?.kind === "transaction") await writers[d].transaction(it.data);
    else throw usage(`device ${d} item ${item} is neither a phase nor a transaction`, "items");
  }
  await enc.finish();
  return concat(parts);
}
