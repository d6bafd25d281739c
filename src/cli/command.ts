// How a CLI command is declared: a name, a one-line summary, help text with an
// example, and a run function taking the argv after the command name.
// Commands parse their own options with node:util parseArgs (runs unchanged in Deno).

export interface CliIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream;
  /** stderr is a terminal (progress display allowed). */
  isTTY: boolean;
  /** stdout is a terminal (colour allowed in reports). */
  stdoutTTY?: boolean;
  env: Record<string, string | undefined>;
  /** Fires on SIGINT/SIGTERM/SIGHUP: long commands stop cleanly (source back in RUNNING, destination reset). */
  signal?: AbortSignal;
  /**
   * The CLI's own entry script (dist/cli.js), for commands that start more of
   * it (demo's `sim serve` processes); set by the entry. Commands are loaded
   * as separate modules, so their own import.meta.url is not the entry.
   */
  self?: string;
}

export interface Command {
  name: string;
  summary: string;
  /** Full help: usage line, options, at least one example. */
  help: string;
  /**
   * The command stops cleanly on `io.signal` (main then turns SIGINT, SIGTERM
   * and SIGHUP into it); without this flag a stop signal exits at once.
   */
  signals?: boolean;
  /** Returns the exit code. Throw MigstreamError for failures (mapped to exit codes). */
  run(argv: string[], io: CliIO): Promise<number>;
}
