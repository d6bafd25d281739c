// XXH64 (xxHash specification, 64-bit variant): one-shot and streaming.
// Four independent lanes over 32-byte stripes; the hot loop takes 128 bytes a
// turn. Streaming state is a 96-byte block owned by the binding (see layout).

const P1: u64 = 0x9e3779b185ebca87;
const P2: u64 = 0xc2b2ae3d27d4eb4f;
const P3: u64 = 0x165667b19e3779f9;
const P4: u64 = 0x85ebca77c2b2ae63;
const P5: u64 = 0x27d4eb2f165667c5;

const STRIPE: usize = 32;

// Streaming state layout (byte offsets).
const V1: usize = 0; // four lanes, u64 each
const TOTAL: usize = 32; // u64 bytes seen
const SEED: usize = 40; // u64
const MEMSIZE: usize = 48; // u32 bytes buffered in MEM
const MEM: usize = 64; // 32-byte buffer of a partial stripe
const STATE_SIZE: usize = 96;

// Lanes of the one-shot call (kernels never allocate; calls never overlap).
const ONESHOT_LANES = memory.data(32, 16);

@inline function round(acc: u64, input: u64): u64 {
  return rotl<u64>(acc + input * P2, 31) * P1;
}

@inline function mergeRound(h: u64, v: u64): u64 {
  return (h ^ round(0, v)) * P1 + P4;
}

function initLanes(v: usize, seed: u64): void {
  store<u64>(v, seed + P1 + P2, 0);
  store<u64>(v, seed + P2, 8);
  store<u64>(v, seed, 16);
  store<u64>(v, seed - P1, 24);
}

/** Runs whole stripes from `p` while at least one fits before `end`; returns the new `p`. */
function stripes(v: usize, p: usize, end: usize): usize {
  let v1 = load<u64>(v, 0);
  let v2 = load<u64>(v, 8);
  let v3 = load<u64>(v, 16);
  let v4 = load<u64>(v, 24);
  while (end - p >= STRIPE * 4) {
    v1 = round(v1, load<u64>(p, 0));
    v2 = round(v2, load<u64>(p, 8));
    v3 = round(v3, load<u64>(p, 16));
    v4 = round(v4, load<u64>(p, 24));
    v1 = round(v1, load<u64>(p, 32));
    v2 = round(v2, load<u64>(p, 40));
    v3 = round(v3, load<u64>(p, 48));
    v4 = round(v4, load<u64>(p, 56));
    v1 = round(v1, load<u64>(p, 64));
    v2 = round(v2, load<u64>(p, 72));
    v3 = round(v3, load<u64>(p, 80));
    v4 = round(v4, load<u64>(p, 88));
    v1 = round(v1, load<u64>(p, 96));
    v2 = round(v2, load<u64>(p, 104));
    v3 = round(v3, load<u64>(p, 112));
    v4 = round(v4, load<u64>(p, 120));
    p += STRIPE * 4;
  }
  while (end - p >= STRIPE) {
    v1 = round(v1, load<u64>(p, 0));
    v2 = round(v2, load<u64>(p, 8));
    v3 = round(v3, load<u64>(p, 16));
    v4 = round(v4, load<u64>(p, 24));
    p += STRIPE;
  }
  store<u64>(v, v1, 0);
  store<u64>(v, v2, 8);
  store<u64>(v, v3, 16);
  store<u64>(v, v4, 24);
  return p;
}

function mergeLanes(v: usize): u64 {
  const v1 = load<u64>(v, 0);
  const v2 = load<u64>(v, 8);
  const v3 = load<u64>(v, 16);
  const v4 = load<u64>(v, 24);
  let h = rotl<u64>(v1, 1) + rotl<u64>(v2, 7) + rotl<u64>(v3, 12) + rotl<u64>(v4, 18);
  h = mergeRound(h, v1);
  h = mergeRound(h, v2);
  h = mergeRound(h, v3);
  return mergeRound(h, v4);
}

/** Mixes the last `n` (< 32) bytes at `p` into `h` and avalanches. */
function finish(h: u64, p: usize, n: usize): u64 {
  while (n >= 8) {
    h = rotl<u64>(h ^ round(0, load<u64>(p)), 27) * P1 + P4;
    p += 8;
    n -= 8;
  }
  if (n >= 4) {
    h = rotl<u64>(h ^ (<u64>load<u32>(p) * P1), 23) * P2 + P3;
    p += 4;
    n -= 4;
  }
  while (n > 0) {
    h = rotl<u64>(h ^ (<u64>load<u8>(p) * P5), 11) * P1;
    p++;
    n--;
  }
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  return h ^ (h >> 32);
}

/** XXH64 of `len` bytes at `ptr`. */
export function xxh64_oneshot(ptr: usize, len: usize, seed: u64): u64 {
  const end = ptr + len;
  let p = ptr;
  let h: u64;
  if (len >= STRIPE) {
    initLanes(ONESHOT_LANES, seed);
    p = stripes(ONESHOT_LANES, p, end);
    h = mergeLanes(ONESHOT_LANES);
  } else {
    h = seed + P5;
  }
  return finish(h + <u64>len, p, end - p);
}

/** Bytes a streaming state needs. */
export function xxh64_state_size(): usize {
  return STATE_SIZE;
}

export function xxh64_init(state: usize, seed: u64): void {
  initLanes(state + V1, seed);
  store<u64>(state, 0, TOTAL);
  store<u64>(state, seed, SEED);
  store<u32>(state, 0, MEMSIZE);
}

export function xxh64_update(state: usize, ptr: usize, len: usize): void {
  store<u64>(state, load<u64>(state, TOTAL) + <u64>len, TOTAL);
  const mem = state + MEM;
  const memsize = <usize>load<u32>(state, MEMSIZE);
  if (memsize + len < STRIPE) {
    memory.copy(mem + memsize, ptr, len);
    store<u32>(state, <u32>(memsize + len), MEMSIZE);
    return;
  }
  const end = ptr + len;
  let p = ptr;
  if (memsize > 0) {
    const fill = STRIPE - memsize;
    memory.copy(mem + memsize, p, fill);
    stripes(state + V1, mem, mem + STRIPE);
    p += fill;
  }
  p = stripes(state + V1, p, end);
  memory.copy(mem, p, end - p);
  store<u32>(state, <u32>(end - p), MEMSIZE);
}

/** Digest of everything so far; the state is left unchanged. */
export function xxh64_digest(state: usize): u64 {
  const total = load<u64>(state, TOTAL);
  const h = total >= <u64>STRIPE ? mergeLanes(state + V1) : load<u64>(state, SEED) + P5;
  return finish(h + total, state + MEM, <usize>load<u32>(state, MEMSIZE));
}
