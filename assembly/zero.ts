// Zero detection: whole buffers, zero prefixes and per-page zero maps.
// SIMD build: OR of 64 bytes as four v128 loads, one any_true test.
// Scalar build: OR of eight u64 loads.

const BLOCK: usize = 64;

/** True when any of the 64 bytes at `p` is non-zero. */
@inline function blockNonZero(p: usize): bool {
  if (ASC_FEATURE_SIMD) {
    const a = v128.or(v128.load(p), v128.load(p, 16));
    const b = v128.or(v128.load(p, 32), v128.load(p, 48));
    return v128.any_true(v128.or(a, b));
  } else {
    const a = load<u64>(p) | load<u64>(p, 8) | load<u64>(p, 16) | load<u64>(p, 24);
    const b = load<u64>(p, 32) | load<u64>(p, 40) | load<u64>(p, 48) | load<u64>(p, 56);
    return (a | b) != 0;
  }
}

/** True when the `n` bytes at `p` are all zero. */
function rangeIsZero(p: usize, n: usize): bool {
  const end = p + n;
  while (end - p >= BLOCK * 2) {
    if (blockNonZero(p) || blockNonZero(p + BLOCK)) return false;
    p += BLOCK * 2;
  }
  if (end - p >= BLOCK) {
    if (blockNonZero(p)) return false;
    p += BLOCK;
  }
  let acc: u64 = 0;
  while (end - p >= 8) {
    acc |= load<u64>(p);
    p += 8;
  }
  while (p < end) acc |= <u64>load<u8>(p++);
  return acc == 0;
}

/** 1 when the `len` bytes at `ptr` are all zero, else 0. */
export function zero_isZero(ptr: usize, len: usize): i32 {
  return rangeIsZero(ptr, len) ? 1 : 0;
}

/** Number of leading zero bytes (== len when all zero). */
export function zero_prefixLength(ptr: usize, len: usize): usize {
  const end = ptr + len;
  let p = ptr;
  while (end - p >= BLOCK && !blockNonZero(p)) p += BLOCK;
  while (end - p >= 8) {
    const w = load<u64>(p);
    if (w != 0) return p - ptr + <usize>(ctz(w) >> 3);
    p += 8;
  }
  while (p < end && load<u8>(p) == 0) p++;
  return p - ptr;
}

/**
 * Writes one byte per page of `pageSize` bytes (the last may be short) at `out`:
 * 1 when the page is all zero, else 0. Returns the number of zero pages.
 */
export function zero_pageMap(ptr: usize, len: usize, pageSize: usize, out: usize): usize {
  if (pageSize == 0) return 0;
  let zeros: usize = 0;
  let p = ptr;
  let left = len;
  while (left > 0) {
    const n = left < pageSize ? left : pageSize;
    const z: usize = rangeIsZero(p, n) ? 1 : 0;
    store<u8>(out++, <u8>z);
    zeros += z;
    p += n;
    left -= n;
  }
  return zeros;
}

/** Number of all-zero pages of `pageSize` bytes (the last may be short). */
export function zero_countPages(ptr: usize, len: usize, pageSize: usize): usize {
  if (pageSize == 0) return 0;
  let zeros: usize = 0;
  let p = ptr;
  let left = len;
  while (left > 0) {
    const n = left < pageSize ? left : pageSize;
    if (rangeIsZero(p, n)) zeros++;
    p += n;
    left -= n;
  }
  return zeros;
}
