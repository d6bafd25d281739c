// The network forms of the commands that send a stream (`save --to`, `encode
// --to`) and of those that receive one (`restore --listen`, `decode
// --listen`): one rule for which addresses need a key, and one serving loop
// for a listening receiver — one source at a time, a connection that fails
// before anything of it was delivered is dropped and the listener keeps
// waiting, a failure after that ends the command.
import { MigstreamError } from "../errors.js";
import { type Ack, failureAck } from "../network/ack.js";
import { formatTcpUrl, isLoopback, type TcpAddress, TcpListener, type TcpPeer } from "../network/tcp.js";
import { usageOf } from "./args.js";
import type { CliIO } from "./command.js";
import { errorLine } from "./exit.js";
import { note, type Style } from "./style.js";

/**
 * Device state is sensitive: a stream to or from a non-loopback address must
 * be authenticated (--key-file), unless the user said --insecure.
 */
export function requireKeyOffLoopback(command: string, addr: TcpAddress | undefined, key: Uint8Array | undefined, insecure: boolean | undefined): void {
  if (addr && !isLoopback(addr.host) && !key && !insecure) {
    throw usageOf(command, `${formatTcpUrl(addr)} is not a loopback address: give --key-file (device state is sensitive; the same key on both ends) or say --insecure`);
  }
}

export interface ServeOptions {
  /** The command, for its notes ("restore: listening on ..."). */
  command: string;
  /** What a failed connection did not reach, for the "dropped" line ("the device", "the output"). */
  target: string;
  idleTimeoutMs: number;
  acceptTimeoutMs: number;
  signal?: AbortSignal;
}

/** One served source: what `receive` returned and who sent it. */
export interface Served<T> {
  result: T;
  remote: string;
}

/**
 * Listens on `addr` and serves sources one at a time until one succeeds.
 * `receive` consumes a connection's stream and returns its result and the ack
 * for the source; it sets `touched.yes` once anything reached the target. A
 * failure with nothing delivered drops that connection (with a failure ack)
 * and keeps listening; any other failure is answered and thrown. The address
 * is always printed on stderr (with port 0 it is the only way to learn it).
 */
export async function serveOneSource<T>(
  io: CliIO,
  style: Style,
  addr: TcpAddress,
  o: ServeOptions,
  receive: (peer: TcpPeer, touched: { yes: boolean }) => Promise<{ result: T; ack: Ack & { ok: true } }>,
): Promise<Served<T>> {
  const listener = await TcpListener.listen(addr);
  let current: TcpPeer | undefined;
  const stop = () => {
    void listener.close();
    current?.destroy();
  };
  o.signal?.addEventListener("abort", stop);
  io.stderr.write(`${o.command}: listening on ${listener.url}\n`);
  try {
    for (;;) {
      const peer: TcpPeer = await listener.accept({ idleTimeoutMs: o.idleTimeoutMs, acceptTimeoutMs: o.acceptTimeoutMs });
      current = peer;
      note(io, style, `${o.command}: source connected from ${peer.remote}`);
      const touched = { yes: false };
      try {
        const { result, ack } = await receive(peer, touched);
        await peer.respond(ack);
        return { result, remote: peer.remote };
      } catch (e) {
        await peer.respond(failureAck(e));
        if (touched.yes || o.signal?.aborted) throw e;
        io.stderr.write(`migstream: ${errorLine(e)}; connection from ${peer.remote} dropped, nothing reached ${o.target}; still listening\n`);
      }
    }
  } catch (e) {
    if (e instanceof MigstreamError && e.code === "ABORTED" && o.signal?.aborted) {
      throw new MigstreamError("ABORTED", `${o.command}: interrupted while waiting for a source; ${o.target} was not touched`);
    }
    throw e;
  } finally {
    o.signal?.removeEventListener("abort", stop);
    await listener.close();
  }
}
