// `migstream inspect IN`: what a stream holds — header, devices, phases,
// transactions, codec mix, ratio, zero and dedup savings.
import { parseCommand } from "../args.js";
import type { Command } from "../command.js";
import { openInput } from "../files.js";
import { readKeyFile } from "../key.js";
import { ProgressLine } from "../progress.js";
import { partialStats, readStream } from "../read-stream.js";
import { renderStats } from "../report.js";
import { styleFor } from "../style.js";

export const inspect: Command = {
  name: "inspect",
  summary: "show a stream's header, devices, phases, codec mix, ratio and savings",
  help: `usage: migstream inspect IN [--key-file F] [--json]

Reads the whole stream (checking it, without decompressing) and prints its
header, each device's phases with their transactions and sizes, the codec mix,
the ratio against the raw bytes and against QEMU's raw layout, and what zero
chunks and dedup saved. A damaged stream is summarised up to the damage, then
the error is reported (exit 2). IN may be - for stdin.
  --key-file F   the key of an authenticated stream
  --json         the same as JSON on stdout

examples:
  migstream inspect state.mig
  migstream inspect state.mig --json | jq .codecs`,
  async run(argv, io) {
    const { values: v, positionals } = parseCommand("inspect", argv, { "key-file": { type: "string" } }, { min: 1, max: 1, names: "IN" });
    const style = styleFor(io, v);
    const key = v["key-file"] === undefined ? undefined : await readKeyFile(v["key-file"]);
    const source = await openInput(positionals[0], io);
    const print = (stats: ReturnType<typeof partialStats> & object) => {
      if (style.json) io.stdout.write(`${JSON.stringify(stats)}\n`);
      else if (!style.quiet) io.stdout.write(renderStats(stats, style.color, true));
    };
    try {
      print(await readStream(source, { key, verifyOnly: true, progress: new ProgressLine(io.stderr, style, "inspect") }));
    } catch (e) {
      const got = partialStats(e);
      if (got && !style.json) print(got);
      throw e;
    }
    return 0;
  },
};
