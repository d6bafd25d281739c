// `migstream restore --listen`: serve sources one connection at a time until
// one restore succeeds (or `--attempts` failed ones). A connection that does
// not deliver a verified stream header and first frames within the handshake
// deadline, or whose stream cannot fit the device, is dropped before it
// reaches the device; one that fails later leaves the device reset and
// stopped; either way the source is told why and the listener goes on. A stop
// signal ends the run with a report that says what was written and how the
// device was left, and the connected source hears the same.
import { MigstreamError } from "../errors.js";
import { failureAck } from "../migrate/ack.js";
import { type TcpAddress, TcpListener, type TcpPeer } from "../migrate/tcp.js";
import { withNote } from "../protocol/failure.js";
import type { RegionIO } from "../protocol/region-io.js";
import type { CliIO } from "./command.js";
import { errorLine } from "./exit.js";
import { type Done, type Job, restoreOnce } from "./restore-once.js";
import { note, type Style } from "./style.js";

export interface ListenSettings {
  addr: TcpAddress;
  /** Longest wait for more stream bytes, ms (0: none). */
  idleTimeoutMs: number;
  /** Longest wait for a source, ms (0: none). */
  acceptTimeoutMs: number;
  /** From its arrival, how long a connection may take to prove its stream, ms (0: none). */
  handshakeTimeoutMs: number;
  /** Failed attempts after which the listener gives up (0: never). */
  attempts: number;
}

const reasonOf = (signal: AbortSignal | undefined): string => (signal?.reason instanceof Error ? signal.reason.message : "interrupted");

/** Listens and restores; resolves with the restore that succeeded. */
export async function listenAndRestore(io: CliIO, style: Style, region: RegionIO, job: Job, o: ListenSettings): Promise<Done> {
  const listener = await TcpListener.listen(o.addr, { keyed: job.key !== undefined, encrypted: job.requireEncryption === true });
  let current: TcpPeer | undefined;
  let failures = 0;
  /** An earlier attempt reached the device (it was then reset and stopped). */
  let resetBy = 0;
  const stop = () => {
    void listener.close();
    current?.abort(new MigstreamError("ABORTED", `${reasonOf(io.signal)} while receiving the stream from ${current.remote}`));
  };
  io.signal?.addEventListener("abort", stop);
  // With port 0 the line is the only way to learn the port; -q asks for nothing but errors.
  note(io, style, `restore: listening on ${listener.url}`);
  try {
    for (;;) {
      let peer: TcpPeer;
      try {
        peer = await listener.accept({ idleTimeoutMs: o.idleTimeoutMs, acceptTimeoutMs: o.acceptTimeoutMs, handshakeTimeoutMs: o.handshakeTimeoutMs });
      } catch (e) {
        if (!io.signal?.aborted) throw e;
        const device = resetBy > 0 ? `the device was reset and left stopped when attempt ${resetBy} failed` : "the device was not touched";
        throw new MigstreamError("ABORTED", `restore: ${reasonOf(io.signal)} while waiting for a source; ${device}`);
      }
      current = peer;
      note(io, style, `restore: source connected from ${peer.remote}`);
      let touched = false;
      try {
        const done = await restoreOnce(io, style, region, peer.chunks(), job, {
          challenge: peer.challenge,
          onTouch: () => {
            touched = true;
            peer.established();
          },
        });
        // Bytes after STREAM_END (read with its last piece, or waiting on the socket) do not undo the restore; the source hears of them.
        done.end = { ...done.end, trailingBytes: done.end.trailingBytes + peer.buffered };
        const trailing = done.end.trailingBytes;
        await peer.respond({ ok: true, started: done.summary.started, transactions: done.summary.transactions, bytes: done.summary.bytes, ...(trailing > 0 ? { trailingBytes: trailing } : {}) });
        done.source = peer.remote;
        return done;
      } catch (e) {
        // Untouched: say so (a touched device's error already says what was written and how it was left).
        const err = touched || !(e instanceof MigstreamError) || /not touched|nothing reached/.test(e.message) ? e : withNote(e, "nothing reached the device");
        await peer.respond(failureAck(err));
        current = undefined;
        if (io.signal?.aborted) throw err;
        failures++;
        if (touched) resetBy = failures;
        const of = o.attempts > 0 ? ` (attempt ${failures} of ${o.attempts})` : "";
        if (o.attempts > 0 && failures >= o.attempts) {
          throw err instanceof MigstreamError ? withNote(err, `connection from ${peer.remote}; giving up after ${failures} failed attempt${failures === 1 ? "" : "s"}`) : err;
        }
        io.stderr.write(`migstream: ${errorLine(err)}; connection from ${peer.remote} dropped${of}; still listening\n`);
      }
    }
  } finally {
    io.signal?.removeEventListener("abort", stop);
    await listener.close();
  }
}
