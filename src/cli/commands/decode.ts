// `migstream decode (IN | --listen tcp://HOST:PORT) -o OUT`: one device's raw
// transactions back, byte-exact, from a stream file or from one `migstream
// encode --to` source (answered once the whole stream verified). As a pipe
// filter it hands on each transaction only after it verified, e.g. to QEMU
// through `-incoming "exec:..."`.
import { MigstreamError } from "../../errors.js";
import type { StreamStats } from "../../migrate/stats.js";
import { DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_MS, parseTcpUrl, type TcpPeer } from "../../network/tcp.js";
import { intOption, parseCommand, usageOf } from "../args.js";
import type { CliIO, Command } from "../command.js";
import { decodePool } from "../encoding.js";
import { type Output, openInput, openOutput } from "../files.js";
import { readKeyFile } from "../key.js";
import { requireKeyOffLoopback, serveOneSource } from "../network.js";
import { ProgressLine } from "../progress.js";
import { readStream } from "../read-stream.js";
import { renderStats } from "../report.js";
import { note, type Style, styleFor } from "../style.js";

export const decode: Command = {
  name: "decode",
  summary: "write a stream's raw device data back out, byte-exact",
  help: `usage: migstream decode (IN | --listen tcp://HOST:PORT) -o OUT [--device N] [--key-file F] [--threads N] [--json] [-q] [-f]

Decodes and checks the stream and writes the concatenated transactions of one
device (default: the first) to OUT. Each transaction is written only after its
chunks verified; OUT (a file) appears only when the whole stream verified — a
damaged stream leaves no output file. IN and OUT may be - (stdin, stdout).

With --listen it waits for one source (\`migstream encode --to\`), decodes
while the stream arrives and answers the source. As restore --listen: it binds
to loopback unless an address is given (tcp://:PORT is 127.0.0.1), refuses a
non-loopback address without --key-file unless --insecure is given, refuses
other sources while one is served (they retry), takes a keyed stream only
when it is bound to this connection (unless --allow-replay), and drops a
connection that does not prove its stream within --handshake-timeout or fails
before any of its bytes were written out, then keeps listening (--attempts N
bounds it). Port 0 picks a free port; the address is printed on stderr (with
-q only for port 0).
  -o, --output OUT          where the raw bytes go
  --listen tcp://HOST:PORT  receive the stream from a source instead of IN
  --device N                which device of a multi-device stream
  --key-file F              the key of an authenticated stream (required off loopback)
  --insecure                allow listening off loopback without a key
  --timeout MS              with --listen: longest wait for more stream bytes (default ${DEFAULT_IDLE_TIMEOUT_MS})
  --accept-timeout MS       with --listen: longest wait for a source (default: none)
  --handshake-timeout MS    with --listen: how long a connection may take to deliver a verified
                            stream header and first frames (default ${DEFAULT_HANDSHAKE_TIMEOUT_MS})
  --attempts N              with --listen: give up after N failed connections (default 0: never)
  --allow-replay            with --listen and --key-file: also take a keyed stream not bound to
                            this connection (a stream saved earlier, replayed)
  --require-encryption      with --listen: take only encrypted streams (--encrypt)
  --threads N               decode and verify chunks on N threads, the main one included (default: one per core)
  --json                    print a summary as JSON on stdout (not with -o -)
  -f, --force               write to stdout even when it is a terminal

examples:
  migstream decode state.mig -o state.raw
  migstream encode state.raw -o - | migstream decode - -o - | cmp - state.raw
  migstream decode --listen tcp://0.0.0.0:7000 --key-file mig.key -q -o -   (QEMU: -incoming "exec:...")`,
  async run(argv, io) {
    const { values: v, positionals } = parseCommand(
      "decode",
      argv,
      {
        output: { type: "string", short: "o" },
        listen: { type: "string" },
        device: { type: "string" },
        "key-file": { type: "string" },
        insecure: { type: "boolean" },
        timeout: { type: "string" },
        "accept-timeout": { type: "string" },
        "handshake-timeout": { type: "string" },
        attempts: { type: "string" },
        "allow-replay": { type: "boolean" },
        "require-encryption": { type: "boolean" },
        threads: { type: "string" },
        force: { type: "boolean", short: "f" },
      },
      { min: 0, max: 1, names: "IN" },
    );
    const style = styleFor(io, v);
    if ((positionals.length === 1) === (v.listen !== undefined))
      throw usageOf("decode", "give exactly one of IN and --listen tcp://HOST:PORT");
    if (v.output === undefined) throw usageOf("decode", "missing -o OUT");
    if (v.output === "-" && style.json) throw usageOf("decode", "--json needs stdout, and -o - writes the data there");
    const want = v.device === undefined ? -1 : intOption("decode", "--device", v.device, 0, 0, 0xffff);
    const addr = v.listen === undefined ? undefined : parseTcpUrl(v.listen, "--listen");
    const idleTimeoutMs = intOption("decode", "--timeout", v.timeout, DEFAULT_IDLE_TIMEOUT_MS, 0, 2 ** 31);
    const acceptTimeoutMs = intOption("decode", "--accept-timeout", v["accept-timeout"], 0, 0, 2 ** 31);
    const handshakeTimeoutMs = intOption(
      "decode",
      "--handshake-timeout",
      v["handshake-timeout"],
      DEFAULT_HANDSHAKE_TIMEOUT_MS,
      0,
      2 ** 31,
    );
    const attempts = intOption("decode", "--attempts", v.attempts, 0, 0, 2 ** 31);
    const key = v["key-file"] === undefined ? undefined : await readKeyFile(v["key-file"]);
    requireKeyOffLoopback("decode", addr, key, v.insecure);
    if (v["require-encryption"] && !key) throw usageOf("decode", "--require-encryption needs --key-file");
    const pool = decodePool("decode", v.threads);
    // The pool's workers are running: an output that cannot be opened must end them
    // too (Web Workers would keep Deno alive).
    // Writes are not copied: each transaction is assembled in one reused buffer (reuseOutput), written, and only
    // reused once the output is done with it (decodeOnce waits for each write).
    const out = await openOutput(v.output, io, { copy: false, binary: true, force: v.force, command: "decode" }).catch(
      async (e) => {
        await pool?.close();
        throw e;
      },
    );
    try {
      const job: Job = {
        key,
        want,
        pool,
        out,
        style,
        io,
        allowReplay: v["allow-replay"] === true,
        requireEncryption: v["require-encryption"] === true,
      };
      let done: Decoded;
      let from = positionals[0] === "-" ? "stdin" : positionals[0];
      if (addr) {
        const served = await serveOneSource(
          io,
          style,
          addr,
          {
            command: "decode",
            target: "the output",
            idleTimeoutMs,
            acceptTimeoutMs,
            handshakeTimeoutMs,
            attempts,
            retryTouched: false, // bytes written out cannot be taken back
            keyed: key !== undefined,
            encrypted: job.requireEncryption,
            signal: io.signal,
          },
          async (peer, touched) => {
            const d = await decodeOnce(peer.chunks(), job, touched, peer);
            const trailing = d.trailingBytes + peer.buffered;
            if (trailing > 0)
              io.stderr.write(
                `migstream: warning: ${trailing} bytes followed the end of the stream from ${peer.remote}; they are not part of it and were ignored\n`,
              );
            return {
              result: d,
              ack: {
                ok: true,
                started: false,
                transactions: d.stats.transactions,
                bytes: d.bytes,
                ...(trailing > 0 ? { trailingBytes: trailing } : {}),
              },
            };
          },
        );
        done = served.result;
        from = served.remote;
      } else done = await decodeOnce(await openInput(positionals[0], io), job);
      await out.commit();
      if (style.json)
        io.stdout.write(
          `${JSON.stringify({ ok: true, device: done.device, from, bytes: done.bytes, ...done.stats })}\n`,
        );
      else
        note(
          io,
          style,
          `decoded device ${done.device} from ${from}: ${done.bytes} bytes\n${renderStats(done.stats, false, false).trimEnd()}`,
        );
      return 0;
    } catch (e) {
      await out.abort();
      throw e;
    } finally {
      await pool?.close();
    }
  },
};

interface Job {
  key?: Uint8Array;
  /** The stream device wanted (−1: the first). */
  want: number;
  pool?: ReturnType<typeof decodePool>;
  out: Output;
  style: Style;
  io: CliIO;
  allowReplay: boolean;
  requireEncryption: boolean;
}

interface Decoded {
  device: number;
  /** Raw bytes written to the output. */
  bytes: number;
  stats: StreamStats;
  /** Over the network: bytes read past the verified STREAM_END. */
  trailingBytes: number;
}

/**
 * Decodes one whole stream into the output; `touched.yes` once a byte was
 * written. From a network `peer`: bound to its challenge, established once
 * the first device frames verified, done at the verified STREAM_END.
 */
async function decodeOnce(
  source: AsyncIterable<Uint8Array>,
  j: Job,
  touched?: { yes: boolean },
  peer?: TcpPeer,
): Promise<Decoded> {
  let device = j.want;
  let seen = false;
  const end = { trailingBytes: 0 };
  const stats = await readStream(source, {
    key: j.key,
    challenge: peer?.challenge,
    allowUnbound: j.allowReplay,
    requireEncryption: j.requireEncryption,
    stopAtEnd: peer ? end : undefined,
    verifyOnly: false,
    assemble: true,
    reuseOutput: true,
    pool: j.pool,
    progress: new ProgressLine(j.io.stderr, j.style, "decode"),
    onEvent: async (ev) => {
      if (ev.type === "device") peer?.established(); // header and first frames verified (and authenticated)
      if (ev.type === "device" && device < 0) device = ev.device;
      if (ev.type === "device" && ev.device === device) seen = true;
      if (ev.type === "transaction-end" && ev.device === device) {
        if (touched) touched.yes = true;
        await j.out.sink.write(ev.data!);
      }
    },
  });
  if (!seen)
    throw new MigstreamError(
      "FORMAT",
      j.want < 0 ? "the stream holds no device" : `the stream holds no device ${j.want}`,
    );
  return { device, bytes: j.out.sink.bytes, stats, trailingBytes: end.trailingBytes };
}
