// migstream — command dispatch, --help, error line and exit codes.
import { commands } from "./commands/index.js";
import type { CliIO } from "./command.js";
import { errorLine, EXIT_USAGE, exitCodeFor } from "./exit.js";

function topHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    "usage: migstream <command> [options]   (migstream <command> --help for details)",
    "",
    "commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "exit codes: 0 ok, 1 usage, 2 stream integrity/format error, 3 device or protocol error, 4 I/O error",
  ].join("\n");
}

export async function main(argv: string[], io: CliIO): Promise<number> {
  const debug = argv.includes("--debug");
  const args = argv.filter((a) => a !== "--debug");
  const [name, ...rest] = args;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    io.stdout.write(`${topHelp()}\n`);
    return name ? 0 : EXIT_USAGE;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    io.stderr.write(`migstream: USAGE: unknown command '${name}'\n${topHelp()}\n`);
    return EXIT_USAGE;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    io.stdout.write(`${cmd.help.trimEnd()}\n`);
    return 0;
  }
  try {
    return await cmd.run(rest, io);
  } catch (e) {
    io.stderr.write(`migstream: ${errorLine(e)}\n`);
    if (debug && e instanceof Error && e.stack) io.stderr.write(`${e.stack}\n`);
    return exitCodeFor(e);
  }
}

const isEntry = typeof process !== "undefined" && process.argv[1] !== undefined && /(?:cli|main)\.[cm]?[jt]s$/.test(process.argv[1]);
if (isEntry) {
  main(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    isTTY: Boolean(process.stderr.isTTY),
    env: process.env,
  }).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`migstream: ${errorLine(e)}\n`);
      process.exitCode = exitCodeFor(e);
    },
  );
}
