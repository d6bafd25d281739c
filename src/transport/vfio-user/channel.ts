// A vfio-user byte channel over a UNIX stream socket (node:net, which Deno also
// provides): one socket write per message, reassembly by msg_size, and a close
// or error reported once. Used by both the client and the server.
import { MigstreamError } from "../../errors.js";
import type { Header } from "./codec.js";
import { type BodyAlloc, Framer, type MessageHandler, MsgSizeError } from "./framer.js";

/** The part of a node:net Socket we use. */
export interface NetSocket {
  write(data: Uint8Array, cb?: (err?: Error | null) => void): boolean;
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

export class Channel {
  /** Called with the header of a message whose msg_size is refused, just before the channel fails (a server answers it). */
  onRefused: ((h: Header) => void) | undefined;
  private readonly framer: Framer;
  private ended = false;
  private lastError: Error | undefined;

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
      const why = this.lastError ? `socket error${code ? ` ${code}` : ""}: ${this.lastError.message}` : "connection closed by the peer";
      const pending = this.framer.pending;
      this.end(new MigstreamError("TRANSPORT", `vfio-user: ${why}${pending ? ` (${pending} bytes of a message unreceived)` : ""}`, { errno: code, cause: this.lastError }));
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
      this.fail(e instanceof MigstreamError ? e : new MigstreamError("PROTOCOL", `vfio-user: ${String(e)}`, { cause: e }));
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
   * Sends one whole message with a single socket write. `flushed` runs once the
   * socket no longer needs `message` (then its buffer may be reused).
   */
  send(message: Uint8Array, flushed?: () => void): void {
    if (this.ended) throw new MigstreamError("TRANSPORT", "vfio-user: connection is closed");
    this.socket.write(message, flushed && (() => flushed()));
  }

  /** Ends the channel with `err` and destroys the socket. */
  fail(err: MigstreamError): void {
    this.end(err);
    this.socket.destroy();
  }

  /** Closes the socket; pending waits end with TRANSPORT. */
  close(): void {
    this.end(new MigstreamError("TRANSPORT", "vfio-user: connection closed locally"));
    this.socket.destroy();
  }

  private end(err: MigstreamError): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd(err);
  }
}
