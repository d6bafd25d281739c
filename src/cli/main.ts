// migstream — command dispatch, --help, error line and exit codes.
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import pkg from "../../package.json" with { type: "json" };
import { MigstreamError } from "../errors.js";
import type { CliIO, Command } from "./command.js";
import { loadCommand, loadCommands } from "./commands/index.js";
import { EXIT_IO, EXIT_USAGE, errorLine, exitCodeFor } from "./exit.js";

/** After SIGINT/SIGTERM/SIGHUP, how long a command may take to stop cleanly before the process exits, ms. */
export const STOP_GRACE_MS = 10_000;
/** Exit code after a second interrupt (128 + SIGINT). */
export const EXIT_INTERRUPTED = 130;
/**
 * The signals every command handles: a terminal's Ctrl-C, a service manager's
 * stop, and a dropped ssh session's hang-up. Their numbers give 128 + n exits.
 */
export const STOP_SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;

async function topHelp(): Promise<string> {
  const commands = await loadCommands();
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    "usage: migstream <command> [options]   (migstream <command> --help for details)",
    "",
    "commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "every command: --help, --debug (stack traces); most: --json, -q/--quiet; migstream --version (-V): the package version",
    "exit codes: 0 ok, 1 usage, 2 stream integrity/format error, 3 device or protocol error, 4 I/O error",
    "",
    "example:",
    "  migstream demo",
  ].join("\n");
}

/**
 * The environment as the commands read it. Under Deno a variable the process
 * may not read (no --allow-env for it) reads as unset, without a prompt, so
 * NO_COLOR or TERM never need a permission.
 */
function readableEnv(env: NodeJS.ProcessEnv): CliIO["env"] {
  const deno = (globalThis as { Deno?: { permissions: { querySync?(d: object): { state: string } } } }).Deno;
  if (!deno) return env;
  const granted = (variable: string) => {
    try {
      return deno.permissions.querySync?.({ name: "env", variable }).state === "granted";
    } catch {
      return false;
    }
  };
  // A plain target: Deno's own env object throws even when a proxy over it only asks for a descriptor.
  return new Proxy({}, { get: (_, k) => (typeof k === "string" && granted(k) ? env[k] : undefined) });
}

/** The error as JSON, for --json callers. */
function errorJson(e: unknown): string {
  const m = e instanceof MigstreamError ? e : undefined;
  const error = m
    ? {
        code: m.code,
        message: m.message,
        offset: m.offset,
        frame: m.frame,
        device: m.device,
        field: m.field,
        step: m.step,
        errno: m.errno,
      }
    : { code: exitCodeFor(e) === 4 ? "IO" : "INTERNAL", message: e instanceof Error ? e.message : String(e) };
  return JSON.stringify({ ok: false, exitCode: exitCodeFor(e), error });
}

/**
 * Stop signals: for commands that stop cleanly, the first one aborts
 * `io.signal` (the command unwinds: source back in RUNNING, destination
 * reset, outputs dropped) and a second one, or the grace period running out,
 * exits at once; any other command exits at once with 128 + n. Either way the
 * process-exit hooks remove temporary outputs (files.ts).
 */
function watchSignals(cmd: Command, io: CliIO): () => void {
  if (typeof process === "undefined" || io.signal) return () => {};
  const names = Object.keys(STOP_SIGNALS) as (keyof typeof STOP_SIGNALS)[];
  let on: (sig: keyof typeof STOP_SIGNALS) => void;
  if (cmd.signals) {
    const ac = new AbortController();
    io.signal = ac.signal;
    on = (sig) => {
      if (ac.signal.aborted) process.exit(EXIT_INTERRUPTED);
      ac.abort(new MigstreamError("ABORTED", `interrupted (${sig})`));
      setTimeout(() => process.exit(EXIT_INTERRUPTED), STOP_GRACE_MS).unref();
    };
  } else on = (sig) => process.exit(128 + STOP_SIGNALS[sig]);
  for (const n of names) process.on(n, on);
  return () => {
    for (const n of names) process.off(n, on);
  };
}

export async function main(argv: string[], io: CliIO): Promise<number> {
  const debug = argv.includes("--debug");
  const args = argv.filter((a) => a !== "--debug");
  const [name, ...rest] = args;
  if (name === "--version" || name === "-V") {
    io.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  if (!name || name === "--help" || name === "-h" || name === "help") {
    io.stdout.write(`${await topHelp()}\n`);
    return name ? 0 : EXIT_USAGE;
  }
  const cmd = await loadCommand(name);
  if (!cmd) {
    io.stderr.write(`migstream: USAGE: unknown command '${name}'\n${await topHelp()}\n`);
    return EXIT_USAGE;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    io.stdout.write(`${cmd.help.trimEnd()}\n`);
    return 0;
  }
  const unwatch = watchSignals(cmd, io);
  try {
    return await cmd.run(rest, io);
  } catch (e) {
    io.stderr.write(`migstream: ${errorLine(e)}\n`);
    if (debug && e instanceof Error && e.stack) io.stderr.write(`${e.stack}\n`);
    if (debug && e instanceof Error && e.cause instanceof Error && e.cause.stack)
      io.stderr.write(`caused by: ${e.cause.stack}\n`);
    if (rest.includes("--json")) io.stdout.write(`${errorJson(e)}\n`);
    return exitCodeFor(e);
  } finally {
    unwatch();
  }
}

/**
 * True when this module is the program being run, under whatever name it was
 * started: `node dist/cli.js`, npm's `node_modules/.bin/migstream` link (or
 * a global install's), `npx migstream`, `deno run .../cli.js`. Both paths are
 * resolved through symlinks; importing the module (tests) runs nothing.
 */
function isEntry(): boolean {
  if (typeof process === "undefined" || !process.argv[1]) return false;
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return p;
    }
  };
  return real(process.argv[1]) === real(fileURLToPath(import.meta.url));
}

if (isEntry()) {
  // A command whose work stalls with nothing left to wait on would otherwise end with status 0.
  let finished = false;
  const stalled = () => {
    if (finished) return;
    finished = true;
    process.stderr.write("migstream: INTERNAL: the command stopped before finishing (a stalled promise)\n");
    process.exitCode = EXIT_IO;
  };
  process.once("beforeExit", stalled);
  // A reader that goes away (`migstream inspect x | head`) is not a crash: the
  // command ends as it would; a data write to stdout fails with IO on its own.
  for (const s of [process.stdout, process.stderr])
    s.on("error", (e: NodeJS.ErrnoException) => void (e.code === "EPIPE" || s.destroy()));
  main(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    isTTY: Boolean(process.stderr.isTTY),
    stdoutTTY: Boolean(process.stdout.isTTY),
    env: readableEnv(process.env),
    self: fileURLToPath(import.meta.url),
  }).then(
    (code) => {
      finished = true;
      process.exitCode = code;
    },
    (e) => {
      finished = true;
      process.stderr.write(`migstream: ${errorLine(e)}\n`);
      process.exitCode = exitCodeFor(e);
    },
  );
}
