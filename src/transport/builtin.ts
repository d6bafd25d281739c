// Node built-in modules for the OS transports (sockets, fds), reached at run
// time so that the library entry still loads where they do not exist (browsers).
// Node ≥ 20.16 and Deno both offer process.getBuiltinModule; dynamic import is
// the fallback.
import { MigstreamError } from "../errors.js";

type BuiltinProcess = { getBuiltinModule?: (id: string) => unknown };

/** Loads `node:<name>` or rejects with TRANSPORT when the runtime has none. */
export async function builtin<T>(name: "net" | "fs"): Promise<T> {
  const id = `node:${name}`;
  const p = (globalThis as { process?: BuiltinProcess }).process;
  const m = p?.getBuiltinModule?.(id);
  if (m) return m as T;
  try {
    return (await import(/* @vite-ignore */ id)) as T;
  } catch (cause) {
    throw new MigstreamError("TRANSPORT", `this runtime has no ${id} (OS transports need Node or Deno)`, { cause });
  }
}
