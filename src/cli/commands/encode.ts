// `migstream encode IN -o OUT`: a raw file becomes one device's stop-and-copy
// transactions of --transaction-size bytes.
import { StreamEncoder } from "../../format/encoder.js";
import { DEFAULT_TRANSACTION_SIZE, MAX_TRANSACTION_SIZE } from "../../format/constants.js";
import { parseCommand, sizeOption, usageOf } from "../args.js";
import type { Command } from "../command.js";
import { ENCODING_HELP, ENCODING_OPTIONS, encodingFrom } from "../encoding.js";
import { openInput, openOutput } from "../files.js";
import { ProgressLine } from "../progress.js";
import { note, styleFor } from "../style.js";
import { hex64 } from "../units.js";
import { bytes, ratio } from "../units.js";

export const encode: Command = {
  name: "encode",
  summary: "turn a raw file into a stream (one device's stop-and-copy transactions)",
  help: `usage: migstream encode IN -o OUT [--transaction-size BYTES] [--name NAME] [codec options]

Cuts IN into transactions of --transaction-size bytes (the last may be
shorter) and writes them as device 0's stop-and-copy phase. IN and OUT may
be - (stdin, stdout).
  -o, --output OUT          where the stream goes
  --transaction-size BYTES  bytes per transaction (default 1MiB)
  --name NAME               the device name recorded in the stream
${ENCODING_HELP}
  --json                    print a summary as JSON on stdout (not with -o -)
  -f, --force               write to stdout even when it is a terminal

examples:
  migstream encode state.raw -o state.mig --codec zstd --level 3
  migstream encode state.raw -o state.mig --dedup --key-file key.hex`,
  async run(argv, io) {
    const { values: v, positionals } = parseCommand(
      "encode",
      argv,
      { ...ENCODING_OPTIONS, output: { type: "string", short: "o" }, "transaction-size": { type: "string" }, name: { type: "string" }, force: { type: "boolean", short: "f" } },
      { min: 1, max: 1, names: "IN" },
    );
    const style = styleFor(io, v);
    if (v.output === undefined) throw usageOf("encode", "missing -o OUT");
    if (v.output === "-" && style.json) throw usageOf("encode", "--json needs stdout, and -o - writes the stream there");
    const txnSize = sizeOption("encode", "--transaction-size", v["transaction-size"]) ?? DEFAULT_TRANSACTION_SIZE;
    if (txnSize < 1 || txnSize > MAX_TRANSACTION_SIZE) throw usageOf("encode", `--transaction-size must be 1..${MAX_TRANSACTION_SIZE}`);
    const source = await openInput(positionals[0], io);
    const out = await openOutput(v.output, io, { copy: false, binary: true, force: v.force, command: "encode" });
    const enc = await encodingFrom("encode", v).catch(async (e: unknown) => {
      await out.abort();
      throw e;
    });
    const progress = new ProgressLine(io.stderr, style, "encode");
    try {
      // The sink is done with each block once its write settles: the encoder reuses them.
      const encoder = new StreamEncoder(enc.write((b) => out.sink.write(b)), { ...enc.options, maxTransaction: txnSize, reuseOutput: true });
      const dev = encoder.device(0, { name: v.name ?? "" });
      await dev.phase("stopcopy", 0);
      // Zero copy with a pool: each transaction is gathered in a buffer the encoder lends and then takes over.
      const reused = dev.buffer === undefined ? new Uint8Array(txnSize) : null;
      const fresh = () => reused ?? dev.buffer!(txnSize);
      let buf = fresh();
      let fill = 0;
      let raw = 0;
      for await (const piece of source) {
        for (let at = 0; at < piece.length; ) {
          const n = Math.min(piece.length - at, txnSize - fill);
          buf.set(piece.subarray(at, at + n), fill);
          fill += n;
          at += n;
          if (fill === txnSize) {
            await dev.transaction(buf);
            buf = fresh();
            raw += fill;
            fill = 0;
            progress.update({ phase: "stop-and-copy", bytes: raw, wire: encoder.stats.streamBytes });
          }
        }
      }
      if (fill > 0) await dev.transaction(buf.subarray(0, fill));
      raw += fill;
      const trailer = await dev.end();
      const stream = await encoder.finish();
      await out.commit();
      progress.clear();
      const st = encoder.stats;
      if (style.json) io.stdout.write(`${JSON.stringify({ ok: true, transactions: trailer.transactions, ...st, rawBytes: raw, wireBytes: out.sink.bytes, trailer: { ...stream, framesDigest: hex64(stream.framesDigest) } })}\n`);
      else note(io, style, `encoded ${bytes(raw)} in ${trailer.transactions} transactions → ${bytes(out.sink.bytes)} (${ratio(raw, out.sink.bytes)}); zero ${bytes(st.zeroBytes)}, dedup ${bytes(st.dedupBytes)}`);
      return 0;
    } catch (e) {
      progress.clear();
      await out.abort();
      throw e;
    } finally {
      await enc.close();
    }
  },
};
