// The simulated v2 device's own data stream (opaque to users, like a real
// vendor's): a byte stream with no boundaries that matter, so the destination
// parses it incrementally from writes of any size and rejects anything
// malformed, foreign or incomplete.
//
//   stream header (16 bytes): u32 magic "SIMV", u32 session id, u64 state size
//   records, as in the v1 transactions (records.ts):
//     DATA (16 + n): u32 type 1, u32 n, u64 image offset, n bytes
//     END  (32):     u32 type 2, u32 0, u64 state size, u64 digest, u64 flags (bit 0: digest present)
//   END is the last record; nothing follows it.
import { xxh3_64 } from "../kernels/xxh3.js";
import type { DeviceImage } from "./image.js";
import { PAGE_SIZE } from "./pages.js";
import { DATA_RECORD, END_RECORD, REC_DATA, REC_END, writeDataRecordHeader, writeEndRecord } from "./records.js";

const STREAM_MAGIC = 0x56534953; // "SIMV"
const STREAM_HEADER = 16;
/** Largest run of pages one DATA record carries. */
const MAX_RECORD_DATA = 64 << 10;

/** The saving side: serialises dirty pages into records as the user reads. */
export class StreamProducer {
  /** Bytes produced and not read yet: segments (a record header, then a view of the image), from `pos` in the first. */
  #segs: Uint8Array[] = [];
  #pos = 0;
  #queued = 0;
  #cursor = 0;
  /** Stream bytes handed out so far. */
  produced = 0;
  /** The END record went out. */
  ended = false;
  /** The first sweep over the pages is not finished (precopy info's "initial"). */
  firstSweep = true;

  constructor(
    readonly image: DeviceImage,
    readonly session: number,
    readonly digest: boolean,
    /** Pad the stream with zeros after END to a multiple of this (a fixed-access device; 0: none). */
    readonly padTo = 0,
  ) {
    image.markAll();
    const h = new Uint8Array(STREAM_HEADER);
    const dv = new DataView(h.buffer);
    dv.setUint32(0, STREAM_MAGIC, true);
    dv.setUint32(4, session, true);
    dv.setBigUint64(8, BigInt(image.size), true);
    this.#queue(h);
  }

  /** Bytes queued but not read. */
  get queued(): number {
    return this.#queued;
  }

  /** Bytes the next reads would give before the state changes again (queued + dirty pages, + END when stopped). */
  remaining(stopped: boolean): number {
    return this.queued + this.image.dirtyCount * (PAGE_SIZE + DATA_RECORD) + (stopped && !this.ended ? END_RECORD : 0);
  }

  /** Initial bytes left (while the first sweep runs: the dirty pages ahead of it, and the queue). */
  initialBytes(): number {
    if (!this.firstSweep) return 0;
    let pages = 0;
    const d = this.image.dirty;
    for (let p = this.#cursor; p < d.length; p++) pages += d[p];
    return this.queued + pages * PAGE_SIZE;
  }

  /** Copies up to `into.length` bytes of the stream into `into`; 0 when there is nothing (now, or any more once ended). */
  read(into: Uint8Array, stopped: boolean): number {
    let n = 0;
    while (n < into.length) {
      if (this.#queued === 0 && !this.#refill(stopped)) break;
      const seg = this.#segs[0];
      const take = Math.min(into.length - n, seg.length - this.#pos);
      into.set(seg.subarray(this.#pos, this.#pos + take), n);
      this.#pos += take;
      this.#queued -= take;
      n += take;
      if (this.#pos === seg.length) {
        this.#segs.shift();
        this.#pos = 0;
      }
    }
    this.produced += n;
    return n;
  }

  /** Queues the next record: a run of dirty pages, or END once stopped and clean. */
  #refill(stopped: boolean): boolean {
    const img = this.image;
    const p = img.nextDirty(this.#cursor);
    if (p >= 0 && p < this.#cursor) this.firstSweep = false; // wrapped around
    if (p < 0) {
      this.firstSweep = false;
      if (!stopped || this.ended) return false;
      const total = this.produced + this.queued + END_RECORD;
      const pad = this.padTo > 0 ? (this.padTo - (total % this.padTo)) % this.padTo : 0;
      const rec = new Uint8Array(END_RECORD + pad); // zeros after END
      writeEndRecord(rec, 0, {
        transactions: 0,
        imageSize: img.size,
        digest: this.digest ? xxh3_64(img.bytes) : undefined,
      });
      this.ended = true;
      return this.#queue(rec);
    }
    const start = p * PAGE_SIZE;
    let end = img.pageEnd(p);
    img.take(p);
    while (end < img.size && end - start < MAX_RECORD_DATA && img.dirty[end / PAGE_SIZE] === 1) {
      img.take(end / PAGE_SIZE);
      end = img.pageEnd(end / PAGE_SIZE);
    }
    this.#cursor = Math.ceil(end / PAGE_SIZE);
    const head = new Uint8Array(DATA_RECORD);
    writeDataRecordHeader(head, 0, end - start, start);
    // The page bytes are read from the image as the user reads (a page changed meanwhile is dirty again and resent).
    return this.#queue(head, img.bytes.subarray(start, end));
  }

  #queue(...segs: Uint8Array[]): boolean {
    for (const s of segs) {
      this.#segs.push(s);
      this.#queued += s.length;
    }
    return true;
  }
}

/** The resuming side: parses the stream from writes of any size and applies it to the image. */
export class StreamConsumer {
  /** Bytes of a header or record header gathered so far. */
  #head = new Uint8Array(END_RECORD);
  #headFill = 0;
  /** The DATA payload being copied: image offset of its next byte and bytes left. */
  #dataAt = 0;
  #dataLeft = 0;
  #sawHeader = false;
  end: { imageSize: number; digest: bigint | undefined } | undefined;
  /** Stream bytes taken so far. */
  taken = 0;
  /** Why the stream was rejected (sticky). */
  rejected: string | undefined;

  constructor(
    readonly image: DeviceImage,
    /** Zeros after END are padding (a fixed-access device). */
    readonly padded = false,
  ) {}

  /** Takes `data`; returns why it is rejected, if it is (the bytes before the fault were applied). */
  write(data: Uint8Array): string | undefined {
    if (this.rejected !== undefined) return this.rejected;
    let i = 0;
    while (i < data.length) {
      if (this.#dataLeft > 0) {
        const n = Math.min(this.#dataLeft, data.length - i);
        this.image.bytes.set(data.subarray(i, i + n), this.#dataAt);
        this.image.pristine = false;
        this.#dataAt += n;
        this.#dataLeft -= n;
        i += n;
        continue;
      }
      if (this.end) {
        if (this.padded && data.subarray(i).every((b) => b === 0)) break;
        return this.#reject(`stream byte ${this.taken + i}: data after the END record`);
      }
      const need = this.#needed();
      const n = Math.min(need - this.#headFill, data.length - i);
      this.#head.set(data.subarray(i, i + n), this.#headFill);
      this.#headFill += n;
      i += n;
      if (this.#headFill < need) break;
      const why = this.#complete(need);
      if (why !== undefined) return this.#reject(`stream byte ${this.taken + i - need}: ${why}`);
      // A record header that turned out to need more bytes (END) keeps gathering.
    }
    this.taken += data.length;
    return undefined;
  }

  /** Bytes the structure being gathered needs. */
  #needed(): number {
    if (!this.#sawHeader) return STREAM_HEADER;
    if (this.#headFill < 8) return 8;
    const type = new DataView(this.#head.buffer).getUint32(0, true);
    return type === REC_END ? END_RECORD : DATA_RECORD;
  }

  #complete(size: number): string | undefined {
    const dv = new DataView(this.#head.buffer);
    if (!this.#sawHeader) {
      if (dv.getUint32(0, true) !== STREAM_MAGIC) return "bad stream magic";
      if (Number(dv.getBigUint64(8, true)) !== this.image.size)
        return `stream for a ${dv.getBigUint64(8, true)}-byte state, this device holds ${this.image.size}`;
      this.#sawHeader = true;
      this.#headFill = 0;
      return undefined;
    }
    const type = dv.getUint32(0, true);
    if (type !== REC_DATA && type !== REC_END) return `unknown record type ${type}`;
    if (size === 8) return undefined; // the rest of this record header comes next
    this.#headFill = 0;
    if (type === REC_END) {
      const flags = dv.getBigUint64(24, true);
      if (flags & ~1n) return "bad END flags";
      this.end = { imageSize: Number(dv.getBigUint64(8, true)), digest: flags ? dv.getBigUint64(16, true) : undefined };
      if (this.end.imageSize !== this.image.size) return `END record for a ${this.end.imageSize}-byte state`;
      return undefined;
    }
    const len = dv.getUint32(4, true);
    const at = Number(dv.getBigUint64(8, true));
    if (len === 0 || at > this.image.size || len > this.image.size - at)
      return `DATA record ${len}@${at} outside the ${this.image.size}-byte state`;
    this.#dataAt = at;
    this.#dataLeft = len;
    return undefined;
  }

  #reject(why: string): string {
    this.rejected = why;
    return why;
  }

  /** RESUMING → STOP: why the state is incomplete, if it is. */
  finish(checkDigest: boolean): string | undefined {
    if (this.rejected !== undefined) return this.rejected;
    if (!this.end) return this.#sawHeader ? "no END record: the restored state is incomplete" : "no stream received";
    if (this.#dataLeft > 0 || this.#headFill > 0) return "the stream ends inside a record";
    if (checkDigest && this.end.digest !== undefined && xxh3_64(this.image.bytes) !== this.end.digest)
      return "restored state digest mismatch";
    return undefined;
  }
}
