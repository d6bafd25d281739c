// `migstream decode IN -o OUT`: one device's raw transactions back, byte-exact.
import { MigstreamError } from "../../errors.js";
import { intOption, parseCommand, usageOf } from "../args.js";
import type { Command } from "../command.js";
import { openInput, openOutput } from "../files.js";
import { readKeyFile } from "../key.js";
import { decodePool } from "../encoding.js";
import { ProgressLine } from "../progress.js";
import { readStream } from "../read-stream.js";
import { renderStats } from "../report.js";
import { note, styleFor } from "../style.js";

export const decode: Command = {
  name: "decode",
  summary: "write a stream's raw device data back out, byte-exact",
  help: `usage: migstream decode IN -o OUT [--device N] [--key-file F] [--threads N] [--json] [-q] [-f]

Decodes and checks the stream and writes the concatenated transactions of one
device (default: the first) to OUT. Each transaction is written only after its
chunks verified; OUT (a file) appears only when the whole stream verified — a
damaged stream leaves no output file. IN and OUT may be - (stdin, stdout).
  -o, --output OUT  where the raw bytes go
  --device N        which device of a multi-device stream
  --key-file F      the key of an authenticated stream
  --threads N       decode and verify chunks on N threads, the main one included (default: one per core)
  --json            print a summary as JSON on stdout (not with -o -)
  -f, --force       write to stdout even when it is a terminal

examples:
  migstream decode state.mig -o state.raw
  migstream encode state.raw -o - | migstream decode - -o - | cmp - state.raw`,
  async run(argv, io) {
    const { values: v, positionals } = parseCommand(
      "decode",
      argv,
      { output: { type: "string", short: "o" }, device: { type: "string" }, "key-file": { type: "string" }, threads: { type: "string" }, force: { type: "boolean", short: "f" } },
      { min: 1, max: 1, names: "IN" },
    );
    const style = styleFor(io, v);
    if (v.output === undefined) throw usageOf("decode", "missing -o OUT");
    if (v.output === "-" && style.json) throw usageOf("decode", "--json needs stdout, and -o - writes the data there");
    const want = v.device === undefined ? -1 : intOption("decode", "--device", v.device, 0, 0, 0xffff);
    const key = v["key-file"] === undefined ? undefined : await readKeyFile(v["key-file"]);
    const source = await openInput(positionals[0], io);
    const out = await openOutput(v.output, io, { binary: true, force: v.force, command: "decode" });
    const pool = decodePool("decode", v.threads);
    let device = want;
    let seen = false;
    try {
      const stats = await readStream(source, {
        key,
        verifyOnly: false,
        assemble: true,
        decoder: pool?.decoder,
        progress: new ProgressLine(io.stderr, style, "decode"),
        onEvent: async (ev) => {
          if (ev.type === "device" && device < 0) device = ev.device;
          if (ev.type === "device" && ev.device === device) seen = true;
          if (ev.type === "transaction-end" && ev.device === device) await out.sink.write(ev.data!);
        },
      });
      if (!seen) throw new MigstreamError("FORMAT", want < 0 ? "the stream holds no device" : `the stream holds no device ${want}`);
      await out.commit();
      if (style.json) io.stdout.write(`${JSON.stringify({ ok: true, device, bytes: out.sink.bytes, ...stats })}\n`);
      else note(io, style, `decoded device ${device}: ${out.sink.bytes} bytes\n${renderStats(stats, false, false).trimEnd()}`);
      return 0;
    } catch (e) {
      await out.abort();
      throw e;
    } finally {
      await pool?.close();
    }
  },
};
