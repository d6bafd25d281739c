// `migstream bench`: runs the project's benchmark suites (the npm scripts
// named bench:*), one after another, with their output as is.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { MigstreamError } from "../../errors.js";
import { parseCommand, usageOf } from "../args.js";
import type { CliIO, Command } from "../command.js";

const PACKAGE_NAME = "vfio-migstream";
const PREFIX = "bench:";

/** The package root above this module, and its bench:* scripts. */
function suites(): { root: string; names: string[] } {
  for (let d = dirname(fileURLToPath(import.meta.url)); ; d = dirname(d)) {
    const p = join(d, "package.json");
    if (existsSync(p)) {
      const pkg = JSON.parse(readFileSync(p, "utf8")) as { name?: string; scripts?: Record<string, string> };
      if (pkg.name === PACKAGE_NAME) {
        const names = Object.keys(pkg.scripts ?? {})
          .filter((s) => s.startsWith(PREFIX))
          .map((s) => s.slice(PREFIX.length));
        return { root: d, names };
      }
    }
    if (dirname(d) === d)
      throw new MigstreamError(
        "IO",
        "bench: the benchmarks come with the source checkout (no package.json of vfio-migstream above this CLI)",
      );
  }
}

function runScript(root: string, name: string, io: CliIO): Promise<number> {
  return new Promise((resolve, reject) => {
    const npm = process.platform === "win32" ? "npm.cmd" : "npm";
    const child = spawn(npm, ["run", "--silent", `${PREFIX}${name}`], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.on("data", (c) => io.stdout.write(c));
    child.stderr.on("data", (c) => io.stderr.write(c));
    child.once("error", (e) => reject(new MigstreamError("IO", `bench: cannot run npm: ${e.message}`, { cause: e })));
    child.once("exit", (code, sig) => resolve(code ?? (sig ? 128 : 1)));
  });
}

export const bench: Command = {
  name: "bench",
  summary: "run the benchmark suites (npm run bench:*) and print their tables",
  help: `usage: migstream bench [SUITE...] [--list]

Runs the benchmark suites of this checkout — the npm scripts named bench:SUITE —
in turn (all of them when none is named). Each prints medians and ratios
against named peers measured in the same run. Needs the source checkout.
  --list   print the suites and exit

examples:
  migstream bench --list
  migstream bench kernels`,
  async run(argv, io) {
    const { values: v, positionals } = parseCommand(
      "bench",
      argv,
      { list: { type: "boolean" } },
      { min: 0, max: 64, names: "" },
    );
    const { root, names } = suites();
    if (v.list) {
      io.stdout.write(v.json ? `${JSON.stringify(names)}\n` : `${names.join("\n")}\n`);
      return 0;
    }
    for (const p of positionals)
      if (!names.includes(p)) throw usageOf("bench", `no suite '${p}' (suites: ${names.join(", ") || "none"})`);
    const todo = positionals.length ? positionals : names;
    if (todo.length === 0) throw new MigstreamError("IO", "bench: this checkout defines no bench:* scripts");
    const failed: string[] = [];
    for (const name of todo) {
      if (!v.quiet) io.stderr.write(`bench: ${name}\n`);
      if ((await runScript(root, name, io)) !== 0) failed.push(name);
    }
    if (failed.length)
      throw new MigstreamError("IO", `bench: suite${failed.length > 1 ? "s" : ""} ${failed.join(", ")} failed`);
    return 0;
  },
};
