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
// Memory: at most windowBytes of chunk copies (the encoder keeps them in
// shared slabs, freed oldest first as chunks leave the window, plus one slab
// being filled), and at most windowBytes / DEDUP_ENTRY_MIN_COST entries of
// bookkeeping.

import { MigstreamError } from "../errors.js";
import { lz4DecompressInto } from "../kernels/lz4.js";
import { allocBuffer, type KernelBuffer } from "../kernels/wasm.js";

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

/** What both sides show of their window: its size and which ordinals are live. */
abstract class Windowed<T> {
  protected readonly window: Window<T>;

  constructor(windowBytes: number) {
    this.window = new Window<T>(windowBytes);
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
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  const n = a.length;
  if (n !== b.length) return false;
  let i = 0;
  if (((a.byteOffset ^ b.byteOffset) & 3) === 0) {
    // Bytes up to a 4-byte boundary, then a word at a time.
    for (; i < n && ((a.byteOffset + i) & 3) !== 0; i++) if (a[i] !== b[i]) return false;
    const words = (n - i) >>> 2;
    const wa = new Int32Array(a.buffer, a.byteOffset + i, words);
    const wb = new Int32Array(b.buffer, b.byteOffset + i, words);
    for (let w = 0; w < words; w++) if (wa[w] !== wb[w]) return false;
    i += words << 2;
  }
  for (; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Size of the shared blocks the encoder's index copies chunks into (larger chunks get a block of their own). */
export const DEDUP_SLAB_SIZE = 4 << 20;
/** Emptied slabs kept for reuse. */
const DEDUP_SPARE_SLABS = 2;

/** A block of chunk copies, and how many of them are still live. */
interface Slab {
  buf: Uint8Array;
  live: number;
}

/**
 * Chunk copies in large shared blocks, filled in order and released oldest
 * first (the window evicts in recording order): one allocation per block
 * instead of one per chunk.
 */
class SlabStore {
  private cur: Slab | null = null;
  private used = 0;
  private readonly spare: Uint8Array[] = [];

  /** A copy of `chunk`, and the slab holding it. */
  store(chunk: Uint8Array): { bytes: Uint8Array; slab: Slab } {
    const n = chunk.length;
    if (n > DEDUP_SLAB_SIZE) {
      const slab = { buf: Uint8Array.prototype.slice.call(chunk) as Uint8Array, live: 1 };
      return { bytes: slab.buf, slab };
    }
    if (this.cur === null || this.used + n > this.cur.buf.length) {
      if (this.cur !== null && this.cur.live === 0) this.recycle(this.cur.buf);
      this.cur = { buf: this.spare.pop() ?? new Uint8Array(DEDUP_SLAB_SIZE), live: 0 };
      this.used = 0;
    }
    const slab = this.cur;
    const bytes = slab.buf.subarray(this.used, this.used + n);
    bytes.set(chunk);
    // Copies start 8-byte aligned, so comparisons can go a word at a time.
    this.used = Math.min(slab.buf.length, (this.used + n + 7) & ~7);
    slab.live++;
    return { bytes, slab };
  }

  /** One copy in `slab` is no longer needed. */
  release(slab: Slab): void {
    slab.live--;
    if (slab.live === 0 && slab !== this.cur && slab.buf.length === DEDUP_SLAB_SIZE) this.recycle(slab.buf);
  }

  private recycle(buf: Uint8Array): void {
    if (this.spare.length < DEDUP_SPARE_SLABS) this.spare.push(buf);
  }
}

interface IndexEntry {
  /** The chunk, or with `lz4` an LZ4 block of it (a smaller copy). */
  bytes: Uint8Array;
  lz4: boolean;
  /** The chunk's length. */
  length: number;
  hash: bigint;
  slab: Slab;
  /** Key of its first ANCHOR_SIZE bytes in `anchors`, or -1; with it, the key of its last ANCHOR_SIZE bytes (a quick check). */
  anchor: number;
  tail: number;
}

/**
 * A recorded chunk is also found by its first this many bytes (see
 * DedupIndex.findAnchored): the key is a 32-bit gear hash, in which a byte
 * is shifted out after exactly this many more.
 */
export const ANCHOR_SIZE = 32;
/** The anchor filter (a Bloom filter, two probes per key) has 2^ANCHOR_FILTER_BITS bits: 512 KiB, it stays in cache. */
const ANCHOR_FILTER_BITS = 22;
const ANCHOR_FILTER_MASK = (1 << ANCHOR_FILTER_BITS) - 1;
/** Filter additions allowed beyond twice the live anchors before it is rebuilt. */
const ANCHOR_FILTER_SLACK = 1 << 16;
/** The filter's second bit for a key (a Bloom filter with two probes). */
function filterBit2(key: number): number {
  return Math.imul(key, 0x9e3779b1) >>> (32 - ANCHOR_FILTER_BITS);
}

/** Gear table of the anchor key: fixed (xorshift32 from a constant), so output is reproducible. */
const ANCHOR_GEAR = (() => {
  const g = new Int32Array(256);
  let x = 0x6d696773;
  for (let i = 0; i < 256; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    g[i] = x;
  }
  return g;
})();

/** Anchor key of bytes[at, at + ANCHOR_SIZE). */
export function anchorKey(bytes: Uint8Array, at = 0): number {
  let h = 0;
  for (let i = at; i < at + ANCHOR_SIZE; i++) h = ((h << 1) + ANCHOR_GEAR[bytes[i]]) | 0;
  return h;
}

/**
 * Anchor keys of every ANCHOR_SIZE-byte window of `bytes`, rolling: calls
 * `visit(start, key)` for start = 0, 1, ... until it returns true (then returns
 * that start) or the windows run out (returns -1).
 */
export function scanAnchors(bytes: Uint8Array, visit: (start: number, key: number) => boolean): number {
  const n = bytes.length;
  if (n < ANCHOR_SIZE) return -1;
  let h = anchorKey(bytes, 0);
  for (let s = 0; ; s++) {
    if (visit(s, h)) return s;
    if (s + ANCHOR_SIZE >= n) return -1;
    h = ((h << 1) + ANCHOR_GEAR[bytes[s + ANCHOR_SIZE]]) | 0;
  }
}

/** Encoder side: finds an earlier identical chunk that the decoder still holds. */
export class DedupIndex extends Windowed<IndexEntry> {
  private readonly slabs = new SlabStore();
  /** hash -> the newest live ordinal with that hash. */
  private readonly byHash = new Map<bigint, number>();
  /** hash -> older live ordinals with that hash, oldest first (only after a hash collision). */
  private readonly older = new Map<bigint, number[]>();
  /** anchor key -> the newest live ordinal whose chunk starts with those bytes. */
  private readonly anchors = new Map<number, number>();
  /** One bit per ANCHOR_FILTER_MASK-masked anchor key ever added since the last rebuild (a quick "surely not"). */
  private filter: Uint8Array | null = null;
  private filterAdds = 0;

  /** Kernel memory for checking a chunk against an LZ4-stored copy: the copy, and it decoded. */
  private verifyIn: KernelBuffer | null = null;
  private verifyOut: KernelBuffer | null = null;

  /**
   * Makes room to check chunks of up to `n` bytes against LZ4-stored copies
   * (allocates kernel memory now, so that checks never do: callers holding
   * views of kernel memory call this before taking them).
   */
  reserve(n: number): void {
    if (this.verifyOut !== null && this.verifyOut.length >= n) return;
    this.verifyIn?.free();
    this.verifyOut?.free();
    this.verifyIn = null;
    this.verifyOut = null;
    this.verifyIn = allocBuffer(n);
    this.verifyOut = allocBuffer(n);
  }

  /** Returns the kernel memory reserve() took (the index stays usable). */
  free(): void {
    this.verifyIn?.free();
    this.verifyOut?.free();
    this.verifyIn = null;
    this.verifyOut = null;
  }

  /** True when entry `e` holds exactly the bytes of `chunk`. */
  private holds(e: IndexEntry, chunk: Uint8Array): boolean {
    if (e.length !== chunk.length) return false;
    if (!e.lz4) return sameBytes(e.bytes, chunk);
    // Stored as LZ4 (only by callers that reserved room): decode it next to the chunk and compare.
    if (this.verifyOut === null || this.verifyOut.length < e.length) return false; // freed: treat as unknown
    const inb = this.verifyIn!;
    const out = this.verifyOut;
    inb.view(0, e.bytes.length).set(e.bytes);
    const n = lz4DecompressInto(inb.view(0, e.bytes.length), out.view(0, e.length));
    return n === e.length && sameBytes(out.view(0, n), chunk);
  }

  /** True when a live chunk has this hash (a likely match: `find` compares the bytes). */
  has(hash: bigint): boolean {
    return this.byHash.has(hash);
  }

  /** False when no live chunk starts with bytes of this anchor key; true when one may. */
  mayHaveAnchor(key: number): boolean {
    const f = this.filter;
    if (f === null) return false;
    const b1 = key & ANCHOR_FILTER_MASK;
    const b2 = filterBit2(key);
    return (f[b1 >>> 3] & (1 << (b1 & 7))) !== 0 && (f[b2 >>> 3] & (1 << (b2 & 7))) !== 0;
  }

  private filterSet(key: number): void {
    const f = this.filter!;
    const b1 = key & ANCHOR_FILTER_MASK;
    const b2 = filterBit2(key);
    f[b1 >>> 3] |= 1 << (b1 & 7);
    f[b2 >>> 3] |= 1 << (b2 & 7);
  }

  private filterAdd(key: number): void {
    if (this.filter === null) this.filter = new Uint8Array((ANCHOR_FILTER_MASK + 1) >>> 3);
    this.filterSet(key);
    // Evicted anchors leave their bits set: rebuild once they could outnumber the live ones.
    if (++this.filterAdds > 2 * this.anchors.size + ANCHOR_FILTER_SLACK) {
      this.filter.fill(0);
      this.filterAdds = 0;
      for (const k of this.anchors.keys()) {
        this.filterSet(k);
        this.filterAdds++;
      }
    }
  }

  /**
   * The first start in [from, until) where `bytes` hold a whole live recorded
   * chunk (found by its first ANCHOR_SIZE bytes, then compared), with that
   * chunk's length; null if there is none.
   */
  findAnchored(bytes: Uint8Array, from: number, until: number): { at: number; length: number } | null {
    const f = this.filter;
    const gear = ANCHOR_GEAR;
    const last = Math.min(until, bytes.length - ANCHOR_SIZE + 1);
    if (f === null || from >= last) return null;
    let h = anchorKey(bytes, from);
    // h is the key of bytes[s, s + ANCHOR_SIZE); the next one shifts bytes[s] out.
    for (let s = from; ; ) {
      const bit = h & ANCHOR_FILTER_MASK;
      if ((f[bit >>> 3] & (1 << (bit & 7))) !== 0) {
        const bit2 = filterBit2(h);
        if ((f[bit2 >>> 3] & (1 << (bit2 & 7))) !== 0) {
          const length = this.atAnchor(h, bytes, s);
          if (length > 0) return { at: s, length };
        }
      }
      if (++s >= last) return null;
      h = ((h << 1) + gear[bytes[s + ANCHOR_SIZE - 1]]) | 0;
    }
  }

  /**
   * The length of the live chunk registered under anchor `key` when `bytes`
   * (from `at` on) start with all of it, else -1. Bytes are compared.
   */
  atAnchor(key: number, bytes: Uint8Array, at: number): number {
    const ord = this.anchors.get(key);
    if (ord === undefined) return -1;
    const e = this.window.at(ord);
    const end = at + e.length;
    if (end > bytes.length || anchorKey(bytes, end - ANCHOR_SIZE) !== e.tail || !this.holds(e, bytes.subarray(at, end)))
      return -1;
    return e.length;
  }

  /** Ordinal of a live chunk equal to `chunk` (newest first), or -1. Bytes are compared, never only hashes. */
  find(chunk: Uint8Array, hash: bigint): number {
    const newest = this.byHash.get(hash);
    if (newest === undefined) return -1;
    if (this.holds(this.window.at(newest), chunk)) return newest;
    const list = this.older.get(hash);
    if (list === undefined) return -1;
    for (let i = list.length - 1; i >= 0; i--) {
      if (this.holds(this.window.at(list[i]), chunk)) return list[i];
    }
    return -1;
  }

  /**
   * Records `chunk` (copied) under `hash`; returns its ordinal. `lz4`: an LZ4
   * block that decodes to `chunk`, kept instead of the chunk itself (less
   * memory; checks then decode it) — only after reserve() for its length.
   */
  add(chunk: Uint8Array, hash: bigint, lz4?: Uint8Array): number {
    let stored = false;
    const packed =
      lz4 !== undefined &&
      lz4.length < chunk.length &&
      this.verifyOut !== null &&
      this.verifyOut.length >= chunk.length;
    const ordinal = this.window.record(
      chunk.length,
      () => {
        stored = true;
        const { bytes, slab } = this.slabs.store(packed ? lz4! : chunk);
        const anchored = chunk.length >= ANCHOR_SIZE;
        const anchor = anchored ? anchorKey(chunk) : -1;
        const tail = anchored ? anchorKey(chunk, chunk.length - ANCHOR_SIZE) : 0;
        return { bytes, lz4: packed, length: chunk.length, hash, slab, anchor, tail };
      },
      (item, ord) => this.unlink(item, ord),
    );
    if (stored) {
      const anchor = this.window.at(ordinal).anchor;
      if (anchor !== -1) {
        this.anchors.set(anchor, ordinal);
        this.filterAdd(anchor);
      }
      const prev = this.byHash.get(hash);
      if (prev !== undefined) {
        const list = this.older.get(hash);
        if (list === undefined) this.older.set(hash, [prev]);
        else list.push(prev);
      }
      this.byHash.set(hash, ordinal);
    }
    return ordinal;
  }

  private unlink(item: IndexEntry, ordinal: number): void {
    this.slabs.release(item.slab);
    if (item.anchor !== -1 && this.anchors.get(item.anchor) === ordinal) this.anchors.delete(item.anchor);
    const hash = item.hash;
    // Evictions go oldest first: an evicted ordinal is the oldest of its hash.
    const list = this.older.get(hash);
    if (list !== undefined) {
      if (list[0] === ordinal) list.shift();
      else list.splice(list.indexOf(ordinal), 1);
      if (list.length === 0) this.older.delete(hash);
      return;
    }
    if (this.byHash.get(hash) === ordinal) this.byHash.delete(hash);
  }
}

/** Decoder side: keeps exactly the window of decoded chunks the encoder assumed. */
export class DedupWindow extends Windowed<Uint8Array> {
  /** Records a decoded chunk (copied); returns its ordinal. */
  add(chunk: Uint8Array): number {
    return this.window.record(
      chunk.length,
      // A copy even of a Node Buffer (whose own slice shares memory).
      () => Uint8Array.prototype.slice.call(chunk) as Uint8Array,
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
export function resolveDedupRef(
  window: DedupWindow,
  payload: Uint8Array,
  rawLength: number,
  into?: Uint8Array,
): Uint8Array {
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
