// Independent implementations and shared vectors for the checksum tests:
// hash-wasm (xxhash64, xxhash3, crc32 with the Castagnoli polynomial) and
// xxhash-wasm (h64Raw). Peers are created once; their hashers are synchronous.
import { createCRC32, createXXHash3, createXXHash64, type IHasher } from "hash-wasm";
import xxhash from "xxhash-wasm";

/** Lengths covering every XXH3 length class and the block edges of each kernel. */
export const LENGTHS = [
  0,
  1,
  3,
  4,
  8,
  15,
  16,
  17,
  31,
  32,
  33,
  63,
  64,
  65,
  127,
  128,
  129,
  239,
  240,
  241,
  255,
  256,
  257,
  1023,
  1024,
  1025,
  4095,
  4096,
  4097,
  8192 + 17,
  (1 << 20) + 3,
];

/** Seed 0, a small seed, and one with the top bit set (negative as i64). */
export const SEEDS = [0n, 42n, 0x9e3779b97f4a7c15n];

export const CASTAGNOLI = 0x82f63b78;

/** Deterministic input: byte i = (i * 31 + 7) & 255. */
export function pattern(len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = (i * 31 + 7) & 255;
  return out;
}

export function ascii(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

function halves(seed: bigint): [number, number] {
  return [Number(seed & 0xffffffffn), Number(seed >> 32n)];
}

function run(h: IHasher, data: Uint8Array): string {
  h.init();
  h.update(data);
  return h.digest("hex");
}

export interface Peers {
  /** hash-wasm xxhash64. */
  xxh64(data: Uint8Array, seed: bigint): bigint;
  /** xxhash-wasm h64Raw. */
  xxh64b(data: Uint8Array, seed: bigint): bigint;
  /** hash-wasm xxhash3 (64-bit). */
  xxh3(data: Uint8Array, seed: bigint): bigint;
  /** hash-wasm crc32 with the Castagnoli polynomial. */
  crc32c(data: Uint8Array): number;
}

/** Creates the peers, with hashers for `seeds` ready. */
export async function loadPeers(seeds: readonly bigint[] = SEEDS): Promise<Peers> {
  const x64 = new Map<bigint, IHasher>();
  const x3 = new Map<bigint, IHasher>();
  for (const s of seeds) {
    x64.set(s, await createXXHash64(...halves(s)));
    x3.set(s, await createXXHash3(...halves(s)));
  }
  const crc = await createCRC32(CASTAGNOLI);
  const { h64Raw } = await xxhash();
  const get = (m: Map<bigint, IHasher>, s: bigint): IHasher => {
    const h = m.get(s);
    if (!h) throw new Error(`peer hasher for seed ${s} not created`);
    return h;
  };
  return {
    xxh64: (d, s) => BigInt(`0x${run(get(x64, s), d)}`),
    xxh64b: (d, s) => h64Raw(d, s),
    xxh3: (d, s) => BigInt(`0x${run(get(x3, s), d)}`),
    crc32c: (d) => Number.parseInt(run(crc, d), 16),
  };
}

/** Splits `data` at the given cut points (sorted, clamped), keeping empty pieces. */
export function splitAt(data: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = cuts.map((c) => Math.min(Math.max(0, c), data.length)).sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(data.subarray(prev, p));
    prev = p;
  }
  out.push(data.subarray(prev));
  return out;
}
