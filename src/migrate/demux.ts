// One stream, several devices: decodes a multi-device stream once and hands
// each device its own resume items, so that every device's driver runs at its
// own pace (FORMAT.md §5.3: devices' frames interleave). Each device gets, in
// order, its protocol record (v1 when the stream has none), its phases and
// transactions, and `verified` only after the whole stream — every trailer,
// digest and MAC — checked.
//
// The stream ends at its verified STREAM_END, not at the end of the input
// (FORMAT.md §2), exactly as for one device (items.ts): every device gets
// `verified` at once, without waiting for the source to end — a network peer
// may hold its connection open for the answer — and input bytes already read
// past the end are counted (`onEnd`) for the caller to report.
//
// The head: a multi-device restore maps the stream's devices to its own
// before it touches any, so it reads the stream up to the first frame after
// the devices' DEVICE_BEGIN (and DEVICE_PROTOCOL) frames — our writer
// announces every device there — and refuses a device that begins later.
//
// Memory: a transaction is handed on once all its chunks verified, as its
// own buffer; a device slower than the stream holds at most `queueBytes` of
// them (at least one transaction) before the decoder waits for it
// (backpressure), so a slow device slows the reader and nothing more is held.
import { init } from "../codec/index.js";
import { MigstreamError } from "../errors.js";
import { type DecoderOptions, StreamDecoder } from "../format/decoder.js";
import type { DecodeEvent, StreamHeader } from "../format/types.js";
import type { MigrationProtocol, ResumeItem } from "../protocol/types.js";
import type { StreamEnd } from "./items.js";

/** Default bytes of transactions waiting for one device (see the file comment). */
export const DEVICE_QUEUE_BYTES = 4 << 20;

/** A device the stream announced at its head. */
export interface StreamDevice {
  id: number;
  name: string;
  metadata: Uint8Array;
  /** Its protocol record; undefined when it follows the head (it must come before the device's first phase). */
  protocol: MigrationProtocol | undefined;
}

/** The stream's header and the devices it announces before any device data, in DEVICE_BEGIN order. */
export interface StreamHead {
  header: StreamHeader;
  devices: StreamDevice[];
}

/** Options of StreamDemux: the decoder's (key, limits), an event tap, and how much may wait for one device. */
export interface StreamDemuxOptions extends Omit<DecoderOptions, "verifyOnly" | "assemble" | "reuseOutput"> {
  /** Called with every decoder event (inspection, statistics). */
  onEvent?: (ev: DecodeEvent) => void;
  /** Most bytes of transactions waiting for one device (default DEVICE_QUEUE_BYTES; one transaction always fits). */
  queueBytes?: number;
  /** Called once STREAM_END verified, before the devices get `verified`. */
  onEnd?: (end: StreamEnd) => void;
}

/** One device's items between the decoder and its driver. */
class DeviceQueue {
  readonly items: ResumeItem[] = [];
  bytes = 0;
  /** The protocol item went out (it precedes the device's first phase). */
  told = false;
  /** The driver stopped asking (return()): what follows is dropped. */
  gone = false;
  /** `verified` was queued: the items end after it. */
  closed = false;
  failure: unknown = null;
  #reader: { resolve(r: IteratorResult<ResumeItem>): void; reject(e: unknown): void } | null = null;
  #room: (() => void) | null = null;

  constructor(readonly limit: number) {}

  /** Queues one item; waits while the device holds `limit` bytes of transactions (and at least one). */
  async push(item: ResumeItem, halted: () => unknown): Promise<void> {
    if (this.gone) return;
    const size = item.kind === "transaction" ? item.data.length : 0;
    while (size > 0 && this.bytes > 0 && this.bytes + size > this.limit && !this.gone) {
      await new Promise<void>((resolve) => (this.#room = resolve));
      const stop = halted();
      if (stop !== null) throw stop;
    }
    if (this.gone) return;
    if (item.kind === "verified") this.closed = true;
    const r = this.#reader;
    if (r) {
      this.#reader = null;
      r.resolve({ done: false, value: item });
      return;
    }
    this.items.push(item);
    this.bytes += size;
  }

  next(): Promise<IteratorResult<ResumeItem>> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const item = this.items.shift();
    if (item !== undefined) {
      if (item.kind === "transaction") this.bytes -= item.data.length;
      this.#wakeWriter();
      return Promise.resolve({ done: false, value: item });
    }
    if (this.closed) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => (this.#reader = { resolve, reject }));
  }

  /** The driver is done with the items (it ended, or gave up). */
  leave(): void {
    this.gone = true;
    this.items.length = 0;
    this.bytes = 0;
    this.#reader?.resolve({ done: true, value: undefined });
    this.#reader = null;
    this.#wakeWriter();
  }

  fail(e: unknown): void {
    this.failure ??= e;
    this.#reader?.reject(this.failure);
    this.#reader = null;
    this.#wakeWriter();
  }

  #wakeWriter(): void {
    const w = this.#room;
    this.#room = null;
    w?.();
  }
}

/**
 * Decodes a multi-device stream into per-device resume items. Call `head()`
 * first, take each device's `items(id)`, then `run()` to decode the rest.
 */
export class StreamDemux {
  readonly #source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  readonly #options: StreamDemuxOptions;
  readonly #queues = new Map<number, DeviceQueue>();
  #events: AsyncGenerator<DecodeEvent> | null = null;
  /** The first event after the head, read ahead. */
  #held: DecodeEvent | null = null;
  #head: StreamHead | null = null;
  #failure: unknown = null;

  constructor(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: StreamDemuxOptions = {}) {
    this.#source = source;
    this.#options = options;
    const q = options.queueBytes ?? DEVICE_QUEUE_BYTES;
    if (!Number.isSafeInteger(q) || q < 0)
      throw new MigstreamError("USAGE", `queueBytes must be a whole number ≥ 0 (got ${q})`, { field: "queueBytes" });
  }

  /** Every decoder event of the stream, up to its verified STREAM_END (TRUNCATED if the input ends before). */
  async *#decode(): AsyncGenerator<DecodeEvent> {
    await init(); // kernels, and zstd where it loads (a stream may hold zstd chunks)
    const { onEvent, onEnd, queueBytes: _q, ...decoder } = this.#options;
    const dec = new StreamDecoder({ ...decoder, assemble: true, reuseOutput: false });
    let read = 0;
    for await (const piece of this.#source) {
      read += piece.length;
      for await (const ev of dec.writeAsync(piece)) {
        onEvent?.(ev);
        yield ev;
        // Complete and verified: what follows in the input is not ours to read.
        if (ev.type === "end") {
          onEnd?.({ streamBytes: dec.offset, trailingBytes: read - dec.offset });
          return;
        }
      }
    }
    dec.finish(); // TRUNCATED: the input ended before STREAM_END
    throw new MigstreamError("INTERNAL", "the decoder accepted an input that ended without STREAM_END");
  }

  /** The stream's error (or the abort's), once decoding stopped on one. */
  get failure(): unknown {
    return this.#failure;
  }

  /** Reads the stream up to its first frame after the devices' announcements. */
  async head(): Promise<StreamHead> {
    if (this.#head) return this.#head;
    this.#events = this.#decode();
    let header: StreamHeader | null = null;
    const devices: StreamDevice[] = [];
    try {
      for (;;) {
        const r = await this.#events.next();
        if (r.done) throw new MigstreamError("INTERNAL", "the decoder ended without STREAM_END");
        const ev = r.value;
        if (ev.type === "header") header = ev.header;
        else if (ev.type === "device")
          devices.push({ id: ev.device, name: ev.name, metadata: ev.metadata, protocol: undefined });
        else if (ev.type === "protocol") devices.find((d) => d.id === ev.device)!.protocol = ev.protocol;
        else if (ev.type !== "skipped") {
          this.#held = ev;
          break;
        }
      }
    } catch (e) {
      await this.#stop(e);
      throw e;
    }
    const held = this.#held;
    for (const d of devices) {
      const q = new DeviceQueue(this.#options.queueBytes ?? DEVICE_QUEUE_BYTES);
      this.#queues.set(d.id, q);
      if (d.protocol) {
        q.told = true;
        await q.push({ kind: "protocol", protocol: d.protocol }, () => null);
      } else if (held?.type === "end" || (held !== null && "device" in held && held.device === d.id)) {
        // No record before its first frame of data (or the stream's end): a v1 device (FORMAT.md §5.8).
        d.protocol = { generation: 1 };
      }
    }
    this.#head = { header: header!, devices };
    return this.#head;
  }

  /** Device `id`'s items (one reader per device). */
  items(id: number): AsyncIterable<ResumeItem> {
    const q = this.#queues.get(id);
    if (!q)
      throw new MigstreamError(
        "USAGE",
        `the stream's head announces no device ${id}${this.#head ? "" : " (call head() first)"}`,
        { device: id },
      );
    return {
      [Symbol.asyncIterator]: () => ({
        next: () => q.next(),
        return: async () => {
          q.leave();
          return { done: true, value: undefined };
        },
      }),
    };
  }

  /**
   * After `head()`: decodes until the stream delivered its first transaction,
   * verified (to any device), or its verified end — the stream proved itself
   * and a restore may enter its devices. Nothing waits for a device here: the
   * items so far (records, phases, one transaction) always fit the queues.
   * On the stream's error every device's items throw it, and so does this.
   */
  async proven(): Promise<void> {
    await this.#pump("proven", (ev) => ev.type === "transaction-end" || ev.type === "end");
  }

  /** The next decoder event (the one read ahead first), or null after the stream's end. */
  async #pull(): Promise<DecodeEvent | null> {
    const held = this.#held;
    if (held !== null) {
      this.#held = null;
      return held;
    }
    const r = await this.#events!.next();
    return r.done ? null : r.value;
  }

  /** Routes the stream's events to the devices up to the end, or up to the first one `enough` accepts. */
  async #pump(caller: string, enough: (ev: DecodeEvent) => boolean): Promise<void> {
    if (!this.#head || !this.#events) throw new MigstreamError("USAGE", `call head() before ${caller}()`);
    try {
      for (;;) {
        const ev = await this.#pull();
        if (ev === null) return;
        await this.#route(ev);
        if (this.#failure !== null) throw this.#failure;
        if (enough(ev)) return;
      }
    } catch (e) {
      await this.#stop(e);
      throw this.#failure;
    }
  }

  /**
   * Decodes the rest of the stream into the devices' items; resolves once
   * every device got `verified`. On the stream's error every device's items
   * throw it, and so does this.
   */
  async run(): Promise<void> {
    await this.#pump("run", () => false);
    // STREAM_END verified: now every device's state is verified.
    for (const q of this.#queues.values()) {
      if (!q.told) await q.push({ kind: "protocol", protocol: { generation: 1 } }, () => this.#failure);
      await q.push({ kind: "verified" }, () => this.#failure);
    }
  }

  /** Stops decoding: every device's items throw `e` (the first failure wins). */
  async abort(e: unknown): Promise<void> {
    await this.#stop(e);
  }

  async #stop(e: unknown): Promise<void> {
    if (this.#failure === null) this.#failure = e;
    for (const q of this.#queues.values()) q.fail(this.#failure);
    const ev = this.#events;
    this.#events = null;
    await ev?.return(undefined).catch(() => {});
  }

  async #route(ev: DecodeEvent): Promise<void> {
    const halted = () => this.#failure;
    switch (ev.type) {
      case "device":
        throw new MigstreamError(
          "USAGE",
          `device ${ev.device} ("${ev.name}") begins after other devices' data; a multi-device restore takes the devices a stream announces at its head (as \`migstream save\` writes them)`,
          { offset: ev.offset, frame: ev.frame, device: ev.device },
        );
      case "protocol": {
        const q = this.#queues.get(ev.device)!;
        q.told = true;
        await q.push({ kind: "protocol", protocol: ev.protocol }, halted);
        return;
      }
      case "phase": {
        const q = this.#queues.get(ev.device)!;
        if (!q.told) {
          q.told = true;
          await q.push({ kind: "protocol", protocol: { generation: 1 } }, halted);
        }
        await q.push({ kind: "phase", phase: ev.phase, iteration: ev.iteration }, halted);
        return;
      }
      case "transaction-end":
        await this.#queues.get(ev.device)!.push({ kind: "transaction", data: ev.data! }, halted);
        return;
      default:
        return;
    }
  }
}
