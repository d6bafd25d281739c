// The network leg of a migration: the source connects and writes the stream,
// the destination listens, restores while the bytes arrive, and answers with
// an ack line (ack.ts). Both directions honour backpressure: the destination
// reads only as fast as its device consumes, so the source's writes wait.
//
// A connection opens with the destination's hello (hello.ts: ready, what it
// requires, the connection's challenge); the source reads it before it sends
// a byte or touches its device. The listener serves one connection at a time:
// one that arrives meanwhile gets a "busy" failure ack instead of a hello, and
// its source retries for as long as its connect timeout allows. A served
// connection must deliver a verified stream header and first frames within
// the handshake deadline (`TcpPeer.established()` ends it), else it is
// dropped before it can reach the device.
import type * as Net from "node:net";
import { MigstreamError } from "../errors.js";
import { type ByteSink, writableSink } from "../migrate/sink.js";
import { builtin } from "../transport/builtin.js";
import { type Ack, ackError, BUSY_MESSAGE, encodeAck, MAX_ACK_BYTES, parseAck } from "./ack.js";
import { encodeHello, HELLO_SIZE, type Hello, mayBeHello, newChallenge, parseHello } from "./hello.js";

/** Where a listener binds when the URL names no host. */
export const DEFAULT_LISTEN_HOST = "127.0.0.1";
/** Longest wait for stream bytes (destination) or for a drain (source), ms. */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** How long a served connection may take to deliver a verified stream header and first frames, ms. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5_000;
/** How long a source keeps retrying a refused connection, ms. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Pause between connection attempts, ms. */
export const CONNECT_RETRY_MS = 100;
/** Longest wait for the destination's ack after the last byte, ms. */
export const DEFAULT_ACK_TIMEOUT_MS = 60_000;
/** After a failure ack, how long the destination drains the source's bytes so the ack can be read, ms. */
export const FAILURE_LINGER_MS = 2_000;
/** Longest wait for the answer to be handed to the system (a peer that reads nothing fills the socket), ms. */
export const ANSWER_TIMEOUT_MS = 2_000;

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
  if (!Number.isInteger(port) || port > 65535)
    throw new MigstreamError("USAGE", `${what}: port ${m[2]} is out of range`);
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

export interface TcpListenOptions {
  /** Tell sources (in the hello) that only an authenticated stream is taken. */
  keyed?: boolean;
  /** Tell sources (in the hello) that only an encrypted stream is taken. */
  encrypted?: boolean;
}

export interface TcpAcceptOptions {
  /** Longest wait for more stream bytes, ms (0: none). */
  idleTimeoutMs?: number;
  /** Longest wait for a connection, ms (0: none). */
  acceptTimeoutMs?: number;
  /** From its arrival, how long a connection may take until `established()`, ms (0: none). */
  handshakeTimeoutMs?: number;
}

/** A connection greeted with a hello, waiting to be accepted. */
interface Arrival {
  socket: Net.Socket;
  challenge: Uint8Array;
  /** Date.now() when it arrived. */
  at: number;
}

export class TcpListener {
  #busy = false;
  #pending: Arrival | null = null;
  #waiter: { resolve(a: Arrival): void; reject(e: unknown): void } | null = null;
  /** Connections refused while busy. */
  refused = 0;

  private constructor(
    private readonly server: Net.Server,
    readonly address: TcpAddress,
    private readonly options: TcpListenOptions,
  ) {
    server.on("connection", (s) => this.#arrive(s));
  }

  /** Binds `addr` (port 0: any free port). */
  static async listen(addr: TcpAddress, options: TcpListenOptions = {}): Promise<TcpListener> {
    const net = await builtin<typeof Net>("net");
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once("error", (e) => reject(netError(e, `listen on ${formatTcpUrl(addr)}`)));
      server.listen({ host: addr.host, port: addr.port, exclusive: true }, () => resolve());
    });
    server.on("error", () => {}); // after listening, failures surface on the connections
    const a = server.address() as Net.AddressInfo;
    return new TcpListener(server, { host: a.address, port: a.port }, options);
  }

  get url(): string {
    return formatTcpUrl(this.address);
  }

  #arrive(s: Net.Socket): void {
    s.on("error", () => {}); // reported through the peer's reader
    if (this.#busy) {
      this.#refuse(s);
      return;
    }
    this.#busy = true;
    // The hello goes out at once: the source waits for it before it sends anything.
    const challenge = newChallenge();
    s.write(encodeHello({ keyed: this.options.keyed === true, encrypted: this.options.encrypted === true, challenge }));
    const arrival = { socket: s, challenge, at: Date.now() };
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = null;
      w.resolve(arrival);
    } else this.#pending = arrival;
  }

  #refuse(s: Net.Socket): void {
    this.refused++;
    s.end(encodeAck({ ok: false, code: "TRANSPORT", message: BUSY_MESSAGE, busy: true }));
    linger(s);
  }

  /** The next source connection (one at a time: release the previous peer first). */
  async accept(options: TcpAcceptOptions = {}): Promise<TcpPeer> {
    let arrival: Arrival;
    if (this.#pending) {
      arrival = this.#pending;
      this.#pending = null;
    } else {
      if (this.#waiter) throw new MigstreamError("USAGE", "accept() is already waiting");
      arrival = await new Promise<Arrival>((resolve, reject) => {
        const ms = options.acceptTimeoutMs ?? 0;
        const timer =
          ms > 0
            ? setTimeout(() => {
                this.#waiter = null;
                reject(new MigstreamError("TIMEOUT", `no source connected to ${this.url} within ${ms} ms`));
              }, ms)
            : undefined;
        this.#waiter = {
          resolve: (a) => {
            clearTimeout(timer);
            resolve(a);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        };
      });
    }
    return new TcpPeer(
      arrival.socket,
      {
        challenge: arrival.challenge,
        idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
        handshakeUntil: (options.handshakeTimeoutMs ?? 0) > 0 ? arrival.at + options.handshakeTimeoutMs! : 0,
      },
      () => {
        this.#busy = false;
      },
    );
  }

  /** Stops listening (connections already accepted live on); refuses one nobody accepted yet. */
  async close(): Promise<void> {
    if (this.#pending) this.#refuse(this.#pending.socket);
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
  /** This connection's challenge (sent in the hello): a keyed stream must be bound to it. */
  readonly challenge: Uint8Array;
  /** Stream bytes received so far. */
  received = 0;
  #ended = false;
  #error: MigstreamError | null = null;
  #wake: (() => void) | null = null;
  #released = false;
  readonly #idleTimeoutMs: number;
  /** Date.now() by which the connection must be established, or 0 once it is (or without a deadline). */
  #handshakeUntil: number;

  constructor(
    private readonly socket: Net.Socket,
    o: { challenge: Uint8Array; idleTimeoutMs: number; handshakeUntil: number },
    private readonly release: () => void,
  ) {
    this.remote = formatTcpUrl({ host: socket.remoteAddress ?? "?", port: socket.remotePort ?? 0 });
    this.challenge = o.challenge;
    this.#idleTimeoutMs = o.idleTimeoutMs;
    this.#handshakeUntil = o.handshakeUntil;
    const wake = () => this.#wakeUp();
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

  #wakeUp(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  /**
   * The stream proved itself (a verified header and first frames, checked
   * against the device): the handshake deadline no longer applies, only the
   * idle timeout.
   */
  established(): void {
    this.#handshakeUntil = 0;
  }

  /** Ends a wait for stream bytes with `e` (a stop signal): the reader fails with it, the socket stays open for the answer. */
  abort(e: MigstreamError): void {
    this.#error ??= e;
    this.#wakeUp();
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
      const idle = this.#idleTimeoutMs;
      const shake = this.#handshakeUntil > 0 ? this.#handshakeUntil - Date.now() : Infinity;
      const ms = Math.min(idle > 0 ? idle : Infinity, shake);
      const timer =
        ms < Infinity
          ? setTimeout(
              () => {
                this.#wake = null;
                reject(
                  shake <= idle || idle <= 0
                    ? new MigstreamError(
                        "TIMEOUT",
                        `no verified stream header from ${this.remote} within the handshake deadline`,
                        { offset: this.received },
                      )
                    : new MigstreamError("TIMEOUT", `no stream bytes from ${this.remote} for ${idle} ms`, {
                        offset: this.received,
                      }),
                );
              },
              Math.max(0, ms),
            )
          : undefined;
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Sends the answer and closes, after draining the source for a while (at most FAILURE_LINGER_MS). */
  async respond(ack: Ack): Promise<void> {
    const s = this.socket;
    if (!s.destroyed && s.writable) {
      // Bounded: a peer that does not read its answer must not hold the destination.
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ANSWER_TIMEOUT_MS);
        const done = () => {
          clearTimeout(t);
          resolve();
        };
        s.end(encodeAck(ack), done);
        s.once("close", done);
      });
    }
    // Drain what the peer still sends for a while before closing: closing on unread bytes would send a
    // reset, which can destroy the answer before the peer read it. A peer that closes ends this at once.
    linger(s);
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
  /** Keep retrying a refused connection, or a busy destination, this long, ms (0: one attempt). */
  connectTimeoutMs?: number;
  /** Longest wait for the destination's hello, or for it to take more bytes, ms (0: none). */
  idleTimeoutMs?: number;
  /** Ends connecting (ABORTED), e.g. on a stop signal. */
  signal?: AbortSignal;
}

function aborted(signal: AbortSignal, url: string): MigstreamError {
  const why = signal.reason instanceof Error ? signal.reason.message : "aborted";
  return new MigstreamError("ABORTED", `${why} while connecting to ${url}`, { cause: signal.reason });
}

/** What a destination says first: its hello, or (refusing) a failure ack. */
type Greeting = { hello: Hello; rest: Uint8Array } | { ack: Ack & { ok: false } };

/** Reads the destination's first message from a connected socket (paused on return). */
function greeting(socket: Net.Socket, url: string, timeoutMs: number, signal?: AbortSignal): Promise<Greeting> {
  return new Promise<Greeting>((resolve, reject) => {
    let got = new Uint8Array(0);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => done(aborted(signal!, url));
    const done = (e: unknown, g?: Greeting) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      socket.off("data", onData);
      socket.off("error", onError);
      socket.off("close", onClose);
      socket.pause();
      if (g) resolve(g);
      else reject(e);
    };
    const onData = (c: Buffer) => {
      const all = new Uint8Array(got.length + c.length);
      all.set(got);
      all.set(c, got.length);
      got = all;
      try {
        if (got[0] === 0x7b) {
          // "{": a failure ack line (a busy or failing destination).
          const nl = got.indexOf(0x0a);
          if (nl < 0) {
            if (got.length > MAX_ACK_BYTES)
              throw new MigstreamError(
                "TRANSPORT",
                `${url}: the destination sent more than ${MAX_ACK_BYTES} bytes without an ack line`,
              );
            return;
          }
          const ack = parseAck(new TextDecoder().decode(got.subarray(0, nl)));
          if (ack.ok)
            throw new MigstreamError(
              "TRANSPORT",
              `${url}: the destination confirmed a restore before any stream was sent`,
            );
          return done(null, { ack });
        }
        if (!mayBeHello(got))
          throw new MigstreamError(
            "TRANSPORT",
            `${url}: not a migstream destination (it answered neither a hello nor an ack)`,
          );
        if (got.length < HELLO_SIZE) return;
        done(null, { hello: parseHello(got.subarray(0, HELLO_SIZE), url), rest: got.slice(HELLO_SIZE) });
      } catch (e) {
        done(e);
      }
    };
    const onError = (e: Error) => done(netError(e, url));
    const onClose = () =>
      done(new MigstreamError("TRANSPORT", `${url}: the destination closed the connection without a hello`));
    socket.on("data", onData);
    socket.on("error", onError);
    socket.on("close", onClose);
    signal?.addEventListener("abort", onAbort);
    if (signal?.aborted) onAbort();
    if (timeoutMs > 0)
      timer = setTimeout(
        () => done(new MigstreamError("TIMEOUT", `${url}: no hello from the destination within ${timeoutMs} ms`)),
        timeoutMs,
      );
  });
}

/** Waits `ms`, or less when `signal` aborts (then throws ABORTED). */
async function pause(ms: number, url: string, signal?: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done);
  });
  if (signal?.aborted) throw aborted(signal, url);
}

/**
 * The source end of a network migration: the destination's hello (what it
 * requires, the challenge to bind the stream to), a sink for the stream (its
 * writes are not copied: a write settles once the socket is done with the
 * bytes, so the writer may then reuse them), then the destination's ack.
 */
export class TcpDestination {
  readonly sink: ByteSink;
  #ack: Ack | null = null;
  #ended = false;
  #error: MigstreamError | null = null;
  #ackBytes = new Uint8Array(0);
  #wake: (() => void) | null = null;

  private constructor(
    private readonly socket: Net.Socket,
    readonly url: string,
    /** What the destination said it requires, and this connection's challenge. */
    readonly hello: Hello,
    idleTimeoutMs: number,
    rest: Uint8Array,
  ) {
    const wake = () => {
      const w = this.#wake;
      this.#wake = null;
      w?.();
    };
    const onData = (c: Uint8Array) => {
      if (this.#ack) return;
      const all = new Uint8Array(this.#ackBytes.length + c.length);
      all.set(this.#ackBytes);
      all.set(c, this.#ackBytes.length);
      this.#ackBytes = all;
      const nl = all.indexOf(0x0a);
      if (nl < 0) {
        if (all.length > MAX_ACK_BYTES) {
          this.#error ??= new MigstreamError(
            "TRANSPORT",
            `${url}: the destination sent more than ${MAX_ACK_BYTES} bytes without an ack line`,
          );
          socket.destroy();
        }
        return;
      }
      try {
        this.#ack = parseAck(new TextDecoder().decode(all.subarray(0, nl)));
      } catch (e) {
        this.#error ??= netError(e, url);
      }
      // A failure ack means the destination stopped reading: stop writing at once.
      if (!this.#ack?.ok) socket.destroy();
      wake();
    };
    socket.on("data", onData);
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
    if (rest.length > 0) onData(rest);
    socket.resume();
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

  /**
   * Connects to a listening destination and reads its hello, retrying a
   * refused connection and a busy destination for `connectTimeoutMs`.
   */
  static async connect(addr: TcpAddress, options: TcpConnectOptions = {}): Promise<TcpDestination> {
    const net = await builtin<typeof Net>("net");
    const url = formatTcpUrl(addr);
    const connectMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const deadline = Date.now() + connectMs;
    const idle = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    let busy = 0;
    const signal = options.signal;
    for (;;) {
      if (signal?.aborted) throw aborted(signal, url);
      let s: Net.Socket;
      try {
        s = await new Promise<Net.Socket>((resolve, reject) => {
          const s = net.connect({ host: addr.host, port: addr.port, allowHalfOpen: true });
          s.once("connect", () => {
            s.off("error", reject);
            resolve(s);
          });
          s.once("error", reject);
        });
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code === "ECONNREFUSED" && Date.now() + CONNECT_RETRY_MS < deadline) {
          await pause(CONNECT_RETRY_MS, url, signal);
          continue;
        }
        throw netError(e, `connect to ${url}`);
      }
      s.on("error", () => {}); // reported by greeting() or the destination's reader
      let g: Greeting;
      try {
        g = await greeting(s, url, idle, signal);
      } catch (e) {
        s.destroy();
        throw e;
      }
      if ("hello" in g) return new TcpDestination(s, url, g.hello, idle, g.rest);
      s.destroy();
      if (g.ack.busy === true && Date.now() + CONNECT_RETRY_MS < deadline) {
        busy++;
        await pause(CONNECT_RETRY_MS, url, signal);
        continue;
      }
      const e = ackError(g.ack);
      throw g.ack.busy === true
        ? new MigstreamError(
            e.code,
            `${e.message}${busy > 0 ? ` (asked ${busy + 1} times within ${connectMs} ms)` : ""}`,
          )
        : e;
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
        if (this.#ended)
          throw new MigstreamError(
            "TRANSPORT",
            `${this.url}: the destination closed the connection without confirming the restore`,
          );
        const left = deadline - Date.now();
        if (left <= 0)
          throw new MigstreamError("TIMEOUT", `${this.url}: no answer from the destination within ${timeoutMs} ms`);
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
