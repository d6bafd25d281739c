// XXH3-64 (xxHash specification): every length class, one-shot and streaming.
// Long inputs (> 240 bytes) run 64-byte stripes into eight u64 accumulators;
// the SIMD build keeps them in four v128 registers (32x32->64 products via
// i64x2.extmul), the scalar build in eight u64 locals. Both give identical results.

const P32_1: u64 = 0x9e3779b1;
const P32_2: u64 = 0x85ebca77;
const P32_3: u64 = 0xc2b2ae3d;
const P64_1: u64 = 0x9e3779b185ebca87;
const P64_2: u64 = 0xc2b2ae3d27d4eb4f;
const P64_3: u64 = 0x165667b19e3779f9;
const P64_4: u64 = 0x85ebca77c2b2ae63;
const P64_5: u64 = 0x27d4eb2f165667c5;
const PRIME_MX1: u64 = 0x165667919e3779f9;
const PRIME_MX2: u64 = 0x9fb21c651e98df25;

const STRIPE: usize = 64;
const SECRET_SIZE: usize = 192; // default secret, and every secret used here
const SECRET_SIZE_MIN: usize = 136;
const SECRET_CONSUME_RATE: usize = 8;
const SECRET_LIMIT: usize = SECRET_SIZE - STRIPE; // scramble key offset
const STRIPES_PER_BLOCK: usize = SECRET_LIMIT / SECRET_CONSUME_RATE; // 16
const BLOCK: usize = STRIPE * STRIPES_PER_BLOCK; // 1024
const SECRET_LASTACC_START: usize = 7;
const SECRET_MERGEACCS_START: usize = 11;
const MIDSIZE_MAX: usize = 240;
const MIDSIZE_STARTOFFSET: usize = 3;
const MIDSIZE_LASTOFFSET: usize = 17;
const BUFFER_SIZE: usize = 256; // streaming input buffer, 4 stripes

/** The reference's default 192-byte secret (kSecret). */
const K_SECRET = memory.data<u8>([
  0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
  0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
  0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
  0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
  0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
  0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
  0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
  0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
  0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
  0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
  0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
  0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
], 16);

// Scratch of the one-shot and digest calls (kernels never allocate; calls never overlap).
const WORK_ACC = memory.data(64, 16);
const WORK_SECRET = memory.data(<i32>SECRET_SIZE, 16);
const WORK_STRIPE = memory.data(<i32>STRIPE, 16);
const WORK_COUNT = memory.data(4, 4);

// Streaming state layout (byte offsets).
const ACC: usize = 0; // 8 x u64
const SECRET: usize = 64; // 192 bytes: secret derived from a non-zero seed
const BUFFER: usize = 256; // BUFFER_SIZE bytes
const BUFFERED: usize = 512; // u32
const STRIPES_SO_FAR: usize = 516; // u32 stripes into the current block
const TOTAL: usize = 520; // u64
const SEED: usize = 528; // u64
const SECRET_PTR: usize = 536; // u32: K_SECRET or state + SECRET
const STATE_SIZE: usize = 544;

// ---- small helpers ----

/** Low 64 bits xor high 64 bits of the 128-bit product a*b. */
function mul128Fold64(a: u64, b: u64): u64 {
  const aLo = a & 0xffffffff;
  const aHi = a >> 32;
  const bLo = b & 0xffffffff;
  const bHi = b >> 32;
  const loLo = aLo * bLo;
  const hiLo = aHi * bLo;
  const loHi = aLo * bHi;
  const hiHi = aHi * bHi;
  const cross = (loLo >> 32) + (hiLo & 0xffffffff) + loHi;
  const upper = (hiLo >> 32) + (cross >> 32) + hiHi;
  const lower = (cross << 32) | (loLo & 0xffffffff);
  return lower ^ upper;
}

@inline function xxh64Avalanche(h: u64): u64 {
  h ^= h >> 33;
  h *= P64_2;
  h ^= h >> 29;
  h *= P64_3;
  return h ^ (h >> 32);
}

@inline function avalanche(h: u64): u64 {
  h ^= h >> 37;
  h *= PRIME_MX1;
  return h ^ (h >> 32);
}

@inline function rrmxmx(h: u64, len: u64): u64 {
  h ^= rotl<u64>(h, 49) ^ rotl<u64>(h, 24);
  h *= PRIME_MX2;
  h ^= (h >> 35) + len;
  h *= PRIME_MX2;
  return h ^ (h >> 28);
}

@inline function mix16B(p: usize, s: usize, seed: u64): u64 {
  return mul128Fold64(load<u64>(p) ^ (load<u64>(s) + seed), load<u64>(p, 8) ^ (load<u64>(s, 8) - seed));
}

// ---- inputs of 0..240 bytes (always the default secret, plus seed) ----

function len0to16(p: usize, len: usize, seed: u64): u64 {
  const s = K_SECRET;
  if (len > 8) {
    const bitflip1 = (load<u64>(s, 24) ^ load<u64>(s, 32)) + seed;
    const bitflip2 = (load<u64>(s, 40) ^ load<u64>(s, 48)) - seed;
    const lo = load<u64>(p) ^ bitflip1;
    const hi = load<u64>(p + len - 8) ^ bitflip2;
    return avalanche(<u64>len + bswap<u64>(lo) + hi + mul128Fold64(lo, hi));
  }
  if (len >= 4) {
    const s2 = seed ^ (<u64>bswap<u32>(<u32>seed) << 32);
    const in1 = <u64>load<u32>(p);
    const in2 = <u64>load<u32>(p + len - 4);
    const bitflip = (load<u64>(s, 8) ^ load<u64>(s, 16)) - s2;
    return rrmxmx((in2 + (in1 << 32)) ^ bitflip, <u64>len);
  }
  if (len > 0) {
    const c1 = <u32>load<u8>(p);
    const c2 = <u32>load<u8>(p + (len >> 1));
    const c3 = <u32>load<u8>(p + len - 1);
    const combined = (c1 << 16) | (c2 << 24) | c3 | (<u32>len << 8);
    const bitflip = <u64>(load<u32>(s) ^ load<u32>(s, 4)) + seed;
    return xxh64Avalanche(<u64>combined ^ bitflip);
  }
  return xxh64Avalanche(seed ^ load<u64>(s, 56) ^ load<u64>(s, 64));
}

function len17to128(p: usize, len: usize, seed: u64): u64 {
  const s = K_SECRET;
  let acc = <u64>len * P64_1;
  if (len > 32) {
    if (len > 64) {
      if (len > 96) {
        acc += mix16B(p + 48, s + 96, seed);
        acc += mix16B(p + len - 64, s + 112, seed);
      }
      acc += mix16B(p + 32, s + 64, seed);
      acc += mix16B(p + len - 48, s + 80, seed);
    }
    acc += mix16B(p + 16, s + 32, seed);
    acc += mix16B(p + len - 32, s + 48, seed);
  }
  acc += mix16B(p, s, seed);
  acc += mix16B(p + len - 16, s + 16, seed);
  return avalanche(acc);
}

function len129to240(p: usize, len: usize, seed: u64): u64 {
  const s = K_SECRET;
  let acc = <u64>len * P64_1;
  for (let i: usize = 0; i < 8; i++) acc += mix16B(p + 16 * i, s + 16 * i, seed);
  acc = avalanche(acc);
  const rounds = len >> 4;
  for (let i: usize = 8; i < rounds; i++) acc += mix16B(p + 16 * i, s + 16 * (i - 8) + MIDSIZE_STARTOFFSET, seed);
  acc += mix16B(p + len - 16, s + SECRET_SIZE_MIN - MIDSIZE_LASTOFFSET, seed);
  return avalanche(acc);
}

function hashShort(p: usize, len: usize, seed: u64): u64 {
  if (len <= 16) return len0to16(p, len, seed);
  if (len <= 128) return len17to128(p, len, seed);
  return len129to240(p, len, seed);
}

// ---- long inputs: stripes, blocks, scramble ----

function initAcc(acc: usize): void {
  store<u64>(acc, P32_3, 0);
  store<u64>(acc, P64_1, 8);
  store<u64>(acc, P64_2, 16);
  store<u64>(acc, P64_3, 24);
  store<u64>(acc, P64_4, 32);
  store<u64>(acc, P32_2, 40);
  store<u64>(acc, P64_5, 48);
  store<u64>(acc, P32_1, 56);
}

/** Writes the secret derived from `seed` (kSecret words +seed / -seed) to `dst`. */
function deriveSecret(dst: usize, seed: u64): void {
  for (let i: usize = 0; i < SECRET_SIZE; i += 16) {
    store<u64>(dst + i, load<u64>(K_SECRET + i) + seed);
    store<u64>(dst + i, load<u64>(K_SECRET + i, 8) - seed, 8);
  }
}

// SIMD lane order: registers hold the accumulators pairwise swapped
// (x0 = [acc1, acc0], ...), so the "acc[i ^ 1] += data[i]" term is a plain add;
// the products are built already swapped by the shuffles that gather the
// 32-bit halves of two data^key vectors.

/** Accumulates `n` stripes from `p`, secret advancing 8 bytes per stripe. */
function accumulate(acc: usize, p: usize, s: usize, n: usize): void {
  if (ASC_FEATURE_SIMD) {
    let x0 = i64x2.shuffle(v128.load(acc, 0), v128.load(acc, 0), 1, 0);
    let x1 = i64x2.shuffle(v128.load(acc, 16), v128.load(acc, 16), 1, 0);
    let x2 = i64x2.shuffle(v128.load(acc, 32), v128.load(acc, 32), 1, 0);
    let x3 = i64x2.shuffle(v128.load(acc, 48), v128.load(acc, 48), 1, 0);
    const end = p + n * STRIPE;
    while (p < end) {
      const d0 = v128.load(p, 0);
      const d1 = v128.load(p, 16);
      const d2 = v128.load(p, 32);
      const d3 = v128.load(p, 48);
      const k0 = v128.xor(d0, v128.load(s, 0));
      const k1 = v128.xor(d1, v128.load(s, 16));
      const k2 = v128.xor(d2, v128.load(s, 32));
      const k3 = v128.xor(d3, v128.load(s, 48));
      // [lo1, lo0, lo3, lo2] and [hi1, hi0, hi3, hi2] of (k0, k1)
      const lo01 = i32x4.shuffle(k0, k1, 2, 0, 6, 4);
      const hi01 = i32x4.shuffle(k0, k1, 3, 1, 7, 5);
      const lo23 = i32x4.shuffle(k2, k3, 2, 0, 6, 4);
      const hi23 = i32x4.shuffle(k2, k3, 3, 1, 7, 5);
      x0 = i64x2.add(i64x2.add(x0, d0), i64x2.extmul_low_i32x4_u(lo01, hi01));
      x1 = i64x2.add(i64x2.add(x1, d1), i64x2.extmul_high_i32x4_u(lo01, hi01));
      x2 = i64x2.add(i64x2.add(x2, d2), i64x2.extmul_low_i32x4_u(lo23, hi23));
      x3 = i64x2.add(i64x2.add(x3, d3), i64x2.extmul_high_i32x4_u(lo23, hi23));
      p += STRIPE;
      s += SECRET_CONSUME_RATE;
    }
    v128.store(acc, i64x2.shuffle(x0, x0, 1, 0), 0);
    v128.store(acc, i64x2.shuffle(x1, x1, 1, 0), 16);
    v128.store(acc, i64x2.shuffle(x2, x2, 1, 0), 32);
    v128.store(acc, i64x2.shuffle(x3, x3, 1, 0), 48);
  } else {
    let a0 = load<u64>(acc, 0);
    let a1 = load<u64>(acc, 8);
    let a2 = load<u64>(acc, 16);
    let a3 = load<u64>(acc, 24);
    let a4 = load<u64>(acc, 32);
    let a5 = load<u64>(acc, 40);
    let a6 = load<u64>(acc, 48);
    let a7 = load<u64>(acc, 56);
    const end = p + n * STRIPE;
    while (p < end) {
      let d = load<u64>(p, 0);
      let k = d ^ load<u64>(s, 0);
      a1 += d;
      a0 += (k & 0xffffffff) * (k >> 32);
      d = load<u64>(p, 8);
      k = d ^ load<u64>(s, 8);
      a0 += d;
      a1 += (k & 0xffffffff) * (k >> 32);
      d = load<u64>(p, 16);
      k = d ^ load<u64>(s, 16);
      a3 += d;
      a2 += (k & 0xffffffff) * (k >> 32);
      d = load<u64>(p, 24);
      k = d ^ load<u64>(s, 24);
      a2 += d;
      a3 += (k & 0xffffffff) * (k >> 32);
      d = load<u64>(p, 32);
      k = d ^ load<u64>(s, 32);
      a5 += d;
      a4 += (k & 0xffffffff) * (k >> 32);
      d = load<u64>(p, 40);
      k = d ^ load<u64>(s, 40);
      a4 += d;
      a5 += (k & 0xffffffff) * (k >> 32);
      d = load<u64>(p, 48);
      k = d ^ load<u64>(s, 48);
      a7 += d;
      a6 += (k & 0xffffffff) * (k >> 32);
      d = load<u64>(p, 56);
      k = d ^ load<u64>(s, 56);
      a6 += d;
      a7 += (k & 0xffffffff) * (k >> 32);
      p += STRIPE;
      s += SECRET_CONSUME_RATE;
    }
    store<u64>(acc, a0, 0);
    store<u64>(acc, a1, 8);
    store<u64>(acc, a2, 16);
    store<u64>(acc, a3, 24);
    store<u64>(acc, a4, 32);
    store<u64>(acc, a5, 40);
    store<u64>(acc, a6, 48);
    store<u64>(acc, a7, 56);
  }
}

/** acc = (acc ^ (acc >> 47) ^ key) * PRIME32_1, key = the last 64 bytes of the secret. */
function scramble(acc: usize, s: usize): void {
  const key = s + SECRET_LIMIT;
  if (ASC_FEATURE_SIMD) {
    const prime = i64x2.splat(P32_1);
    for (let i: usize = 0; i < STRIPE; i += 16) {
      const a = v128.load(acc + i);
      const x = v128.xor(v128.xor(a, i64x2.shr_u(a, 47)), v128.load(key + i));
      v128.store(acc + i, i64x2.mul(x, prime));
    }
  } else {
    for (let i: usize = 0; i < STRIPE; i += 8) {
      const a = load<u64>(acc + i);
      store<u64>(acc + i, (a ^ (a >> 47) ^ load<u64>(key + i)) * P32_1);
    }
  }
}

function mergeAccs(acc: usize, s: usize, start: u64): u64 {
  let r = start;
  for (let i: usize = 0; i < 4; i++) {
    r += mul128Fold64(load<u64>(acc + 16 * i) ^ load<u64>(s + 16 * i), load<u64>(acc + 16 * i, 8) ^ load<u64>(s + 16 * i, 8));
  }
  return avalanche(r);
}

/** The last stripe (the final 64 input bytes) with its own secret offset. */
@inline function lastStripe(acc: usize, p: usize, s: usize): void {
  accumulate(acc, p, s + SECRET_LIMIT - SECRET_LASTACC_START, 1);
}

function hashLong(p: usize, len: usize, s: usize): u64 {
  const acc = WORK_ACC;
  initAcc(acc);
  const blocks = (len - 1) / BLOCK;
  for (let b: usize = 0; b < blocks; b++) {
    accumulate(acc, p + b * BLOCK, s, STRIPES_PER_BLOCK);
    scramble(acc, s);
  }
  const tail = p + blocks * BLOCK;
  accumulate(acc, tail, s, (len - 1 - blocks * BLOCK) / STRIPE);
  lastStripe(acc, p + len - STRIPE, s);
  return mergeAccs(acc, s + SECRET_MERGEACCS_START, <u64>len * P64_1);
}

/** XXH3_64bits_withSeed of `len` bytes at `ptr` (seed 0 = XXH3_64bits). */
export function xxh3_oneshot(ptr: usize, len: usize, seed: u64): u64 {
  if (len <= MIDSIZE_MAX) return hashShort(ptr, len, seed);
  if (seed == 0) return hashLong(ptr, len, K_SECRET);
  deriveSecret(WORK_SECRET, seed);
  return hashLong(ptr, len, WORK_SECRET);
}

// ---- streaming (the reference's XXH3_update / XXH3_digest buffering) ----

/** Bytes a streaming state needs. */
export function xxh3_state_size(): usize {
  return STATE_SIZE;
}

export function xxh3_init(state: usize, seed: u64): void {
  initAcc(state + ACC);
  store<u32>(state, 0, BUFFERED);
  store<u32>(state, 0, STRIPES_SO_FAR);
  store<u64>(state, 0, TOTAL);
  store<u64>(state, seed, SEED);
  if (seed == 0) {
    store<u32>(state, <u32>K_SECRET, SECRET_PTR);
  } else {
    deriveSecret(state + SECRET, seed);
    store<u32>(state, <u32>(state + SECRET), SECRET_PTR);
  }
}

/**
 * Accumulates `n` stripes from `p` continuing the block position at `*soFar`,
 * scrambling at each block end. Returns the pointer past the consumed stripes.
 */
function consumeStripes(acc: usize, soFar: usize, p: usize, n: usize, s: usize): usize {
  let done = <usize>load<u32>(soFar);
  const toBlockEnd = STRIPES_PER_BLOCK - done;
  if (n >= toBlockEnd) {
    accumulate(acc, p, s + done * SECRET_CONSUME_RATE, toBlockEnd);
    scramble(acc, s);
    p += toBlockEnd * STRIPE;
    n -= toBlockEnd;
    while (n >= STRIPES_PER_BLOCK) {
      accumulate(acc, p, s, STRIPES_PER_BLOCK);
      scramble(acc, s);
      p += BLOCK;
      n -= STRIPES_PER_BLOCK;
    }
    done = 0;
  }
  if (n > 0) {
    accumulate(acc, p, s + done * SECRET_CONSUME_RATE, n);
    p += n * STRIPE;
    done += n;
  }
  store<u32>(soFar, <u32>done);
  return p;
}

export function xxh3_update(state: usize, ptr: usize, len: usize): void {
  store<u64>(state, load<u64>(state, TOTAL) + <u64>len, TOTAL);
  const buf = state + BUFFER;
  const buffered = <usize>load<u32>(state, BUFFERED);
  if (len <= BUFFER_SIZE - buffered) {
    memory.copy(buf + buffered, ptr, len);
    store<u32>(state, <u32>(buffered + len), BUFFERED);
    return;
  }
  // More than the buffer holds: complete and consume the buffer, then stripes
  // straight from the input, always keeping the last (partial) stripe back.
  const s = <usize>load<u32>(state, SECRET_PTR);
  const acc = state + ACC;
  const soFar = state + STRIPES_SO_FAR;
  const end = ptr + len;
  let p = ptr;
  if (buffered > 0) {
    const fill = BUFFER_SIZE - buffered;
    memory.copy(buf + buffered, p, fill);
    p += fill;
    consumeStripes(acc, soFar, buf, BUFFER_SIZE / STRIPE, s);
  }
  if (end - p > BUFFER_SIZE) {
    p = consumeStripes(acc, soFar, p, (end - p - 1) / STRIPE, s);
    // keep the stripe before the remainder for a digest of < 64 buffered bytes
    memory.copy(buf + BUFFER_SIZE - STRIPE, p - STRIPE, STRIPE);
  }
  memory.copy(buf, p, end - p);
  store<u32>(state, <u32>(end - p), BUFFERED);
}

/** Digest of everything so far; works on a copy of the accumulators. */
export function xxh3_digest(state: usize): u64 {
  const total = load<u64>(state, TOTAL);
  const buf = state + BUFFER;
  const buffered = <usize>load<u32>(state, BUFFERED);
  if (total <= <u64>MIDSIZE_MAX) return hashShort(buf, <usize>total, load<u64>(state, SEED));
  const s = <usize>load<u32>(state, SECRET_PTR);
  const acc = WORK_ACC;
  memory.copy(acc, state + ACC, 64);
  let last: usize;
  if (buffered >= STRIPE) {
    store<u32>(WORK_COUNT, load<u32>(state, STRIPES_SO_FAR));
    consumeStripes(acc, WORK_COUNT, buf, (buffered - 1) / STRIPE, s);
    last = buf + buffered - STRIPE;
  } else {
    const catchup = STRIPE - buffered;
    memory.copy(WORK_STRIPE, buf + BUFFER_SIZE - catchup, catchup);
    memory.copy(WORK_STRIPE + catchup, buf, buffered);
    last = WORK_STRIPE;
  }
  lastStripe(acc, last, s);
  return mergeAccs(acc, s + SECRET_MERGEACCS_START, total * P64_1);
}
