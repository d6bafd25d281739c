// Reassembles vfio-user messages from a byte stream by `msg_size`. Chunks may
// split a message anywhere (down to single bytes) or carry several messages.
// A message size below the header or above the configured limit is refused
// before anything is allocated for it. Message bodies that span chunks go into
// buffers from `alloc` (so the owner can reuse them, or land the bulk of a body
// straight where it belongs: a Split); a message that lies whole inside one
// chunk is passed as a view of that chunk, unless chunks are transient (their
// buffer is reused once push returns): then it is copied too.
import { MigstreamError } from "../../errors.js";
import { HEADER_SIZE } from "./constants.js";
import { type Header, readHeader } from "./wire.js";

/**
 * `payload` is the message body; for a body gathered into a Split, `payload`
 * is its head and `tail` the rest (already in place).
 */
export type MessageHandler = (header: Header, payload: Uint8Array, tail?: Uint8Array) => void;

/** A body landed in two parts: the first head.length bytes, then the rest in `tail`. */
export interface Split {
  head: Uint8Array;
  tail: Uint8Array;
}

/** Where a body of `n` bytes (of the message with header `h`) is gathered. */
export type BodyAlloc = (n: number, h: Header) => Uint8Array | Split;

/** A message whose msg_size the framer refuses; `header` lets a server answer it before it closes. */
export class MsgSizeError extends MigstreamError {
  constructor(
    readonly header: Header,
    message: string,
  ) {
    super("PROTOCOL", message, { field: "msg_size" });
  }
}

export class Framer {
  private readonly head = new Uint8Array(HEADER_SIZE);
  private headFill = 0;
  private header: Header | undefined;
  private body: Uint8Array | undefined;
  /** With a Split body: its tail (`body` is the head). */
  private tail: Uint8Array | undefined;
  private bodySize = 0;
  private bodyFill = 0;

  /** `limit`: largest whole message accepted (may be raised later, e.g. after VERSION). */
  constructor(
    private readonly onMessage: MessageHandler,
    public limit: number,
    private readonly alloc: BodyAlloc = (n) => new Uint8Array(n),
    private readonly transient = false,
  ) {}

  /** Feeds bytes; calls onMessage for each complete message. Throws PROTOCOL on a bad size. */
  push(chunk: Uint8Array): void {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.header === undefined) {
        // Fast path: a whole message inside the chunk needs no copy.
        if (this.headFill === 0 && n - i >= HEADER_SIZE) {
          const h = this.check(readHeader(chunk, i));
          if (n - i >= h.size) {
            const body = chunk.subarray(i + HEADER_SIZE, i + h.size);
            if (this.transient) this.deliverCopy(h, body);
            else this.onMessage(h, body);
            i += h.size;
            continue;
          }
          this.start(h);
          this.head.set(chunk.subarray(i, i + HEADER_SIZE));
          i += HEADER_SIZE;
          continue;
        }
        const take = Math.min(HEADER_SIZE - this.headFill, n - i);
        this.head.set(chunk.subarray(i, i + take), this.headFill);
        this.headFill += take;
        i += take;
        if (this.headFill < HEADER_SIZE) return;
        this.start(this.check(readHeader(this.head)));
        if (this.bodySize === 0) this.finish();
        continue;
      }
      const head = this.body!;
      let take: number;
      if (this.bodyFill < head.length) {
        take = Math.min(head.length - this.bodyFill, n - i);
        head.set(chunk.subarray(i, i + take), this.bodyFill);
      } else {
        take = Math.min(this.bodySize - this.bodyFill, n - i);
        this.tail!.set(chunk.subarray(i, i + take), this.bodyFill - head.length);
      }
      this.bodyFill += take;
      i += take;
      if (this.bodyFill === this.bodySize) this.finish();
    }
  }

  /** A whole body from a transient chunk, copied where `alloc` says. */
  private deliverCopy(h: Header, body: Uint8Array): void {
    const b = this.alloc(body.length, h);
    if (b instanceof Uint8Array) {
      b.set(body);
      this.onMessage(h, b);
      return;
    }
    b.head.set(body.subarray(0, b.head.length));
    b.tail.set(body.subarray(b.head.length));
    this.onMessage(h, b.head, b.tail);
  }

  /**
   * Stops landing bytes in `buffer` (a Split tail the owner gave up on, e.g.
   * after a timeout): the rest of that body goes to a scratch buffer.
   */
  release(buffer: Uint8Array): void {
    if (this.tail === buffer) this.tail = new Uint8Array(buffer.length);
  }

  /** Bytes of a message received so far but not yet complete. */
  get pending(): number {
    return this.header === undefined ? this.headFill : HEADER_SIZE + this.bodyFill;
  }

  private check(h: Header): Header {
    if (h.size < HEADER_SIZE) throw new MsgSizeError(h, `vfio-user: msg_size ${h.size} is smaller than the header`);
    if (h.size > this.limit)
      throw new MsgSizeError(h, `vfio-user: msg_size ${h.size} exceeds the limit of ${this.limit} bytes`);
    return h;
  }

  private start(h: Header): void {
    this.header = h;
    this.headFill = HEADER_SIZE;
    const n = h.size - HEADER_SIZE;
    const b = this.alloc(n, h);
    if (b instanceof Uint8Array) {
      this.body = b;
      this.tail = undefined;
    } else {
      if (b.head.length + b.tail.length !== n)
        throw new MigstreamError(
          "INTERNAL",
          `vfio-user: a split body of ${b.head.length} + ${b.tail.length} bytes for a ${n}-byte body`,
        );
      this.body = b.head;
      this.tail = b.tail;
    }
    this.bodySize = n;
    this.bodyFill = 0;
  }

  private finish(): void {
    const h = this.header!;
    const body = this.body!;
    const tail = this.tail;
    this.header = undefined;
    this.body = undefined;
    this.tail = undefined;
    this.headFill = 0;
    this.bodyFill = 0;
    this.bodySize = 0;
    if (tail === undefined) this.onMessage(h, body);
    else this.onMessage(h, body, tail);
  }
}
