// Benchmarks that run the TypeScript sources without a build step: export
// statements over src/ bundled with esbuild on the fly, the CLI bundled for
// `migstream sim serve` processes, and starting and stopping those processes.
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const cache = join(root, "node_modules", ".cache", "migstream-bench");

/** Bundles `input` (esbuild's stdin or entryPoints) for Node into the cache as NAME.mjs; its path. */
async function bundleTo(name, input) {
  mkdirSync(cache, { recursive: true });
  const outfile = join(cache, `${name}.mjs`);
  await build({
    ...input,
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    outfile,
    logLevel: "silent",
  });
  return outfile;
}

/** Bundles `lines` (export statements over src/) into an importable module. */
export async function bundle(name, lines) {
  const outfile = await bundleTo(name, { stdin: { contents: lines.join("\n"), resolveDir: root, loader: "ts" } });
  return import(pathToFileURL(outfile).href);
}

/** The CLI bundled like the sources, for the `sim serve` processes; its path. */
export function bundleCli() {
  return bundleTo("cli", { entryPoints: [join(root, "src/cli/main.ts")] });
}

/** Starts `cli sim serve --socket SOCKET ...args`; resolves with the child once it is listening. */
export function startSim(cli, socket, args) {
  const child = spawn(process.execPath, [cli, "sim", "serve", "--socket", socket, ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    child.stdout.once("data", () => resolve(child));
    child.once("exit", (code) => reject(new Error(`sim serve ${args.join(" ")} exited ${code}`)));
  });
}

/** Stops a `sim serve` child (SIGTERM) and waits for it. */
export function stopSim(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once("exit", resolve);
    child.kill("SIGTERM");
  });
}
