// Options of the commands that save a device (`save`, `demo`): the encoder's
// options and the pre-copy policy, with the same flags, help lines and
// messages in both; each command names its own pre-copy defaults.
import type { ParseArgsConfig } from "node:util";
import type { PrecopyPolicy } from "../protocol/policy.js";
import { intOption, parseCommand, sizeOption } from "./args.js";
import type { CliIO, Command } from "./command.js";
import { ENCODING_OPTIONS } from "./encoding.js";

/** Most pre-copy iterations a command accepts. */
export const MAX_PRECOPY_ITERATIONS = 1 << 20;

/** The flags every saving command takes. */
const SAVE_OPTIONS = {
  ...ENCODING_OPTIONS,
  "precopy-iterations": { type: "string" },
  "precopy-threshold": { type: "string" },
} as const;

/** A command's pre-copy defaults (the threshold as a size text, as on the command line). */
export interface PrecopyDefaults {
  iterations: number;
  threshold: string;
}

/** Help lines of the pre-copy flags in SAVE_OPTIONS. */
export function precopyHelp(d: PrecopyDefaults): string {
  return `  --precopy-iterations N     most pre-copy iterations (default ${d.iterations})
  --precopy-threshold BYTES  stop-and-copy once pending_bytes is at most this (default ${d.threshold})`;
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Parses a saving command's argv (no positional arguments): SAVE_OPTIONS plus the command's own `options`. */
function parseSaveArgs<O extends Options>(command: string, argv: string[], options: O) {
  return parseCommand(command, argv, { ...SAVE_OPTIONS, ...options }, { min: 0, max: 0, names: "" }).values;
}

/** A saving command as declared: `run` gets the parsed flags. */
export interface SavingCommand<O extends Options> {
  name: string;
  summary: string;
  help: string;
  /** The command's flags besides SAVE_OPTIONS. */
  options: O;
  run(v: ReturnType<typeof parseSaveArgs<O>>, io: CliIO): Promise<number>;
}

/** The Command for a saving command: it takes SAVE_OPTIONS and stops cleanly on signals. */
export function savingCommand<O extends Options>(c: SavingCommand<O>): Command {
  return {
    name: c.name,
    summary: c.summary,
    help: c.help,
    signals: true,
    // async: a bad flag rejects the returned promise, as in any command's run
    run: async (argv, io) => c.run(parseSaveArgs(c.name, argv, c.options), io),
  };
}

type PrecopyValues = { "precopy-iterations"?: string; "precopy-threshold"?: string };

/** The pre-copy policy the flags give (USAGE for a bad number or size). */
export function precopyPolicy(command: string, v: PrecopyValues, d: PrecopyDefaults): PrecopyPolicy {
  return {
    maxIterations: intOption(
      command,
      "--precopy-iterations",
      v["precopy-iterations"],
      d.iterations,
      0,
      MAX_PRECOPY_ITERATIONS,
    ),
    pendingThreshold: sizeOption(command, "--precopy-threshold", v["precopy-threshold"] ?? d.threshold) ?? 0,
  };
}
