// Batching for the pool's chunk coders: chunks are copied into one buffer and
// sent to a worker together, so a message each way carries several chunks
// (on the reference VM a postMessage costs tens of µs, as much as coding a
// few KiB). A batch goes out when it is full, or at the end of the current
// task at the latest, so a caller that waits on its chunks never waits on a
// batch still gathering. Results come back in place, in the same buffer; once
// the caller releases every chunk of a batch its buffer is reused, so a
// steady stream allocates nothing.
//
// Held chunks (add with `hold`) are the exception: a producer whose chunks
// come one per task (a device's small transactions, each after a round trip)
// would otherwise send a batch per chunk, each too small to be worth a post
// (SMALL_BATCH_BYTES). A batch of held chunks keeps gathering across tasks
// until it is full, the owner calls flush() (before it waits on them), or
// HOLD_MS passed — so a held chunk is never stuck, only late by at most that.

import { MigstreamError } from "../errors.js";
import { type BatchResult, fromWireError } from "./jobs.js";

/** A batch is sent once its chunks reach this many bytes. */
const BATCH_BYTES = 1 << 20;
/** ...or this many chunks. */
export const BATCH_MAX_CHUNKS = 8;
/** Reusable batch buffers kept at most. */
const BATCH_SPARE_BUFFERS = 8;
/**
 * Encode batches below this many bytes are coded on the calling thread
 * instead of being posted (pool.ts): a post, its transfer and the reply cost
 * the calling thread 60–90 µs, and the worker a wake-up, about what coding
 * 64 KiB of LZ4 costs, so small batches gain nothing from a second thread and,
 * on a machine with as many cores as busy processes, lose its core to
 * contention. Measured (2 cores, `save -o` of 256 MiB from a sim serve device,
 * LZ4, 2 threads vs 1): 64 KiB transactions, one batch each — 3.89 s vs
 * 3.38 s wall, 3.67 s vs 2.47 s CPU; 256 KiB ones 3.15 s vs 3.53 s, 1 MiB
 * ones 1.83 s vs 1.87 s (the pool pays for itself from 256 KiB). Owned
 * buffers below it are gathered instead (poolCoder's encodeOwned, `hold`).
 */
export const SMALL_BATCH_BYTES = 256 << 10;
/** Longest a batch of held chunks waits for more before it goes out on its own (ms). */
export const HOLD_MS = 10;
/** Largest buffer `adopt` sends as one batch; a larger filled buffer is copied into batches (one worker per MiB keeps every thread busy). */
const ADOPT_MAX_BYTES = 2 * BATCH_BYTES;

/** Runs `fn` after the current task (setImmediate where there is one). */
export const afterTask: (fn: () => void) => void =
  typeof (globalThis as { setImmediate?: unknown }).setImmediate === "function"
    ? (fn) => (globalThis as unknown as { setImmediate(f: () => void): void }).setImmediate(fn)
    : (fn) => void setTimeout(fn, 0);

interface Waiter<T> {
  resolve(v: T): void;
  reject(e: unknown): void;
}

/** One batch being gathered: its buffer, where each chunk sits, who waits. */
interface Gathering<S, T, M> {
  buffer: ArrayBuffer;
  used: number;
  spans: S[];
  waiters: Waiter<T>[];
  /** Chunks of one batch share a key (e.g. codec and level)... */
  key: string;
  /** ...and what the owner decided when the batch began (e.g. auto's context). */
  meta: M;
  /** The end-of-task flush is scheduled (some chunk in it is not held). */
  atTaskEnd: boolean;
}

/**
 * Gathers chunks into batches and settles each chunk's promise from its
 * batch's result. `send` submits a batch; `item` turns one result item (and
 * the returned buffer) into what the caller gets.
 */
export class Batcher<S extends { offset: number }, T, M = undefined> {
  private current: Gathering<S, T, M> | null = null;
  private readonly spare: ArrayBuffer[] = [];
  /** Chunks of each returned buffer not yet released. */
  private readonly live = new WeakMap<ArrayBuffer, number>();
  /** Buffers handed out by lend() and not yet adopted. */
  private readonly lent = new WeakSet<ArrayBuffer>();

  constructor(
    private readonly maxChunks: number,
    private readonly send: (buffer: Uint8Array, spans: S[], meta: M) => Promise<BatchResult>,
    private readonly item: (result: BatchResult, index: number, span: S) => T,
  ) {}

  /**
   * Adds a chunk taking `room` bytes, filled by `fill(buffer view)` now (the
   * caller's bytes are copied before add returns). Batches hold one `key`;
   * `meta` is called when a new batch begins. `hold`: the chunk may wait
   * beyond this task for others to join its batch (see the file comment);
   * the caller calls flush() before it waits on it.
   */
  add(
    room: number,
    key: string,
    span: (offset: number) => S,
    fill: (into: Uint8Array) => void,
    meta: () => M,
    hold = false,
  ): Promise<T> {
    let b = this.current;
    if (b !== null && (b.key !== key || b.used + room > b.buffer.byteLength || b.spans.length >= this.maxChunks)) {
      this.flush();
      b = null;
    }
    if (b === null) {
      b = {
        buffer: this.take(Math.max(BATCH_BYTES, room)),
        used: 0,
        spans: [],
        waiters: [],
        key,
        meta: meta(),
        atTaskEnd: false,
      };
      this.current = b;
      if (hold) {
        // Referenced: held chunks keep the process alive until they are sent (HOLD_MS at most).
        const mine = b;
        setTimeout(() => {
          if (this.current === mine) this.flush();
        }, HOLD_MS);
      }
    }
    if (!hold && !b.atTaskEnd) {
      b.atTaskEnd = true;
      const mine = b;
      afterTask(() => {
        if (this.current === mine) this.flush();
      });
    }
    const offset = b.used;
    fill(new Uint8Array(b.buffer, offset, room));
    b.used += room;
    b.spans.push(span(offset));
    const p = new Promise<T>((resolve, reject) => b.waiters.push({ resolve, reject }));
    if (b.used >= BATCH_BYTES || b.spans.length >= this.maxChunks) this.flush();
    return p;
  }

  /** A buffer of at least n bytes for the caller to fill and pass to adopt() (its own, not shared with any batch). */
  lend(n: number): Uint8Array {
    const buf = this.take(Math.max(BATCH_BYTES, n));
    this.lent.add(buf);
    return new Uint8Array(buf, 0, n);
  }

  /**
   * True when `view` (filled by the caller) can go out whole as one batch
   * of `chunks` chunks: it starts a buffer from lend(), small enough.
   */
  adoptable(view: Uint8Array, chunks: number): boolean {
    return (
      view.byteOffset === 0 &&
      this.lent.has(view.buffer as ArrayBuffer) &&
      view.length <= ADOPT_MAX_BYTES &&
      chunks <= 2 * this.maxChunks
    );
  }

  /**
   * Sends a lent buffer as one batch, without a copy: `spans` lie in `view`.
   * Returns each chunk's promise, in order. The buffer now belongs to the batcher.
   */
  adopt(view: Uint8Array, spans: S[], meta: M): Promise<T>[] {
    const buf = view.buffer as ArrayBuffer;
    if (!this.lent.delete(buf)) throw new MigstreamError("INTERNAL", "adopt: the buffer was not lent by this batcher");
    this.flush(); // stream order: what gathered before goes first
    const b: Gathering<S, T, M> = {
      buffer: buf,
      used: view.length,
      spans,
      waiters: [],
      key: "",
      meta,
      atTaskEnd: true,
    };
    const out = spans.map(() => new Promise<T>((resolve, reject) => b.waiters.push({ resolve, reject })));
    this.current = b;
    this.flush();
    return out;
  }

  /** True while a batch is being gathered (it goes out when full, at the end of the task, or held: see the header). */
  get gathering(): boolean {
    return this.current !== null;
  }

  /**
   * Takes back a lent buffer whose bytes the caller copied into batches
   * (add) instead of having it adopted: it is reused like a returned batch's.
   */
  reclaim(view: Uint8Array): void {
    const buf = view.buffer as ArrayBuffer;
    if (!this.lent.delete(buf))
      throw new MigstreamError("INTERNAL", "reclaim: the buffer was not lent by this batcher");
    if (this.spare.length < BATCH_SPARE_BUFFERS) this.spare.push(buf);
  }

  /** Sends the batch being gathered, if any. */
  flush(): void {
    const b = this.current;
    if (b === null) return;
    this.current = null;
    let sent: Promise<BatchResult>;
    try {
      sent = this.send(new Uint8Array(b.buffer, 0, b.used), b.spans, b.meta);
    } catch (e) {
      sent = Promise.reject(e);
    }
    sent.then(
      (r) => this.settle(b, r),
      (e) => {
        for (const w of b.waiters) w.reject(e);
      },
    );
  }

  /** The caller is done with a chunk it got: once all of a batch's are, its buffer is reused. */
  release(view: Uint8Array): void {
    const buf = view.buffer as ArrayBuffer;
    const n = this.live.get(buf);
    if (n === undefined) return;
    if (n > 1) this.live.set(buf, n - 1);
    else {
      this.live.delete(buf);
      if (this.spare.length < BATCH_SPARE_BUFFERS) this.spare.push(buf);
    }
  }

  private settle(b: Gathering<S, T, M>, r: BatchResult): void {
    const buf = r.buffer.buffer as ArrayBuffer;
    const good = Math.min(r.items.length, b.spans.length);
    if (good > 0) this.live.set(buf, good);
    for (let i = 0; i < b.waiters.length; i++) {
      if (i < good) {
        try {
          b.waiters[i].resolve(this.item(r, i, b.spans[i]));
        } catch (e) {
          b.waiters[i].reject(e);
        }
      } else if (r.failed !== undefined) {
        // The failed chunk, and the ones after it that were never coded.
        b.waiters[i].reject(fromWireError(r.failed.error));
      } else {
        b.waiters[i].reject(
          new MigstreamError("INTERNAL", `batch came back with ${r.items.length} of ${b.spans.length} chunks`),
        );
      }
    }
  }

  private take(n: number): ArrayBuffer {
    for (let i = this.spare.length - 1; i >= 0; i--) {
      if (this.spare[i].byteLength >= n) return this.spare.splice(i, 1)[0];
    }
    return new ArrayBuffer(n);
  }
}
