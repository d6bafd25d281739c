// Output conventions shared by the commands: --quiet, --json, colour
// (only on a terminal, never with NO_COLOR), and where notes go.
import type { CliIO } from "./command.js";

export interface Style {
  quiet: boolean;
  json: boolean;
  /** Colour on stdout. */
  color: boolean;
  /** Colour on stderr (the progress line). */
  colorErr: boolean;
  /** A progress line may be drawn on stderr. */
  progress: boolean;
}

/** NO_COLOR set to anything non-empty turns colour off (no-color.org). */
function noColor(env: CliIO["env"]): boolean {
  return (env.NO_COLOR ?? "") !== "";
}

export function styleFor(io: CliIO, values: { quiet?: boolean; json?: boolean }): Style {
  const quiet = values.quiet === true;
  const off = noColor(io.env) || io.env.TERM === "dumb";
  return {
    quiet,
    json: values.json === true,
    color: !off && io.stdoutTTY === true,
    colorErr: !off && io.isTTY,
    progress: io.isTTY && !quiet,
  };
}

const SGR = { bold: "1", dim: "2", red: "31", green: "32", yellow: "33", cyan: "36" } as const;

/** Wraps `text` in an SGR colour when `on`. */
export function paint(on: boolean, what: keyof typeof SGR, text: string): string {
  return on ? `\x1b[${SGR[what]}m${text}\x1b[0m` : text;
}

/** A human note on stderr, unless --quiet. */
export function note(io: CliIO, style: Style, line: string): void {
  if (!style.quiet) io.stderr.write(`${line}\n`);
}
