// Sizes as people write them in device specs and CLI options: `4096`,
// `0x1000`, `64MiB`, `1GiB`. Its own module, so that a command parsing an
// option does not load the transports that device specs name.
import { MigstreamError } from "../errors.js";

const UNITS: Record<string, number> = { "": 1, b: 1, kib: 1 << 10, mib: 1 << 20, gib: 1 << 30 };

/** Parses `4096`, `0x1000`, `64MiB`, `1GiB`. Throws USAGE naming `what`. */
export function parseSize(text: string, what = "size"): number {
  const m = /^\s*(0x[0-9a-f]+|\d+)\s*(b|kib|mib|gib)?\s*$/i.exec(text);
  if (!m)
    throw new MigstreamError("USAGE", `${what}: '${text}' is not a number (decimal, 0x-hex, optional KiB/MiB/GiB)`);
  const n = Number(m[1]) * UNITS[(m[2] ?? "").toLowerCase()];
  if (!Number.isSafeInteger(n)) throw new MigstreamError("USAGE", `${what}: '${text}' is too large`);
  return n;
}
