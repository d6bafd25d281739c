// `migstream encode IN (-o OUT | --to tcp://HOST:PORT)`: a raw file becomes one
// device's stop-and-copy transactions of --transaction-size bytes, written out
// or sent to a `migstream decode --listen` (which answers once it verified the
// whole stream). As a pipe filter it carries any byte stream, e.g. QEMU's own
// migration stream through `migrate "exec:..."`.

import type { FileHandle } from "node:fs/promises";
import { DEFAULT_TRANSACTION_SIZE, MAX_TRANSACTION_SIZE } from "../../format/constants.js";
import { StreamEncoder } from "../../format/encoder.js";
import type { ByteSink } from "../../migrate/sink.js";
import type { Ack } from "../../network/ack.js";
import {
  DEFAULT_ACK_TIMEOUT_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  parseTcpUrl,
  TcpDestination,
} from "../../network/tcp.js";
import { intOption, parseCommand, sizeOption, usageOf } from "../args.js";
import type { Command } from "../command.js";
import { ENCODING_HELP, ENCODING_OPTIONS, encodingFrom } from "../encoding.js";
import { type Output, openOutput, openSource } from "../files.js";
import { checkHello, requireKeyOffLoopback } from "../network.js";
import { ProgressLine } from "../progress.js";
import { note, styleFor } from "../style.js";
import { FILE_READ_AHEAD, fileTransactions, gatheredTransactions } from "../transactions.js";
import { bytes, hex64, ratio } from "../units.js";

export const encode: Command = {
  name: "encode",
  summary: "turn a raw file into a stream (one device's stop-and-copy transactions)",
  help: `usage: migstream encode IN (-o OUT | --to tcp://HOST:PORT) [--transaction-size BYTES] [--name NAME] [codec options]

Cuts IN into transactions of --transaction-size bytes (the last may be
shorter) and writes them as device 0's stop-and-copy phase. IN and OUT may
be - (stdin, stdout). With --to the stream goes to a \`migstream decode
--listen\`, and encode ends only when that destination confirmed the whole
stream (its failure is encode's failure).
  -o, --output OUT          where the stream goes
  --to tcp://HOST:PORT      send it to a listening decode instead
  --transaction-size BYTES  bytes per transaction (default 1MiB)
  --name NAME               the device name recorded in the stream
${ENCODING_HELP}
  --insecure                allow an unauthenticated stream to a non-loopback host
  --connect-timeout MS      keep retrying a refused connection this long (default ${DEFAULT_CONNECT_TIMEOUT_MS})
  --timeout MS              longest wait for the destination to take data or answer (default ${DEFAULT_IDLE_TIMEOUT_MS})
  --json                    print a summary as JSON on stdout (not with -o -)
  -f, --force               write to stdout even when it is a terminal

examples:
  migstream encode state.raw -o state.mig --codec zstd --level 3
  migstream encode state.raw -o state.mig --dedup --key-file key.hex
  migstream encode - --to tcp://10.0.0.2:7000 --codec lz4 --key-file mig.key -q   (QEMU: migrate "exec:...")`,
  async run(argv, io) {
    const { values: v, positionals } = parseCommand(
      "encode",
      argv,
      {
        ...ENCODING_OPTIONS,
        output: { type: "string", short: "o" },
        to: { type: "string" },
        "transaction-size": { type: "string" },
        name: { type: "string" },
        insecure: { type: "boolean" },
        "connect-timeout": { type: "string" },
        timeout: { type: "string" },
        force: { type: "boolean", short: "f" },
      },
      { min: 1, max: 1, names: "IN" },
    );
    const style = styleFor(io, v);
    if ((v.output === undefined) === (v.to === undefined))
      throw usageOf("encode", "give exactly one of -o OUT and --to tcp://HOST:PORT");
    if (v.output === "-" && style.json)
      throw usageOf("encode", "--json needs stdout, and -o - writes the stream there");
    const txnSize = sizeOption("encode", "--transaction-size", v["transaction-size"]) ?? DEFAULT_TRANSACTION_SIZE;
    if (txnSize < 1 || txnSize > MAX_TRANSACTION_SIZE)
      throw usageOf("encode", `--transaction-size must be 1..${MAX_TRANSACTION_SIZE}`);
    const addr = v.to === undefined ? undefined : parseTcpUrl(v.to, "--to");
    const connectTimeoutMs = intOption(
      "encode",
      "--connect-timeout",
      v["connect-timeout"],
      DEFAULT_CONNECT_TIMEOUT_MS,
      0,
      2 ** 31,
    );
    const timeoutMs = intOption("encode", "--timeout", v.timeout, DEFAULT_IDLE_TIMEOUT_MS, 0, 2 ** 31);
    const enc = await encodingFrom("encode", v, { startPool: false });
    let dest: TcpDestination | undefined;
    let out: Output | undefined;
    let file: { fh: FileHandle; size: number } | null = null;
    const progress = new ProgressLine(io.stderr, style, "encode");
    try {
      requireKeyOffLoopback("encode", addr, enc.key, v.insecure);
      // A regular file is read straight into the transaction buffers; anything else as a stream.
      const source = await openSource(positionals[0], io);
      file = "file" in source ? source.file : null;
      const input = "pieces" in source ? source.pieces[Symbol.asyncIterator]() : null;
      if (addr) {
        dest = await TcpDestination.connect(addr, { connectTimeoutMs, idleTimeoutMs: timeoutMs, signal: io.signal });
        checkHello(dest, enc.key !== undefined, enc.options.encrypt === true, "nothing was sent");
      } else out = await openOutput(v.output!, io, { copy: false, binary: true, force: v.force, command: "encode" });
      const sink: ByteSink = dest ? dest.sink : out!.sink;
      // A stream that ends within its first transaction is coded on this thread: starting and
      // stopping a worker would cost more than the stream (a small QEMU guest's whole migration).
      const head = input ? await peek(input, txnSize) : { pieces: [], ended: file!.size <= txnSize };
      // A keyed stream to a destination is bound to this connection's challenge (FORMAT.md §7.1).
      const chosen = head.ended ? enc.inline : enc.options;
      const options = dest && enc.key ? { ...chosen, challenge: dest.hello.challenge } : chosen;
      // The sink is done with each block once its write settles: the encoder reuses them.
      const encoder = new StreamEncoder((b) => sink.write(b), {
        ...options,
        maxTransaction: txnSize,
        reuseOutput: true,
      });
      const dev = encoder.device(0, { name: v.name ?? "" });
      await dev.phase("stopcopy", 0);
      // Zero copy with a pool: each transaction is read or gathered into a buffer the encoder lends and
      // then takes over; without one, into buffers of our own, reused once their transaction was coded.
      const own: Uint8Array[] = [];
      const slots = file ? FILE_READ_AHEAD + 1 : 1;
      let turn = 0;
      const into = dev.buffer
        ? (n: number) => dev.buffer!(n)
        : (n: number) => (own[turn++ % slots] ??= new Uint8Array(n));
      const transactions = file
        ? fileTransactions(file.fh, txnSize, into, positionals[0])
        : gatheredTransactions(chain(head.pieces, input!), txnSize, into);
      let raw = 0;
      for await (const t of transactions) {
        const n = t.length; // a lent buffer is handed over (detached) by the transaction
        await dev.transaction(t);
        raw += n;
        progress.update({ phase: "stop-and-copy", bytes: raw, wire: encoder.stats.streamBytes });
      }
      const trailer = await dev.end();
      const stream = await encoder.finish();
      let ack: (Ack & { ok: true }) | undefined;
      if (dest) {
        await sink.end();
        progress.update({ phase: "waiting for the destination", bytes: raw, wire: sink.bytes });
        ack = await dest.confirm(timeoutMs > 0 ? timeoutMs : DEFAULT_ACK_TIMEOUT_MS);
      } else await out!.commit();
      progress.clear();
      const st = encoder.stats;
      const confirmed = ack
        ? { destination: dest!.url, confirmed: { transactions: ack.transactions, bytes: ack.bytes } }
        : {};
      if (style.json)
        io.stdout.write(
          `${JSON.stringify({ ok: true, transactions: trailer.transactions, ...st, rawBytes: raw, wireBytes: sink.bytes, ...confirmed, trailer: { ...stream, framesDigest: hex64(stream.framesDigest) } })}\n`,
        );
      else {
        const to = ack ? `; ${dest!.url} decoded and verified ${bytes(ack.bytes)}` : "";
        note(
          io,
          style,
          `encoded ${bytes(raw)} in ${trailer.transactions} transactions → ${bytes(sink.bytes)} (${ratio(raw, sink.bytes)}); zero ${bytes(st.zeroBytes)}, dedup ${bytes(st.dedupBytes)}${to}`,
        );
      }
      return 0;
    } catch (e) {
      progress.clear();
      dest?.destroy();
      await out?.abort();
      throw e;
    } finally {
      await file?.fh.close();
      await enc.close();
    }
  },
};

/** Reads pieces of `input` until they hold more than `bytes` or the input ends. */
async function peek(
  input: AsyncIterator<Uint8Array>,
  bytes: number,
): Promise<{ pieces: Uint8Array[]; ended: boolean }> {
  const pieces: Uint8Array[] = [];
  for (let n = 0; n <= bytes; ) {
    const r = await input.next();
    if (r.done) return { pieces, ended: true };
    pieces.push(r.value);
    n += r.value.length;
  }
  return { pieces, ended: false };
}

/** `first`, then the rest of `input`. */
async function* chain(first: Uint8Array[], input: AsyncIterator<Uint8Array>): AsyncGenerator<Uint8Array> {
  yield* first;
  for (let r = await input.next(); !r.done; r = await input.next()) yield r.value;
}
