// `migstream inspect IN`: what a stream holds — header, devices, phases,
// transactions, codec mix, ratio, zero and dedup savings; with --html FILE
// also drawn as a self-contained page (html-report.ts).

import type { StreamStats } from "../../migrate/stats.js";
import { parseCommand } from "../args.js";
import type { Command } from "../command.js";
import { openInput, openOutput } from "../files.js";
import { renderHtmlReport } from "../html-report.js";
import { readKeyFile } from "../key.js";
import { ProgressLine } from "../progress.js";
import { partialStats, readStream } from "../read-stream.js";
import { renderStats } from "../report.js";
import { styleFor } from "../style.js";
import { TimelineCollector } from "../timeline.js";

export const inspect: Command = {
  name: "inspect",
  summary: "show a stream's header, devices, phases, codec mix, ratio and savings",
  help: `usage: migstream inspect IN [--key-file F] [--json] [--html FILE]

Reads the whole stream (checking it, without decompressing) and prints its
header, each device's phases with their transactions and sizes, the codec mix,
the ratio against the raw bytes and against QEMU's raw layout, and what zero
chunks and dedup saved. A damaged stream is summarised up to the damage, then
the error is reported (exit 2). IN may be - for stdin.
  --key-file F   the key of an authenticated stream
  --json         the same as JSON on stdout
  --html FILE    also write a report page to FILE (- for stdout): phases and
                 pre-copy iterations along the stream, bytes per codec,
                 pre-copy convergence; one file, no scripts, nothing fetched

examples:
  migstream inspect state.mig
  migstream inspect state.mig --json | jq .codecs
  migstream inspect state.mig --html state.html`,
  async run(argv, io) {
    const { values: v, positionals } = parseCommand(
      "inspect",
      argv,
      { "key-file": { type: "string" }, html: { type: "string" } },
      { min: 1, max: 1, names: "IN" },
    );
    const style = styleFor(io, v);
    const key = v["key-file"] === undefined ? undefined : await readKeyFile(v["key-file"]);
    const html = v.html;
    const toStdout = html === "-";
    const source = await openInput(positionals[0], io);
    const timeline = new TimelineCollector();
    const print = (stats: ReturnType<typeof partialStats> & object) => {
      if (toStdout) return;
      if (style.json) io.stdout.write(`${JSON.stringify(stats)}\n`);
      else if (!style.quiet) io.stdout.write(renderStats(stats, style.color, true));
    };
    /** The report page, written whole or not at all. */
    const report = async (stats: ReturnType<typeof partialStats> & object, error?: string) => {
      if (html === undefined) return;
      const out = await openOutput(html, io);
      try {
        const page = renderHtmlReport({
          source: positionals[0] === "-" ? "stdin" : positionals[0],
          stats,
          timeline: timeline.result(stats.wireBytes),
          error,
        });
        await out.sink.write(new TextEncoder().encode(page));
        await out.commit();
      } catch (e) {
        await out.abort();
        throw e;
      }
    };
    const progress = new ProgressLine(io.stderr, style, "inspect");
    let stats: StreamStats;
    try {
      stats = await readStream(source, { key, verifyOnly: true, progress, onEvent: (ev) => timeline.add(ev) });
    } catch (e) {
      const got = partialStats(e);
      if (got) {
        if (!style.json) print(got);
        await report(got, e instanceof Error ? e.message : String(e));
      }
      throw e;
    }
    print(stats);
    await report(stats);
    return 0;
  },
};
