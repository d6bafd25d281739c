// Test data generators for the codec kernels (seeded, deterministic).
import { fillPage, makeImage, type PageKind } from "../../src/device/pages.js";

/** xorshift32 stream. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>>= 0);
  };
}

export function randomBytes(n: number, seed: number): Uint8Array {
  const r = rng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = r() & 0xff;
  return out;
}

const WORDS =
  "the of device state region migration vfio page dirty bitmap stop copy resume pending data offset size".split(" ");

/** Text-like bytes: words from a small vocabulary with spaces and newlines. */
export function textBytes(n: number, seed: number): Uint8Array {
  const r = rng(seed);
  const out = new Uint8Array(n);
  let i = 0;
  while (i < n) {
    const w = WORDS[r() % WORDS.length];
    for (let j = 0; j < w.length && i < n; j++) out[i++] = w.charCodeAt(j);
    if (i < n) out[i++] = r() % 11 === 0 ? 10 : 32;
  }
  return out;
}

/** Bytes made of pages of one kind (see src/device/pages.ts). */
export function kindBytes(kind: PageKind, n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  fillPage(out, kind, seed);
  return out;
}

/** Named corpora used by the round-trip tests. */
export function corpus(n: number, seed: number): [string, Uint8Array][] {
  return [
    ["zeros", new Uint8Array(n)],
    ["text", textBytes(n, seed)],
    ["pointers", kindBytes("heap", n, seed)],
    ["code", kindBytes("code", n, seed)],
    ["random", randomBytes(n, seed)],
    ["image", makeImage(n, seed)],
  ];
}

/**
 * Index of the first difference between two byte arrays, -1 when equal (a
 * length difference counts at the shorter length). Fast on large arrays,
 * where deep equality in the test runner is slow.
 */
export function firstDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}
