// A vfio-user byte channel over a UNIX stream socket (node:net, which Deno also
// provides): whole messages out, reassembly by msg_size in, and a close or
// error reported once. Used by both the client and the server.
//
// Messages sent during one task go out together at the end of it (the socket
// corked, then one writev system call): a client issues the accesses of a
// pipelined sequence back to back and a server answers the messages of one
// read, so a transaction costs a system call per round trip instead of one
// per message. Each message is still one socket write of its own, never split
// or merged with another's bytes in our buffers.
import { MigstreamError } from "../../errors.js";
import { type BodyAlloc, Framer, type MessageHandler, MsgSizeError } from "./framer.js";
import type { Header } from "./wire.js";

/** The part of a node:net Socket we use. */
export interface NetSocket {
  write(data: Uint8Array, cb?: (err?: Error | null) => void): boolean;
  /** Holds writes back until uncork() (then one writev). */
  cork(): void;
  uncork(): void;
  destroy(err?: Error): void;
  end(): void;
  pause(): void;
  resume(): void;
  on(event: "data", fn: (chunk: Uint8Array) => void): this;
  on(event: "error", fn: (err: Error) => void): this;
  on(event: "close", fn: () => void): this;
  once(event: "connect", fn: () => void): this;
  once(event: "error", fn: (err: Error) => void): this;
  removeListener(event: string, fn: (...args: never[]) => void): this;
  readonly destroyed: boolean;
}

/** node:net's `onread`: reads land in one reusable buffer, handed to `callback`. */
export interface UserBufferReads {
  buffer: Uint8Array;
  callback(bytes: number, buffer: Uint8Array): void;
}

export interface NetModule {
  createConnection(opts: { path: string; onread?: UserBufferReads }): NetSocket;
  createServer(opts: { pauseOnConnect?: boolean }, onConnection: (s: NetSocket) => void): NetServer;
  Socket?: new (opts: { handle: unknown; onread: UserBufferReads }) => NetSocket;
}

export interface NetServer {
  listen(path: string, cb: () => void): void;
  close(cb?: (err?: Error) => void): void;
  once(event: "error", fn: (err: Error) => void): this;
  on(event: "error", fn: (err: Error) => void): this;
  removeListener(event: string, fn: (...args: never[]) => void): this;
}

/** Runs `fn` once the current task's microtasks ran (process.nextTick where there is one). */
const afterMicrotasks: (fn: () => void) => void = (() => {
  const p = (globalThis as { process?: { nextTick?: (fn: () => void) => void } }).process;
  return typeof p?.nextTick === "function"
    ? (fn: () => void) => p.nextTick!(fn)
    : (fn: () => void) => queueMicrotask(fn);
})();

export class Channel {
  /** Called with the header of a message whose msg_size is refused, just before the channel fails (a server answers it). */
  onRefused: ((h: Header) => void) | undefined;
  private readonly framer: Framer;
  private ended = false;
  private lastError: Error | undefined;
  /** Messages sent in this task, and their flush callbacks, written out together (see the file comment). */
  private readonly outbox: Uint8Array[] = [];
  private readonly outboxFlushed: Array<(() => void) | undefined> = [];
  private outboxScheduled = false;
  private readonly flushOutbox = () => this.writeOutbox();

  /**
   * `onMessage` gets each complete message; `onEnd` is called once when the
   * socket closes, fails, or the byte stream breaks the framing (`err`).
   */
  constructor(
    readonly socket: NetSocket,
    onMessage: MessageHandler,
    limit: number,
    private readonly onEnd: (err: MigstreamError) => void,
    alloc?: BodyAlloc,
    /** Chunks are reused after `feed` returns (onread): messages are never views of them. */
    transient = false,
  ) {
    this.framer = new Framer(onMessage, limit, alloc, transient);
    // A plain view: Node hands Buffers, and we return slices of them.
    socket.on("data", (chunk) => this.feed(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
    socket.on("error", (err) => {
      this.lastError = err;
    });
    socket.on("close", () => {
      const code = (this.lastError as { code?: string } | undefined)?.code;
      const why = this.lastError
        ? `socket error${code ? ` ${code}` : ""}: ${this.lastError.message}`
        : "connection closed by the peer";
      const pending = this.framer.pending;
      this.end(
        new MigstreamError(
          "TRANSPORT",
          `vfio-user: ${why}${pending ? ` (${pending} bytes of a message unreceived)` : ""}`,
          { errno: code, cause: this.lastError },
        ),
      );
    });
  }

  /**
   * Bytes received from the socket (its "data" events, or the callback of a
   * socket created with `onread`: then `chunk` is only valid during the call,
   * and so are the payloads of messages that lie whole inside it).
   */
  feed(chunk: Uint8Array): void {
    if (this.ended) return;
    try {
      this.framer.push(chunk);
    } catch (e) {
      if (e instanceof MsgSizeError) this.onRefused?.(e.header);
      this.fail(
        e instanceof MigstreamError ? e : new MigstreamError("PROTOCOL", `vfio-user: ${String(e)}`, { cause: e }),
      );
    }
  }

  /** No more bytes land in `buffer` (see Framer.release). */
  release(buffer: Uint8Array): void {
    this.framer.release(buffer);
  }

  /** Largest whole message accepted from the peer. */
  set limit(n: number) {
    this.framer.limit = n;
  }

  get closed(): boolean {
    return this.ended;
  }

  /** Bytes of a message received so far but not yet complete (0 between messages). */
  get pending(): number {
    return this.framer.pending;
  }

  /**
   * Sends one whole message (one socket write, at the end of this task with
   * the others sent in it). `flushed` runs once the socket no longer needs
   * `message` (then its buffer may be reused); `message` must stay unchanged
   * until then.
   */
  send(message: Uint8Array, flushed?: () => void): void {
    if (this.ended) throw new MigstreamError("TRANSPORT", "vfio-user: connection is closed");
    this.outbox.push(message);
    this.outboxFlushed.push(flushed);
    if (!this.outboxScheduled) {
      this.outboxScheduled = true;
      afterMicrotasks(this.flushOutbox);
    }
  }

  /**
   * Sends one whole message in two parts, `head` (its header first) then
   * `tail`, written one after the other with the socket corked (one writev):
   * the bytes of one message, sent without copying `tail` in. `flushed` runs
   * once the socket is done with both (or the channel ended without sending them).
   */
  sendParts(head: Uint8Array, tail: Uint8Array, flushed: () => void): void {
    if (this.ended) throw new MigstreamError("TRANSPORT", "vfio-user: connection is closed");
    this.outbox.push(head, tail);
    this.outboxFlushed.push(undefined, flushed);
    if (!this.outboxScheduled) {
      this.outboxScheduled = true;
      afterMicrotasks(this.flushOutbox);
    }
  }

  /** Writes the messages sent so far: one write, or several in one writev. */
  private writeOutbox(): void {
    this.outboxScheduled = false;
    const n = this.outbox.length;
    if (n === 0 || this.socket.destroyed) {
      // Never written: whoever waits for them is told (their buffers are free again).
      for (const done of this.outboxFlushed) done?.();
      this.outbox.length = 0;
      this.outboxFlushed.length = 0;
      return;
    }
    if (n > 1) this.socket.cork();
    for (let i = 0; i < n; i++) {
      const done = this.outboxFlushed[i];
      this.socket.write(this.outbox[i], done && (() => done()));
    }
    if (n > 1) this.socket.uncork();
    this.outbox.length = 0;
    this.outboxFlushed.length = 0;
  }

  /** Ends the channel with `err` and destroys the socket (messages already sent go out first). */
  fail(err: MigstreamError): void {
    this.end(err);
    this.writeOutbox();
    this.socket.destroy();
  }

  /** Closes the socket; pending waits end with TRANSPORT. Messages already sent go out first. */
  close(): void {
    this.end(new MigstreamError("TRANSPORT", "vfio-user: connection closed locally"));
    this.writeOutbox();
    this.socket.destroy();
  }

  private end(err: MigstreamError): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd(err);
  }
}
