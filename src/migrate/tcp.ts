// The network leg of a migration: the source connects and writes the stream,
// the destination listens, restores while the bytes arrive, and answers with
// an ack line (ack.ts). Both directions honour backpressure: the destination
// reads only as fast as its device consumes, so the source's writes wait.
//
// The listener hands out one connection at a time; connections that arrive
// while one is being served get a "busy" failure ack and are closed.
import type * as Net from "node:net";
import { MigstreamError } from "../errors.js";
import { builtin } from "../transport/builtin.js";
import { type Ack, ackError, encodeAck, MAX_ACK_BYTES, parseAck } from "./ack.js";
import { type ByteSink, writableSink } from "./sink.js";

/** Where a listener binds when the URL names no host. */
export const DEFAULT_LISTEN_HOST = "127.0.0.1";
/** Longest wait for stream bytes (destination) or for a drain (source), ms. */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** How long a source keeps retrying a refused connection, ms. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Pause between connection attempts, ms. */
export const CONNECT_RETRY_MS = 100;
/** Longest wait for the destination's ack after the last byte, ms. */
export const DEFAULT_ACK_TIMEOUT_MS = 60_000;
/** After a failure ack, how long the destination drains the source's bytes so the ack can be read, ms. */
export const FAILURE_LINGER_MS = 2_000;

export interface TcpAddress {
  host: string;
  port: number;
}

const URL_RE = /^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[^:/[\]]*):(\d+)\/?$/;

/** Parses `tcp://HOST:PORT` (`[v6]` in brackets). An empty host means loopback. */
export function parseTcpUrl(text: string, what = "address"): TcpAddress {
  const m = URL_RE.exec(text.trim());
  if (!m) throw new MigstreamError("USAGE", `${what}: '${text}' is not tcp://HOST:PORT`);
  const host = m[1].startsWith("[") ? m[1].slice(1, -1) : m[1] || DEFAULT_LISTEN_HOST;
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port > 65535) throw new MigstreamError("USAGE", `${what}: port ${m[2]} is out of range`);
  return { host, port };
}

export function formatTcpUrl(a: TcpAddress): string {
  return `tcp://${a.host.includes(":") ? `[${a.host}]` : a.host}:${a.port}`;
}

/** True for localhost, 127.0.0.0/8, ::1 and ::ffff:127.x. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  return h === "localhost" || h === "::1" || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function netError(e: unknown, what: string): MigstreamError {
  if (e instanceof MigstreamError) return e;
  const errno = typeof (e as { code?: unknown })?.code === "string" ? String((e as { code: string }).code) : undefined;
  return new MigstreamError("TRANSPORT", `${what}: ${e instanceof Error ? e.message : String(e)}`, { errno, cause: e });
}

// ---- destination side ------------------------------------------------------

export interface TcpAcceptOptions {
  /** Longest wait for more stream bytes, ms (0: none). */
  idleTimeoutMs?: number;
  /** Longest wait for a connection, ms (0: none). */
  acceptTimeoutMs?: number;
}

export class TcpListener {
  #busy = false;
  #pending: Net.Socket | null = null;
  #waiter: { resolve(s: Net.Socket): void; reject(e: unknown): void } | null = null;
  /** Connections refused while busy. */
  refused = 0;

  private constructor(
    private readonly server: Net.Server,
    readonly address: TcpAddress,
  ) {
    server.on("connection", (s) => this.#arrive(s));
  }

  /** Binds `addr` (port 0: any free port). */
  static async listen(addr: TcpAddress): Promise<TcpListener> {
    const net = await builtin<typeof Net>("net");
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once("error", (e) => reject(netError(e, `listen on ${formatTcpUrl(addr)}`)));
      server.listen({ host: addr.host, port: addr.port, exclusive: true }, () => resolve());
    });
    server.on("error", () => {}); // after listening, failures surface on the connections
    const a = server.address() as Net.AddressInfo;
    return new TcpListener(server, { host: a.address, port: a.port });
  }

  get url(): string {
    return formatTcpUrl(this.address);
  }

  #arrive(s: Net.Socket): void {
    s.on("error", () => {}); // reported through the peer's reader
    if (this.#busy) return this.#refuse(s);
    this.#busy = true;
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = null;
      w.resolve(s);
    } else this.#pending = s;
  }

  #refuse(s: Net.Socket): void {
    this.refused++;
    s.end(encodeAck({ ok: false, code: "TRANSPORT", message: "the destination is busy with another source" }));
    linger(s);
  }

  /** The next source connection (one at a time: release the previous peer first). */
  async accept(options: TcpAcceptOptions = {}): Promise<TcpPeer> {
    let socket: Net.Socket;
    if (this.#pending) {
      socket = this.#pending;
      this.#pending = null;
    } else {
      if (this.#waiter) throw new MigstreamError("USAGE", "accept() is already waiting");
      socket = await new Promise<Net.Socket>((resolve, reject) => {
        const ms = options.acceptTimeoutMs ?? 0;
        const timer = ms > 0 ? setTimeout(() => {
          this.#waiter = null;
          reject(new MigstreamError("TIMEOUT", `no source connected to ${this.url} within ${ms} ms`));
        }, ms) : undefined;
        this.#waiter = {
          resolve: (s) => {
            clearTimeout(timer);
            resolve(s);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        };
      });
    }
    return new TcpPeer(socket, options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, () => {
      this.#busy = false;
    });
  }

  /** Stops listening (connections already accepted live on); refuses one nobody accepted yet. */
  async close(): Promise<void> {
    if (this.#pending) this.#refuse(this.#pending);
    this.#pending = null;
    this.#waiter?.reject(new MigstreamError("ABORTED", "the listener closed"));
    this.#waiter = null;
    if (this.server.listening) this.server.close();
  }
}

/** Drains and discards a socket's input for a while, so that what we wrote can be read, then closes it. */
function linger(s: Net.Socket): void {
  if (s.destroyed) return;
  s.removeAllListeners("readable");
  s.on("data", () => {});
  s.on("error", () => {});
  const t = setTimeout(() => s.destroy(), FAILURE_LINGER_MS);
  s.on("close", () => clearTimeout(t));
  s.resume();
}

/** One source connection on the destination side. */
export class TcpPeer {
  readonly remote: string;
  /** Stream bytes received so far. */
  received = 0;
  #ended = false;
  #error: MigstreamError | null = null;
  #wake: (() => void) | null = null;
  #released = false;

  constructor(
    private readonly socket: Net.Socket,
    private readonly idleTimeoutMs: number,
    private readonly release: () => void,
  ) {
    this.remote = formatTcpUrl({ host: socket.remoteAddress ?? "?", port: socket.remotePort ?? 0 });
    const wake = () => {
      const w = this.#wake;
      this.#wake = null;
      w?.();
    };
    socket.on("readable", wake);
    socket.on("end", () => {
      this.#ended = true;
      wake();
    });
    socket.on("error", (e) => {
      this.#error ??= netError(e, `connection from ${this.remote}`);
      wake();
    });
    socket.on("close", () => {
      if (!this.#ended) this.#error ??= new MigstreamError("TRANSPORT", `connection from ${this.remote} closed`);
      wake();
    });
  }

  /** Bytes that arrived and were not read yet (after the stream's end: bytes that do not belong to it). */
  get buffered(): number {
    return this.socket.readableLength;
  }

  /** The stream bytes, pulled as the consumer asks (backpressure). Returning early does not close the socket. */
  async *chunks(): AsyncGenerator<Uint8Array, void, undefined> {
    for (;;) {
      const c = this.socket.read() as Buffer | null;
      if (c !== null) {
        this.received += c.length;
        yield new Uint8Array(c.buffer, c.byteOffset, c.length);
        continue;
      }
      if (this.#error) throw this.#error;
      if (this.#ended) return;
      await this.#wait();
    }
  }

  #wait(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const ms = this.idleTimeoutMs;
      const timer = ms > 0
        ? setTimeout(() => {
            this.#wake = null;
            reject(new MigstreamError("TIMEOUT", `no stream bytes from ${this.remote} for ${ms} ms`, { offset: this.received }));
          }, ms)
        : undefined;
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Sends the ack and closes: gracefully on success; on failure after draining the source for a while. */
  async respond(ack: Ack): Promise<void> {
    const s = this.socket;
    if (!s.destroyed && s.writable) {
      await new Promise<void>((resolve) => {
        s.end(encodeAck(ack), () => resolve());
        s.once("close", () => resolve());
      });
    }
    if (ack.ok) s.destroySoon();
    else linger(s);
    this.#release();
  }

  /** Closes without an answer. */
  destroy(): void {
    this.socket.destroy();
    this.#release();
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.release();
  }
}

// ---- source side -----------------------------------------------------------

export interface TcpConnectOptions {
  /** Keep retrying a refused connection this long, ms (0: one attempt). */
  connectTimeoutMs?: number;
  /** Longest wait for the destination to take more bytes, ms (0: none). */
  idleTimeoutMs?: number;
}

/**
 * The source end of a network migration: a sink for the stream (its writes
 * are not copied: a write settles once the socket is done with the bytes, so
 * the writer may then reuse them), then the destination's ack.
 */
export class TcpDestination {
  readonly sink: ByteSink;
  #ack: Ack | null = null;
  #ended = false;
  #error: MigstreamError | null = null;
  #ackBytes = "";
  #wake: (() => void) | null = null;

  private constructor(
    private readonly socket: Net.Socket,
    readonly url: string,
    idleTimeoutMs: number,
  ) {
    const wake = () => {
      const w = this.#wake;
      this.#wake = null;
      w?.();
    };
    socket.setEncoding("utf8");
    socket.on("data", (text: string) => {
      if (this.#ack) return;
      this.#ackBytes += text;
      const nl = this.#ackBytes.indexOf("\n");
      if (nl < 0) {
        if (this.#ackBytes.length > MAX_ACK_BYTES) {
          this.#error ??= new MigstreamError("TRANSPORT", `${url}: the destination sent more than ${MAX_ACK_BYTES} bytes without an ack line`);
          socket.destroy();
        }
        return;
      }
      try {
        this.#ack = parseAck(this.#ackBytes.slice(0, nl));
      } catch (e) {
        this.#error ??= netError(e, url);
      }
      // A failure ack means the destination stopped reading: stop writing at once.
      if (!this.#ack?.ok) socket.destroy();
      wake();
    });
    socket.on("end", () => {
      this.#ended = true;
      wake();
    });
    socket.on("error", (e) => {
      this.#error ??= netError(e, url);
      wake();
    });
    socket.on("close", () => {
      this.#ended = true;
      wake();
    });
    // No copy: a write settles once the socket wrote the bytes (the encoder then reuses its block).
    const inner = writableSink(socket, { label: url, code: "TRANSPORT", drainTimeoutMs: idleTimeoutMs, copy: false });
    const failure = (e: unknown): unknown => (this.#ack && !this.#ack.ok ? ackError(this.#ack) : e);
    this.sink = {
      get bytes() {
        return inner.bytes;
      },
      write: async (b) => {
        if (this.#ack && !this.#ack.ok) throw ackError(this.#ack);
        try {
          await inner.write(b);
        } catch (e) {
          throw failure(e);
        }
      },
      end: async () => {
        try {
          await inner.end();
        } catch (e) {
          throw failure(e);
        }
      },
      destroy: () => socket.destroy(),
    };
  }

  /** Connects to a listening destination, retrying refusals for `connectTimeoutMs`. */
  static async connect(addr: TcpAddress, options: TcpConnectOptions = {}): Promise<TcpDestination> {
    const net = await builtin<typeof Net>("net");
    const url = formatTcpUrl(addr);
    const deadline = Date.now() + (options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    for (;;) {
      try {
        const s = await new Promise<Net.Socket>((resolve, reject) => {
          const s = net.connect({ host: addr.host, port: addr.port, allowHalfOpen: true });
          s.once("connect", () => {
            s.off("error", reject);
            resolve(s);
          });
          s.once("error", reject);
        });
        return new TcpDestination(s, url, options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS);
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code === "ECONNREFUSED" && Date.now() + CONNECT_RETRY_MS < deadline) {
          await new Promise((r) => setTimeout(r, CONNECT_RETRY_MS));
          continue;
        }
        throw netError(e, `connect to ${url}`);
      }
    }
  }

  /** A failure ack that already arrived, if any. */
  get failed(): MigstreamError | null {
    return this.#ack && !this.#ack.ok ? ackError(this.#ack) : null;
  }

  /** After `sink.end()`: waits for the destination's ack; throws its failure. */
  async confirm(timeoutMs = DEFAULT_ACK_TIMEOUT_MS): Promise<Ack & { ok: true }> {
    const deadline = Date.now() + timeoutMs;
    try {
      for (;;) {
        const ack = this.#ack;
        if (ack) {
          if (!ack.ok) throw ackError(ack);
          return ack;
        }
        if (this.#error) throw this.#error;
        if (this.#ended) throw new MigstreamError("TRANSPORT", `${this.url}: the destination closed the connection without confirming the restore`);
        const left = deadline - Date.now();
        if (left <= 0) throw new MigstreamError("TIMEOUT", `${this.url}: no answer from the destination within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          this.#wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
    } finally {
      this.socket.destroy();
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}
