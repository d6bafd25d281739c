// The command table. Each command lives in its own module in this folder and
// is loaded only when it runs: a process parses one command's code, not
// every command's (start-up counts for a pipe filter such as QEMU's exec:).
import type { Command } from "../command.js";

/** Loaders by command name, in the order `migstream --help` lists them. */
const LOADERS: Record<string, () => Promise<Command>> = {
  demo: async () => (await import("./demo.js")).demo,
  save: async () => (await import("./save.js")).save,
  restore: async () => (await import("./restore.js")).restore,
  encode: async () => (await import("./encode.js")).encode,
  decode: async () => (await import("./decode.js")).decode,
  verify: async () => (await import("./verify.js")).verify,
  inspect: async () => (await import("./inspect.js")).inspect,
  sim: async () => (await import("./sim.js")).sim,
  bench: async () => (await import("./bench.js")).bench,
  kernels: async () => (await import("./kernels-info.js")).kernelsInfo,
};

/** The command called `name`, loaded; undefined for an unknown name. */
export async function loadCommand(name: string): Promise<Command | undefined> {
  const load = Object.hasOwn(LOADERS, name) ? LOADERS[name] : undefined;
  return load?.();
}

/** Every command, loaded (the top-level help lists them). */
export function loadCommands(): Promise<Command[]> {
  return Promise.all(Object.values(LOADERS).map((load) => load()));
}
