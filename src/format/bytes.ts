// Little-endian field access on byte arrays (every integer in the format is
// little-endian), and u64 counts as safe JS numbers.

import { MigstreamError } from "../errors.js";

/**
 * The same bytes as a plain Uint8Array view. Node's Buffer is a Uint8Array
 * whose `slice` shares memory; taking plain views of inputs keeps every
 * `slice` here a copy.
 */
export function plain(b: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(b) === Uint8Array.prototype ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

export function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** A u64 count that must be a safe integer (FORMAT otherwise). */
export function readCount(dv: DataView, at: number, field: string): number {
  const v = dv.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new MigstreamError("FORMAT", `${field} ${v} is out of range`, { field });
  }
  return Number(v);
}

export function writeCount(dv: DataView, at: number, n: number): void {
  dv.setBigUint64(at, BigInt(n), true);
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
