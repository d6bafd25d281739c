// `migstream verify IN`: checks a whole stream without writing anything.
import { parseCommand } from "../args.js";
import type { Command } from "../command.js";
import { openInput } from "../files.js";
import { readKeyFile } from "../key.js";
import { ProgressLine } from "../progress.js";
import { readStream } from "../read-stream.js";
import { renderStats } from "../report.js";
import { paint, styleFor } from "../style.js";

export const verify: Command = {
  name: "verify",
  summary: "check a stream's integrity (checksums, sequence, trailers, MAC) without writing",
  help: `usage: migstream verify IN [--full] [--key-file F] [--json] [-q]

Checks every checksum, sequence number, structure rule, device and stream
trailer and, for an authenticated stream, every frame's MAC. Exit 0 if the
stream is intact, 2 if it is not. IN may be - for stdin.
  --full         also decompress every chunk and check its raw hash
  --key-file F   the key of an authenticated stream
  --json         print the result as JSON on stdout
  -q, --quiet    print nothing; the exit code tells

examples:
  migstream verify state.mig
  migstream save --device vfio-user:/run/dev.sock -o - | migstream verify -`,
  async run(argv, io) {
    const { values: v, positionals } = parseCommand(
      "verify",
      argv,
      { full: { type: "boolean" }, "key-file": { type: "string" } },
      { min: 1, max: 1, names: "IN" },
    );
    const style = styleFor(io, v);
    const key = v["key-file"] === undefined ? undefined : await readKeyFile(v["key-file"]);
    const source = await openInput(positionals[0], io);
    const stats = await readStream(source, {
      key,
      verifyOnly: v.full !== true,
      progress: new ProgressLine(io.stderr, style, "verify"),
    });
    if (style.json) io.stdout.write(`${JSON.stringify({ ok: true, full: v.full === true, ...stats })}\n`);
    else if (!style.quiet) {
      io.stdout.write(
        `${paint(style.color, "green", "ok")}: ${positionals[0]} is intact${v.full ? " (every chunk decoded)" : ""}\n${renderStats(stats, style.color, false)}`,
      );
    }
    return 0;
  },
};
