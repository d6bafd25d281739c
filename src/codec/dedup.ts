// Deduplication of repeated chunks within a bounded window.
//
// Both sides keep the same window, driven only by the sequence of recorded
// chunk lengths, so the encoder never names a chunk the decoder has dropped:
//  - Every recorded chunk gets the next ordinal: 0, 1, 2, ... (`add` returns it).
//    Encoder and decoder must record the same chunks in the same order (the
//    stream format says which; e.g. every chunk carried as data, not ZERO ones
//    and not references) and resolve a reference before recording anything else.
//  - A chunk costs max(length, DEDUP_ENTRY_MIN_COST) bytes of window. After
//    each `add`, the oldest chunks are dropped while the summed cost of the
//    kept ones exceeds windowBytes (a chunk costing more than the whole window
//    is dropped at once). Ordinal k is live iff oldest <= k < next.
// Memory: at most windowBytes of chunk copies, and at most
// windowBytes / DEDUP_ENTRY_MIN_COST entries of bookkeeping.

import { MigstreamError } from "../errors.js";

/** Largest window a stream may declare (decoders refuse more). */
export const MAX_DEDUP_WINDOW = 1 << 30;
/** Window cost floor of one chunk: bounds the entry count of tiny chunks. */
export const DEDUP_ENTRY_MIN_COST = 256;
/** Size of a DEDUP_REF payload: the referenced ordinal, u64 little-endian. */
export const DEDUP_REF_SIZE = 8;

export function dedupCost(length: number): number {
  return Math.max(length, DEDUP_ENTRY_MIN_COST);
}

function checkWindow(windowBytes: number): void {
  if (!Number.isInteger(windowBytes) || windowBytes < 0) {
    throw new MigstreamError("USAGE", `dedup window must be a non-negative integer, got ${windowBytes}`);
  }
  if (windowBytes > MAX_DEDUP_WINDOW) {
    throw new MigstreamError("LIMIT", `dedup window of ${windowBytes} bytes exceeds ${MAX_DEDUP_WINDOW}`, {
      field: "dedupWindow",
    });
  }
}

/** The shared eviction rule: a FIFO of live chunks with their costs. */
class Window<T> {
  readonly windowBytes: number;
  /** Ordinal of items[head]; the oldest live chunk. */
  oldest = 0;
  /** Ordinal the next `record` returns. */
  next = 0;
  /** Summed cost of the live chunks. */
  bytes = 0;
  private items: (T | undefined)[] = [];
  private costs: number[] = [];
  private head = 0;

  constructor(windowBytes: number) {
    checkWindow(windowBytes);
    this.windowBytes = windowBytes;
  }

  /** Records a chunk of `length` bytes; `make` builds its entry unless it is dropped at once. */
  record(length: number, make: () => T, drop: (item: T, ordinal: number) => void): number {
    const ordinal = this.next++;
    const cost = dedupCost(length);
    if (cost > this.windowBytes) {
      // It would push out everything and then itself.
      while (this.oldest < ordinal) this.evict(drop);
      this.oldest = this.next;
      return ordinal;
    }
    this.items.push(make());
    this.costs.push(cost);
    this.bytes += cost;
    while (this.bytes > this.windowBytes) this.evict(drop);
    return ordinal;
  }

  private evict(drop: (item: T, ordinal: number) => void): void {
    const item = this.items[this.head] as T;
    this.bytes -= this.costs[this.head];
    this.items[this.head] = undefined;
    this.head++;
    drop(item, this.oldest++);
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.costs = this.costs.slice(this.head);
      this.head = 0;
    }
  }

  live(ordinal: number): boolean {
    return ordinal >= this.oldest && ordinal < this.next;
  }

  at(ordinal: number): T {
    return this.items[this.head + (ordinal - this.oldest)] as T;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  const n = a.length;
  if (n !== b.length) return false;
  let i = 0;
  if (((a.byteOffset | b.byteOffset) & 3) === 0) {
    // Word at a time when both are 4-byte aligned.
    const wa = new Int32Array(a.buffer, a.byteOffset, n >>> 2);
    const wb = new Int32Array(b.buffer, b.byteOffset, n >>> 2);
    for (let w = 0; w < wa.length; w++) if (wa[w] !== wb[w]) return false;
    i = n & ~3;
  }
  for (; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

interface IndexEntry {
  bytes: Uint8Array;
  hash: bigint;
}

/** Encoder side: finds an earlier identical chunk that the decoder still holds. */
export class DedupIndex {
  private readonly window: Window<IndexEntry>;
  /** hash -> live ordinals with that hash, oldest first. */
  private readonly byHash = new Map<bigint, number[]>();

  constructor(windowBytes: number) {
    this.window = new Window<IndexEntry>(windowBytes);
  }

  get windowBytes(): number {
    return this.window.windowBytes;
  }
  /** Oldest live ordinal, next ordinal and live cost (for diagnostics and tests). */
  get oldest(): number {
    return this.window.oldest;
  }
  get next(): number {
    return this.window.next;
  }
  get bytes(): number {
    return this.window.bytes;
  }

  /** Ordinal of a live chunk equal to `chunk` (newest first), or -1. Bytes are compared, never only hashes. */
  find(chunk: Uint8Array, hash: bigint): number {
    const list = this.byHash.get(hash);
    if (list === undefined) return -1;
    for (let i = list.length - 1; i >= 0; i--) {
      if (sameBytes(this.window.at(list[i]).bytes, chunk)) return list[i];
    }
    return -1;
  }

  /** Records `chunk` (copied) under `hash`; returns its ordinal. */
  add(chunk: Uint8Array, hash: bigint): number {
    let stored = false;
    const ordinal = this.window.record(
      chunk.length,
      () => {
        stored = true;
        return { bytes: chunk.slice(), hash };
      },
      (item, ord) => this.unlink(item.hash, ord),
    );
    if (stored) {
      const list = this.byHash.get(hash);
      if (list === undefined) this.byHash.set(hash, [ordinal]);
      else list.push(ordinal);
    }
    return ordinal;
  }

  private unlink(hash: bigint, ordinal: number): void {
    const list = this.byHash.get(hash);
    if (list === undefined) return;
    // Evictions go oldest first, so the ordinal is at the front.
    if (list[0] === ordinal) list.shift();
    else list.splice(list.indexOf(ordinal), 1);
    if (list.length === 0) this.byHash.delete(hash);
  }
}

/** Decoder side: keeps exactly the window of decoded chunks the encoder assumed. */
export class DedupWindow {
  private readonly window: Window<Uint8Array>;

  constructor(windowBytes: number) {
    this.window = new Window<Uint8Array>(windowBytes);
  }

  get windowBytes(): number {
    return this.window.windowBytes;
  }
  get oldest(): number {
    return this.window.oldest;
  }
  get next(): number {
    return this.window.next;
  }
  get bytes(): number {
    return this.window.bytes;
  }

  /** Records a decoded chunk (copied); returns its ordinal. */
  add(chunk: Uint8Array): number {
    return this.window.record(
      chunk.length,
      () => chunk.slice(),
      () => {},
    );
  }

  /**
   * The chunk recorded as `ordinal` (do not modify it). Throws FORMAT for an
   * ordinal never recorded, LIMIT for one already dropped from the window.
   */
  get(ordinal: number): Uint8Array {
    if (!Number.isSafeInteger(ordinal) || ordinal < 0 || ordinal >= this.window.next) {
      throw new MigstreamError("FORMAT", `dedup reference to chunk ${ordinal}, which was never recorded`, {
        field: "dedupRef",
      });
    }
    if (ordinal < this.window.oldest) {
      throw new MigstreamError("LIMIT", `dedup reference to chunk ${ordinal}, already outside the window`, {
        field: "dedupRef",
      });
    }
    return this.window.at(ordinal);
  }
}

/** The payload of a DEDUP_REF chunk naming `ordinal`. */
export function encodeDedupRef(ordinal: number): Uint8Array {
  if (!Number.isSafeInteger(ordinal) || ordinal < 0) {
    throw new MigstreamError("USAGE", `dedup ordinal must be a non-negative safe integer, got ${ordinal}`);
  }
  const p = new Uint8Array(DEDUP_REF_SIZE);
  new DataView(p.buffer).setBigUint64(0, BigInt(ordinal), true);
  return p;
}

/** The ordinal named by a DEDUP_REF payload, or throws CODEC. */
export function decodeDedupRef(payload: Uint8Array): number {
  if (payload.length !== DEDUP_REF_SIZE) {
    throw new MigstreamError("CODEC", `dedup reference has ${payload.length} bytes, expected ${DEDUP_REF_SIZE}`);
  }
  const v = new DataView(payload.buffer, payload.byteOffset, DEDUP_REF_SIZE).getBigUint64(0, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new MigstreamError("CODEC", `dedup reference ordinal ${v} is out of range`);
  }
  return Number(v);
}

/**
 * Resolves a DEDUP_REF chunk: the referenced chunk, which must have exactly
 * rawLength bytes (CODEC otherwise), copied into `into` when given.
 */
export function resolveDedupRef(window: DedupWindow, payload: Uint8Array, rawLength: number, into?: Uint8Array): Uint8Array {
  const chunk = window.get(decodeDedupRef(payload));
  if (chunk.length !== rawLength) {
    throw new MigstreamError("CODEC", `dedup reference names a ${chunk.length}-byte chunk, expected ${rawLength}`);
  }
  if (into === undefined) return chunk;
  if (into.length < rawLength) {
    throw new MigstreamError("USAGE", `output buffer has ${into.length} bytes, chunk needs ${rawLength}`);
  }
  const out = into.subarray(0, rawLength);
  out.set(chunk);
  return out;
}
