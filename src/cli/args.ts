// Option parsing for the commands: node:util parseArgs (runs unchanged in
// Deno) with its errors turned into one-line USAGE errors, plus the number
// and size parsers every command shares. An option that takes one value
// (anything not declared `multiple`) given twice is a USAGE error: parseArgs
// would keep the last one and silently drop the other.
import { type ParseArgsConfig, parseArgs } from "node:util";
import { MigstreamError } from "../errors.js";
import { parseSize } from "../transport/size.js";

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Options every command takes. */
const COMMON_OPTIONS = {
  quiet: { type: "boolean", short: "q" },
  json: { type: "boolean" },
} as const;

/** Parses `argv` for `command`; `positionals` bounds how many plain arguments it takes. */
export function parseCommand<O extends Options>(
  command: string,
  argv: string[],
  options: O,
  positionals: { min: number; max: number; names: string },
) {
  const all = { ...COMMON_OPTIONS, ...options };
  const r = parseOrUsage(command, () =>
    parseArgs({ args: argv, options: all, strict: true, allowPositionals: true, tokens: true }),
  );
  const seen = new Set<string>();
  for (const t of r.tokens ?? []) {
    if (t.kind !== "option" || (all as Options)[t.name]?.multiple === true) continue;
    if (seen.has(t.name))
      throw usageOf(
        command,
        `${t.rawName === `--${t.name}` ? t.rawName : `--${t.name} (${t.rawName})`} given twice; it takes one value`,
      );
    seen.add(t.name);
  }
  const n = r.positionals.length;
  if (n < positionals.min) throw usageOf(command, `missing ${positionals.names}`);
  if (n > positionals.max) throw usageOf(command, `unexpected argument '${r.positionals[positionals.max]}'`);
  return { values: r.values, positionals: r.positionals };
}

export function usageOf(command: string, message: string): MigstreamError {
  return new MigstreamError("USAGE", `${command}: ${message} (see migstream ${command} --help)`);
}

/** An integer option in min..max, or `fallback` when absent. */
export function intOption(
  command: string,
  flag: string,
  text: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (text === undefined) return fallback;
  if (!/^\s*(0x[0-9a-f]+|\d+)\s*$/i.test(text)) throw usageOf(command, `${flag} '${text}' is not a whole number`);
  const n = Number(text);
  if (n < min || n > max) throw usageOf(command, `${flag} ${n} is outside ${min}..${max}`);
  return n;
}

/** A byte size option (4096, 0x1000, 64KiB, 1MiB), or undefined when absent. */
export function sizeOption(command: string, flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  try {
    return parseSize(text, flag);
  } catch (e) {
    throw usageOf(command, e instanceof Error ? e.message : String(e));
  }
}

/** parse(), with its error as the command's USAGE error. */
function parseOrUsage<T>(command: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    throw usageOf(command, e instanceof Error ? e.message : String(e));
  }
}
