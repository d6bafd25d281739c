// `migstream decode (IN | --listen tcp://HOST:PORT) -o OUT`: one device's raw
// transactions back, byte-exact, from a stream file or from one `migstream
// encode --to` source (answered once the whole stream verified). As a pipe
// filter it hands on each transaction only after it verified, e.g. to QEMU
// through `-incoming "exec:..."`.
import { MigstreamError } from "../../errors.js";
import { DEFAULT_IDLE_TIMEOUT_MS, parseTcpUrl } from "../../network/tcp.js";
import type { StreamStats } from "../../migrate/stats.js";
import { intOption, parseCommand, usageOf } from "../args.js";
import type { CliIO, Command } from "../command.js";
import { openInput, openOutput, type Output } from "../files.js";
import { readKeyFile } from "../key.js";
import { decodePool } from "../encoding.js";
import { requireKeyOffLoopback, serveOneSource } from "../network.js";
import { ProgressLine } from "../progress.js";
import { readStream } from "../read-stream.js";
import { renderStats } from "../report.js";
import { note, styleFor, type Style } from "../style.js";

export const decode: Command = {
  name: "decode",
  summary: "write a stream's raw device data back out, byte-exact",
  help: `usage: migstream decode (IN | --listen tcp://HOST:PORT) -o OUT [--device N] [--key-file F] [--threads N] [--json] [-q]

Decodes and checks the stream and writes the concatenated transactions of one
device (default: the first) to OUT. Each transaction is written only after its
chunks verified; OUT (a file) appears only when the whole stream verified — a
damaged stream leaves no output file. IN and OUT may be - (stdin, stdout).

With --listen it waits for one source (\`migstream encode --to\`), decodes
while the stream arrives and answers the source. As restore --listen: it binds
to loopback unless an address is given (tcp://:PORT is 127.0.0.1), refuses a
non-loopback address without --key-file unless --insecure is given, refuses
other sources while one is served, and drops a connection that fails before
any of its bytes were written out, then keeps listening. Port 0 picks a free
port; the address is printed on stderr either way.
  -o, --output OUT          where the raw bytes go
  --listen tcp://HOST:PORT  receive the stream from a source instead of IN
  --device N                which device of a multi-device stream
  --key-file F              the key of an authenticated stream (required off loopback)
  --insecure                allow listening off loopback without a key
  --timeout MS              with --listen: longest wait for more stream bytes (default ${DEFAULT_IDLE_TIMEOUT_MS})
  --accept-timeout MS       with --listen: longest wait for a source (default: none)
  --threads N               decode and verify chunks on N threads, the main one included (default: one per core)
  --json                    print a summary as JSON on stdout (not with -o -)

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
        threads: { type: "string" },
      },
      { min: 0, max: 1, names: "IN" },
    );
    const style = styleFor(io, v);
    if ((positionals.length === 1) === (v.listen !== undefined)) throw usageOf("decode", "give exactly one of IN and --listen tcp://HOST:PORT");
    if (v.output === undefined) throw usageOf("decode", "missing -o OUT");
    if (v.output === "-" && style.json) throw usageOf("decode", "--json needs stdout, and -o - writes the data there");
    const want = v.device === undefined ? -1 : intOption("decode", "--device", v.device, 0, 0, 0xffff);
    const addr = v.listen === undefined ? undefined : parseTcpUrl(v.listen, "--listen");
    const idleTimeoutMs = intOption("decode", "--timeout", v.timeout, DEFAULT_IDLE_TIMEOUT_MS, 0, 2 ** 31);
    const acceptTimeoutMs = intOption("decode", "--accept-timeout", v["accept-timeout"], 0, 0, 2 ** 31);
    const key = v["key-file"] === undefined ? undefined : await readKeyFile(v["key-file"]);
    requireKeyOffLoopback("decode", addr, key, v.insecure);
    const pool = decodePool("decode", v.threads);
    // The pool's workers are running: an output that cannot be opened must end them
    // too (Web Workers would keep Deno alive).
    const out = await openOutput(v.output, io).catch(async (e) => {
      await pool?.close();
      throw e;
    });
    try {
      const job: Job = { key, want, pool, out, style, io };
      let done: Decoded;
      let from = positionals[0] === "-" ? "stdin" : positionals[0];
      if (addr) {
        const served = await serveOneSource(io, style, addr, { command: "decode", target: "the output", idleTimeoutMs, acceptTimeoutMs }, async (peer, touched) => {
          const d = await decodeOnce(peer.chunks(), job, touched);
          return { result: d, ack: { ok: true, started: false, transactions: d.stats.transactions, bytes: d.bytes } };
        });
        done = served.result;
        from = served.remote;
      } else done = await decodeOnce(await openInput(positionals[0], io), job);
      await out.commit();
      if (style.json) io.stdout.write(`${JSON.stringify({ ok: true, device: done.device, from, bytes: done.bytes, ...done.stats })}\n`);
      else note(io, style, `decoded device ${done.device} from ${from}: ${done.bytes} bytes\n${renderStats(done.stats, false, false).trimEnd()}`);
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
}

interface Decoded {
  device: number;
  /** Raw bytes written to the output. */
  bytes: number;
  stats: StreamStats;
}

/** Decodes one whole stream into the output; `touched.yes` once a byte was written. */
async function decodeOnce(source: AsyncIterable<Uint8Array>, j: Job, touched?: { yes: boolean }): Promise<Decoded> {
  let device = j.want;
  let seen = false;
  const stats = await readStream(source, {
    key: j.key,
    verifyOnly: false,
    assemble: true,
    pool: j.pool,
    progress: new ProgressLine(j.io.stderr, j.style, "decode"),
    onEvent: async (ev) => {
      if (ev.type === "device" && device < 0) device = ev.device;
      if (ev.type === "device" && ev.device === device) seen = true;
      if (ev.type === "transaction-end" && ev.device === device) {
        if (touched) touched.yes = true;
        await j.out.sink.write(ev.data!);
      }
    },
  });
  if (!seen) throw new MigstreamError("FORMAT", j.want < 0 ? "the stream holds no device" : `the stream holds no device ${j.want}`);
  return { device, bytes: j.out.sink.bytes, stats };
}
