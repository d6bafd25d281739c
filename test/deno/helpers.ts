// Shared by the Deno suites that need no permissions.

export function assert(cond: unknown, msg: string): void {
  if (!cond) throw new Error(msg);
}

/** Deterministic test data: 4 KiB runs of zeros, of a repeated word and of noise (xorshift32 from `seed`). */
export function sample(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (i >> 12) % 3 === 0 ? 0 : (i >> 12) % 3 === 1 ? "migstream "[i % 10].charCodeAt(0) : x & 0xff;
  }
  return out;
}
