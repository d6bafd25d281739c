// Reassembles vfio-user messages from a byte stream by `msg_size`. Chunks may
// split a message anywhere (down to single bytes) or carry several messages.
// A message size below the header or above the configured limit is refused
// before anything is allocated for it. Message bodies that span chunks go into
// buffers from `alloc` (so the owner can pool them); a message that lies whole
// inside one chunk is passed as a view of that chunk, unless chunks are
// transient (their buffer is reused once push returns): then it is copied too.
import { MigstreamError } from "../../errors.js";
import { HEADER_SIZE } from "./constants.js";
import { type Header, readHeader } from "./codec.js";

export type MessageHandler = (header: Header, payload: Uint8Array) => void;

export class Framer {
  private readonly head = new Uint8Array(HEADER_SIZE);
  private headFill = 0;
  private header: Header | undefined;
  private body: Uint8Array | undefined;
  private bodyFill = 0;

  /** `limit`: largest whole message accepted (may be raised later, e.g. after VERSION). */
  constructor(
    private readonly onMessage: MessageHandler,
    public limit: number,
    private readonly alloc: (n: number) => Uint8Array = (n) => new Uint8Array(n),
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
            if (this.transient) {
              const copy = this.alloc(body.length);
              copy.set(body);
              this.onMessage(h, copy);
            } else this.onMessage(h, body);
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
        if (this.body!.length === 0) this.finish();
        continue;
      }
      const body = this.body!;
      const take = Math.min(body.length - this.bodyFill, n - i);
      body.set(chunk.subarray(i, i + take), this.bodyFill);
      this.bodyFill += take;
      i += take;
      if (this.bodyFill === body.length) this.finish();
    }
  }

  /** Bytes of a message received so far but not yet complete. */
  get pending(): number {
    return this.header === undefined ? this.headFill : HEADER_SIZE + this.bodyFill;
  }

  private check(h: Header): Header {
    if (h.size < HEADER_SIZE) throw new MigstreamError("PROTOCOL", `vfio-user: msg_size ${h.size} is smaller than the header`, { field: "msg_size" });
    if (h.size > this.limit) {
      throw new MigstreamError("PROTOCOL", `vfio-user: msg_size ${h.size} exceeds the limit of ${this.limit} bytes`, { field: "msg_size" });
    }
    return h;
  }

  private start(h: Header): void {
    this.header = h;
    this.headFill = HEADER_SIZE;
    this.body = this.alloc(h.size - HEADER_SIZE);
    this.bodyFill = 0;
  }

  private finish(): void {
    const h = this.header!;
    const body = this.body!;
    this.header = undefined;
    this.body = undefined;
    this.headFill = 0;
    this.bodyFill = 0;
    this.onMessage(h, body);
  }
}
