// The network forms of the commands that send a stream (`save --to`, `encode
// --to`) and of those that receive one (`restore --listen`, `decode
// --listen`): one rule for which addresses need a key, what a sender checks
// in the destination's hello, and one serving loop for a listening receiver —
// one source at a time; a connection that does not prove its stream within the
// handshake deadline, or fails before anything of it was delivered, is dropped
// and the listener keeps waiting; one that fails after that too when the
// target was put back (a device reset), else it ends the command; at most
// `attempts` failures; a stop signal answers the connected source and says
// what was delivered.
import { MigstreamError } from "../errors.js";
import { type Ack, failureAck } from "../network/ack.js";
import {
  formatTcpUrl,
  isLoopback,
  type TcpAddress,
  type TcpDestination,
  TcpListener,
  type TcpPeer,
} from "../network/tcp.js";
import { withNote } from "../protocol/failure.js";
import { usageOf } from "./args.js";
import type { CliIO } from "./command.js";
import { errorLine } from "./exit.js";
import { note, type Style } from "./style.js";

/**
 * Device state is sensitive: a stream to or from a non-loopback address must
 * be authenticated (--key-file), unless the user said --insecure.
 */
export function requireKeyOffLoopback(
  command: string,
  addr: TcpAddress | undefined,
  key: Uint8Array | undefined,
  insecure: boolean | undefined,
): void {
  if (addr && !isLoopback(addr.host) && !key && !insecure) {
    throw usageOf(
      command,
      `${formatTcpUrl(addr)} is not a loopback address: give --key-file (device state is sensitive; the same key on both ends) or say --insecure`,
    );
  }
}

/**
 * What the destination's hello requires, checked before the sender touches
 * its device or input: a key mismatch, or encryption it does not do, is MAC.
 * `untouched` says what the sender left alone ("the device was not touched").
 */
export function checkHello(dest: TcpDestination, keyed: boolean, encrypted: boolean, untouched: string): void {
  if (dest.hello.encrypted && !encrypted) {
    throw new MigstreamError(
      "MAC",
      `${dest.url} takes only encrypted streams: add --encrypt (with --key-file); ${untouched}`,
    );
  }
  if (dest.hello.keyed && !keyed) {
    throw new MigstreamError(
      "MAC",
      `${dest.url} takes only authenticated streams: give --key-file with the destination's key; ${untouched}`,
    );
  }
  if (!dest.hello.keyed && keyed) {
    throw new MigstreamError(
      "MAC",
      `${dest.url} holds no key and would refuse an authenticated stream: give it --key-file too, or send without one; ${untouched}`,
    );
  }
}

export interface ServeOptions {
  /** The command, for its notes ("restore: listening on ..."). */
  command: string;
  /** What a failed connection did not reach, for the "dropped" line ("the device", "the output"). */
  target: string;
  idleTimeoutMs: number;
  acceptTimeoutMs: number;
  /** From its arrival, how long a connection may take until `receive` calls `peer.established()`, ms (0: none). */
  handshakeTimeoutMs: number;
  /** Failed attempts after which the listener gives up with the last one's error (0: never). */
  attempts: number;
  /** After a failure that reached the target, keep listening (the target was put back, e.g. a device reset); else end. */
  retryTouched: boolean;
  /** What the hello announces: a key is needed; only encrypted streams are taken. */
  keyed: boolean;
  encrypted?: boolean;
  signal?: AbortSignal;
}

/** One served source: what `receive` returned and who sent it. */
export interface Served<T> {
  result: T;
  remote: string;
}

const reasonOf = (signal: AbortSignal | undefined): string =>
  signal?.reason instanceof Error ? signal.reason.message : "interrupted";

/**
 * Listens on `addr` and serves sources one at a time until one succeeds.
 * `receive` consumes a connection's stream (calling `peer.established()` once
 * it proved itself) and returns its result and the answer for the source; it
 * sets `touched.yes` once anything reached the target. The address is printed
 * on stderr — with -q only when the system chose the port (then it is the
 * only way to learn it).
 */
export async function serveOneSource<T>(
  io: CliIO,
  style: Style,
  addr: TcpAddress,
  o: ServeOptions,
  receive: (peer: TcpPeer, touched: { yes: boolean }) => Promise<{ result: T; ack: Ack & { ok: true } }>,
): Promise<Served<T>> {
  const listener = await TcpListener.listen(addr, { keyed: o.keyed, encrypted: o.encrypted === true });
  let current: TcpPeer | undefined;
  let failures = 0;
  /** The attempt that reached the target before it failed (the target was then put back), or 0. */
  let reachedBy = 0;
  const stop = () => {
    void listener.close();
    current?.abort(
      new MigstreamError("ABORTED", `${reasonOf(o.signal)} while receiving the stream from ${current.remote}`),
    );
  };
  o.signal?.addEventListener("abort", stop);
  if (!style.quiet || addr.port === 0) io.stderr.write(`${o.command}: listening on ${listener.url}\n`);
  try {
    for (;;) {
      let peer: TcpPeer;
      try {
        peer = await listener.accept({
          idleTimeoutMs: o.idleTimeoutMs,
          acceptTimeoutMs: o.acceptTimeoutMs,
          handshakeTimeoutMs: o.handshakeTimeoutMs,
        });
      } catch (e) {
        if (!o.signal?.aborted) throw e;
        const what =
          reachedBy > 0 ? `${o.target} was put back when attempt ${reachedBy} failed` : `${o.target} was not touched`;
        throw new MigstreamError("ABORTED", `${o.command}: ${reasonOf(o.signal)} while waiting for a source; ${what}`);
      }
      current = peer;
      note(io, style, `${o.command}: source connected from ${peer.remote}`);
      const touched = { yes: false };
      try {
        const { result, ack } = await receive(peer, touched);
        await peer.respond(ack);
        return { result, remote: peer.remote };
      } catch (e) {
        // Untouched: say so (a touched target's error says what was delivered and how it was left).
        const err =
          touched.yes || !(e instanceof MigstreamError) || /not touched|nothing reached/.test(e.message)
            ? e
            : withNote(e, `nothing reached ${o.target}`);
        await peer.respond(failureAck(err));
        current = undefined;
        if (o.signal?.aborted || (touched.yes && !o.retryTouched)) throw err;
        failures++;
        if (touched.yes) reachedBy = failures;
        if (o.attempts > 0 && failures >= o.attempts) {
          throw err instanceof MigstreamError
            ? withNote(
                err,
                `connection from ${peer.remote}; giving up after ${failures} failed attempt${failures === 1 ? "" : "s"}`,
              )
            : err;
        }
        const of = o.attempts > 0 ? ` (attempt ${failures} of ${o.attempts})` : "";
        io.stderr.write(`migstream: ${errorLine(err)}; connection from ${peer.remote} dropped${of}; still listening\n`);
      }
    }
  } finally {
    o.signal?.removeEventListener("abort", stop);
    await listener.close();
  }
}
