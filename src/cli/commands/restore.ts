// `migstream restore`: the destination side. Restores a device from a stream
// file, or listens for one source (`migstream save --to`) and restores while
// the stream arrives — no temporary file, the device's pace sets the socket's.
import { stat } from "node:fs/promises";
import { MigstreamError } from "../../errors.js";
import { failureAck } from "../../migrate/ack.js";
import type { StreamEnd } from "../../migrate/items.js";
import { restoreDevice } from "../../migrate/restore-stream.js";
import { StatsCollector } from "../../migrate/stats.js";
import { DEFAULT_IDLE_TIMEOUT_MS, formatTcpUrl, isLoopback, parseTcpUrl, TcpListener, type TcpPeer } from "../../migrate/tcp.js";
import type { ResumeSummary } from "../../protocol/progress.js";
import type { RegionIO } from "../../protocol/region-io.js";
import { openDevice, SPEC_FORMS } from "../../transport/spec.js";
import { intOption, parseCommand, usageOf } from "../args.js";
import type { CliIO, Command } from "../command.js";
import { errorLine } from "../exit.js";
import { openInput } from "../files.js";
import { readKeyFile } from "../key.js";
import { phaseLabel, ProgressLine } from "../progress.js";
import { renderStats } from "../report.js";
import { note, styleFor, type Style } from "../style.js";
import { bytes, duration } from "../units.js";

const HELP = `usage: migstream restore --device SPEC (IN | --listen tcp://HOST:PORT) [options]

Restores the device from a stream. Each transaction reaches the device only
after its chunks (and, with a key, its frames' MACs) verified, and the device
is started only after the whole stream verified; on any failure the device is
reset and left stopped, never RUNNING with a partial state.

With --listen it waits for one source (\`migstream save --to\`) and restores
while the stream arrives, then answers the source. It binds to loopback unless
an address is given (tcp://:PORT is 127.0.0.1), refuses a non-loopback address
without --key-file unless --insecure is given, serves one connection at a
time (others are refused), and drops a connection that is not a valid stream
(nothing reaches the device) and keeps listening. Port 0 picks a free port;
the address is printed on stderr either way.
  --device SPEC              ${SPEC_FORMS.join("\n                             ")}
  IN                         a stream file (- for stdin)
  --listen tcp://HOST:PORT   receive the stream from a source instead
  --no-start                 leave the device in RESUMING (the VMM starts it)
  --key-file F               the key of an authenticated stream (required off loopback)
  --insecure                 allow listening off loopback without a key
  --stream-device N          which device of a multi-device stream (default: the first)
  --timeout MS               longest wait for more stream bytes (default ${DEFAULT_IDLE_TIMEOUT_MS})
  --accept-timeout MS        longest wait for a source to connect (default: none)
  --json                     print the result as JSON on stdout
  -q, --quiet                no progress line, no summary

examples:
  migstream restore --device vfio-user:/run/dst.sock state.mig
  migstream restore --device vfio-user:/run/dst.sock --listen tcp://0.0.0.0:7000 --key-file mig.key`;

export const restore: Command = {
  name: "restore",
  summary: "restore a device from a stream file or from a source over TCP",
  help: HELP,
  signals: true,
  async run(argv, io) {
    const { values: v, positionals } = parseCommand(
      "restore",
      argv,
      {
        device: { type: "string" },
        listen: { type: "string" },
        "no-start": { type: "boolean" },
        "key-file": { type: "string" },
        insecure: { type: "boolean" },
        "stream-device": { type: "string" },
        timeout: { type: "string" },
        "accept-timeout": { type: "string" },
      },
      { min: 0, max: 1, names: "IN" },
    );
    const style = styleFor(io, v);
    if (v.device === undefined) throw usageOf("restore", "missing --device SPEC");
    if ((positionals.length === 1) === (v.listen !== undefined)) throw usageOf("restore", "give exactly one of IN and --listen tcp://HOST:PORT");
    const addr = v.listen === undefined ? undefined : parseTcpUrl(v.listen, "--listen");
    const key = v["key-file"] === undefined ? undefined : await readKeyFile(v["key-file"]);
    if (addr && !isLoopback(addr.host) && !key && !v.insecure) {
      throw usageOf("restore", `${formatTcpUrl(addr)} is not a loopback address: give --key-file (device state is sensitive) or say --insecure`);
    }
    const idleTimeoutMs = intOption("restore", "--timeout", v.timeout, DEFAULT_IDLE_TIMEOUT_MS, 0, 2 ** 31);
    const acceptTimeoutMs = intOption("restore", "--accept-timeout", v["accept-timeout"], 0, 0, 2 ** 31);
    const options: Job = {
      key,
      start: v["no-start"] !== true,
      device: v["stream-device"] === undefined ? undefined : intOption("restore", "--stream-device", v["stream-device"], 0, 0, 0xffff),
      signal: io.signal,
    };
    const region = await openDevice(v.device);
    try {
      let done: Done;
      if (addr) {
        done = await fromNetwork(io, style, region, options, addr, idleTimeoutMs, acceptTimeoutMs);
      } else {
        const source = await openInput(positionals[0], io);
        done = await restoreOnce(io, style, region, source, options);
        done.source = positionals[0] === "-" ? "stdin" : positionals[0];
        // A file's bytes past the stream are known without reading them; stdin's only as far as they were read.
        const size = positionals[0] === "-" ? undefined : await inputSize(positionals[0]);
        if (size !== undefined) done.end = { ...done.end, trailingBytes: size - done.end.streamBytes };
      }
      const s = done.summary;
      const trailing = done.end.trailingBytes;
      // The restore stands (it verified and completed); the bytes after the stream are reported, even with -q.
      if (trailing > 0) io.stderr.write(`migstream: warning: ${trailingNote(trailing, done.end.streamBytes, done.source)}\n`);
      if (style.json) {
        io.stdout.write(
          `${JSON.stringify({ ok: true, device: v.device, source: done.source, started: s.started, transactions: s.transactions, bytes: s.bytes, ms: s.times.total, ...(trailing > 0 ? { trailingBytes: trailing } : {}), stream: done.stats })}\n`,
        );
      } else {
        note(
          io,
          style,
          `restored ${v.device} from ${done.source}: ${s.transactions} buffers, ${bytes(s.bytes)} in ${duration(s.times.total)}; device ${s.started ? "RUNNING" : "left in RESUMING"}\n` +
            renderStats(done.stats, false, false).trimEnd(),
        );
      }
      return 0;
    } finally {
      await region.close();
    }
  },
};

interface Job {
  key?: Uint8Array;
  start: boolean;
  device?: number;
  signal?: AbortSignal;
}

interface Done {
  summary: ResumeSummary;
  stats: ReturnType<StatsCollector["result"]>;
  source: string;
  /** Where the stream ended in its input (bytes read past it are counted there). */
  end: StreamEnd;
}

/** The size of a regular file (undefined for anything else). */
async function inputSize(path: string): Promise<number | undefined> {
  const st = await stat(path).catch(() => undefined);
  return st?.isFile() ? st.size : undefined;
}

function trailingNote(trailing: number, at: number, source: string): string {
  return `${trailing} bytes followed the end of the stream (at byte ${at}) from ${source}; they are not part of it and were ignored (the restore had verified and completed)`;
}

/** Counts the bytes that pass. */
async function* counted(src: AsyncIterable<Uint8Array>, count: { bytes: number }): AsyncGenerator<Uint8Array> {
  for await (const b of src) {
    count.bytes += b.length;
    yield b;
  }
}

/** One restore attempt; `touched` tells whether the device was reached. */
async function restoreOnce(io: CliIO, style: Style, region: RegionIO, source: AsyncIterable<Uint8Array>, o: Job, touched?: { yes: boolean }): Promise<Done> {
  const stats = new StatsCollector();
  const wire = { bytes: 0 };
  let end: StreamEnd = { streamBytes: 0, trailingBytes: 0 };
  const progress = new ProgressLine(io.stderr, style, "restore");
  try {
    const summary = await restoreDevice(region, counted(source, wire), {
      key: o.key,
      start: o.start,
      device: o.device,
      signal: o.signal,
      onEvent: (ev) => stats.add(ev),
      onTouch: () => {
        if (touched) touched.yes = true;
      },
      onEnd: (e) => (end = e),
      onProgress: (p) => progress.update({ phase: phaseLabel(p.phase, p.iteration), bytes: p.bytes, wire: wire.bytes }),
    });
    return { summary, stats: stats.result(end.streamBytes), source: "", end };
  } finally {
    progress.clear();
  }
}

async function fromNetwork(
  io: CliIO,
  style: Style,
  region: RegionIO,
  o: Job,
  addr: ReturnType<typeof parseTcpUrl>,
  idleTimeoutMs: number,
  acceptTimeoutMs: number,
): Promise<Done> {
  const listener = await TcpListener.listen(addr);
  let current: TcpPeer | undefined;
  const stop = () => {
    void listener.close();
    current?.destroy();
  };
  o.signal?.addEventListener("abort", stop);
  // Always printed: with port 0 it is the only way to learn the port.
  io.stderr.write(`restore: listening on ${listener.url}\n`);
  try {
    for (;;) {
      const peer: TcpPeer = await listener.accept({ idleTimeoutMs, acceptTimeoutMs });
      current = peer;
      note(io, style, `restore: source connected from ${peer.remote}`);
      const touched = { yes: false };
      try {
        const done = await restoreOnce(io, style, region, peer.chunks(), o, touched);
        // Bytes after STREAM_END (read with its last piece, or waiting on the socket) do not undo the restore; the source hears of them.
        done.end = { ...done.end, trailingBytes: done.end.trailingBytes + peer.buffered };
        const trailing = done.end.trailingBytes;
        await peer.respond({ ok: true, started: done.summary.started, transactions: done.summary.transactions, bytes: done.summary.bytes, ...(trailing > 0 ? { trailingBytes: trailing } : {}) });
        done.source = peer.remote;
        return done;
      } catch (e) {
        await peer.respond(failureAck(e));
        if (touched.yes || o.signal?.aborted) throw e;
        // Nothing reached the device: drop this connection, keep listening.
        io.stderr.write(`migstream: ${errorLine(e)}; connection from ${peer.remote} dropped, nothing reached the device; still listening\n`);
      }
    }
  } catch (e) {
    if (e instanceof MigstreamError && e.code === "ABORTED" && o.signal?.aborted) {
      throw new MigstreamError("ABORTED", "restore: interrupted while waiting for a source; the device was not touched");
    }
    throw e;
  } finally {
    o.signal?.removeEventListener("abort", stop);
    await listener.close();
  }
}
