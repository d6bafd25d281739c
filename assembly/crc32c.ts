// CRC-32C (Castagnoli, reflected polynomial 0x82f63b78).
// WebAssembly has no CRC or carry-less multiply instruction, so:
// - Scalar (tails, and the whole input in the scalar build): slice-by-16, sixteen
//   lookups into sixteen 256-entry tables per 16 bytes.
// - SIMD, per 4 KiB block: 32 independent streams of 128 bytes, one per byte
//   lane of two v128 groups. Each step advances all 16 streams of a group by one
//   byte with the byte-wise recurrence crc = (crc >> 8) ^ T[(crc ^ byte) & 255],
//   the register held as four byte vectors and T looked up by nibble with
//   i8x16.swizzle. Two groups hide the swizzle chain latency. The 32 stream
//   registers are then joined (shift by 128 zero bytes, xor).
// Tables live in static data and are filled once by the module start function.

const POLY: u32 = 0x82f63b78;

const SLICES: usize = 16;
/** SLICES tables of 256 u32: table k, entry i = register after byte i then k zero bytes. */
const TABLE = memory.data(<i32>(SLICES * 256 * 4), 64);

const LANES: usize = 16; // streams per v128 group
const GROUPS: usize = 2;
const STREAMS: usize = LANES * GROUPS;
const SEG: usize = 128; // bytes per stream
const BLOCK: usize = STREAMS * SEG; // 4096

/** Per register byte k (0..3): 16-entry tables of byte k of T[n] (low nibble n) and T[n << 4]. */
const NIBBLE = memory.data(8 * 16, 16);
/** 4 tables of 256 u32: table k, entry b = register (b << 8k) advanced over SEG zero bytes. */
const SHIFT_SEG = memory.data(4 * 256 * 4, 64);
/** The same over BLOCK zero bytes. */
const SHIFT_BLOCK = memory.data(4 * 256 * 4, 64);
/** Scratch: the block transposed, step t at t * 32 (group 0) and t * 32 + 16 (group 1). */
const TRANSPOSED = memory.data(<i32>BLOCK, 64);
/** Scratch: the 32 stream registers of a block. */
const REGS = memory.data(<i32>(STREAMS * 4), 16);

// @ts-ignore: decorator
@inline function tableAt(k: usize, i: usize): usize {
  return TABLE + (k << 10) + (i << 2);
}

/** One byte-wise step over `n` zero bytes of register `r` (table 0 only). */
function zeros(r: u32, n: usize): u32 {
  for (let i: usize = 0; i < n; i++) r = (r >>> 8) ^ load<u32>(tableAt(0, r & 0xff));
  return r;
}

function buildTables(): void {
  for (let i: u32 = 0; i < 256; i++) {
    let c = i;
    for (let b = 0; b < 8; b++) c = (c >>> 1) ^ (POLY & (0 - (c & 1)));
    store<u32>(tableAt(0, i), c);
  }
  for (let k: usize = 1; k < SLICES; k++) {
    for (let i: usize = 0; i < 256; i++) {
      const prev = load<u32>(tableAt(k - 1, i));
      store<u32>(tableAt(k, i), (prev >>> 8) ^ load<u32>(tableAt(0, prev & 0xff)));
    }
  }
  for (let k: usize = 0; k < 4; k++) {
    for (let n: usize = 0; n < 16; n++) {
      store<u8>(NIBBLE + k * 32 + n, <u8>(load<u32>(tableAt(0, n)) >>> (8 * <u32>k)));
      store<u8>(NIBBLE + k * 32 + 16 + n, <u8>(load<u32>(tableAt(0, n << 4)) >>> (8 * <u32>k)));
    }
  }
  // A shift is linear: build each table from its 8 single-bit entries.
  for (let k: usize = 0; k < 4; k++) {
    for (let bit: usize = 0; bit < 8; bit++) {
      setBit(SHIFT_SEG + (k << 10), bit, zeros(<u32>1 << (<u32>k * 8 + <u32>bit), SEG));
    }
  }
  for (let k: usize = 0; k < 4; k++) {
    for (let bit: usize = 0; bit < 8; bit++) {
      let v = <u32>1 << (<u32>k * 8 + <u32>bit);
      for (let i: usize = 0; i < STREAMS; i++) v = shift(SHIFT_SEG, v);
      setBit(SHIFT_BLOCK + (k << 10), bit, v);
    }
  }
}

/** Fills entries [2^bit, 2^(bit+1)) of a linear table from entries [0, 2^bit). */
function setBit(t: usize, bit: usize, v: u32): void {
  const step = <usize>1 << bit;
  for (let b: usize = 0; b < step; b++) store<u32>(t + ((step + b) << 2), load<u32>(t + (b << 2)) ^ v);
}

/** Register `r` advanced over the zero bytes of shift table `t`. */
// @ts-ignore: decorator
@inline function shift(t: usize, r: u32): u32 {
  return (
    load<u32>(t + (<usize>(r & 0xff) << 2)) ^
    load<u32>(t + 1024 + (<usize>((r >>> 8) & 0xff) << 2)) ^
    load<u32>(t + 2048 + (<usize>((r >>> 16) & 0xff) << 2)) ^
    load<u32>(t + 3072 + (<usize>(r >>> 24) << 2))
  );
}
buildTables();

/** Entry of slice table `k` for the byte of `x` at bit `shift`. */
// @ts-ignore: decorator
@inline function slice(k: usize, x: u32, shift: u32): u32 {
  return load<u32>(TABLE + (k << 10) + (<usize>((x >>> shift) & 0xff) << 2));
}

/** Register `c` advanced over the bytes [p, end) with slice-by-16. */
function scalarRun(c: u32, p: usize, end: usize): u32 {
  while (end - p >= 16) {
    const a = load<u32>(p) ^ c;
    const b = load<u32>(p, 4);
    const d = load<u32>(p, 8);
    const e = load<u32>(p, 12);
    c =
      slice(15, a, 0) ^ slice(14, a, 8) ^ slice(13, a, 16) ^ slice(12, a, 24) ^
      slice(11, b, 0) ^ slice(10, b, 8) ^ slice(9, b, 16) ^ slice(8, b, 24) ^
      slice(7, d, 0) ^ slice(6, d, 8) ^ slice(5, d, 16) ^ slice(4, d, 24) ^
      slice(3, e, 0) ^ slice(2, e, 8) ^ slice(1, e, 16) ^ slice(0, e, 24);
    p += 16;
  }
  while (p < end) {
    c = (c >>> 8) ^ slice(0, c ^ <u32>load<u8>(p), 0);
    p++;
  }
  return c;
}

// ---- SIMD block path ----

// @ts-ignore: decorator
@inline function lo8(a: v128, b: v128): v128 {
  return i8x16.shuffle(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
}
// @ts-ignore: decorator
@inline function hi8(a: v128, b: v128): v128 {
  return i8x16.shuffle(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
}
// @ts-ignore: decorator
@inline function lo16(a: v128, b: v128): v128 {
  return i16x8.shuffle(a, b, 0, 8, 1, 9, 2, 10, 3, 11);
}
// @ts-ignore: decorator
@inline function hi16(a: v128, b: v128): v128 {
  return i16x8.shuffle(a, b, 4, 12, 5, 13, 6, 14, 7, 15);
}
// @ts-ignore: decorator
@inline function lo32(a: v128, b: v128): v128 {
  return i32x4.shuffle(a, b, 0, 4, 1, 5);
}
// @ts-ignore: decorator
@inline function hi32(a: v128, b: v128): v128 {
  return i32x4.shuffle(a, b, 2, 6, 3, 7);
}
// @ts-ignore: decorator
@inline function lo64(a: v128, b: v128): v128 {
  return i64x2.shuffle(a, b, 0, 2);
}
// @ts-ignore: decorator
@inline function hi64(a: v128, b: v128): v128 {
  return i64x2.shuffle(a, b, 1, 3);
}

/**
 * Transposes 16 streams of SEG bytes at `src` (stream i at src + i * SEG):
 * byte t of every stream goes to the 16 lanes of the vector at dst + t * 32.
 */
function transpose(src: usize, dst: usize): void {
  for (let q = src, end = src + SEG, o = dst; q < end; q += 16, o += 16 * 32) {
    const r0 = v128.load(q, 0 * SEG), r1 = v128.load(q, 1 * SEG);
    const r2 = v128.load(q, 2 * SEG), r3 = v128.load(q, 3 * SEG);
    const r4 = v128.load(q, 4 * SEG), r5 = v128.load(q, 5 * SEG);
    const r6 = v128.load(q, 6 * SEG), r7 = v128.load(q, 7 * SEG);
    const r8 = v128.load(q, 8 * SEG), r9 = v128.load(q, 9 * SEG);
    const r10 = v128.load(q, 10 * SEG), r11 = v128.load(q, 11 * SEG);
    const r12 = v128.load(q, 12 * SEG), r13 = v128.load(q, 13 * SEG);
    const r14 = v128.load(q, 14 * SEG), r15 = v128.load(q, 15 * SEG);
    // bytes of row pairs
    const a0 = lo8(r0, r1), a1 = hi8(r0, r1), a2 = lo8(r2, r3), a3 = hi8(r2, r3);
    const a4 = lo8(r4, r5), a5 = hi8(r4, r5), a6 = lo8(r6, r7), a7 = hi8(r6, r7);
    const a8 = lo8(r8, r9), a9 = hi8(r8, r9), a10 = lo8(r10, r11), a11 = hi8(r10, r11);
    const a12 = lo8(r12, r13), a13 = hi8(r12, r13), a14 = lo8(r14, r15), a15 = hi8(r14, r15);
    // then pairs of row pairs
    const b0 = lo16(a0, a2), b1 = hi16(a0, a2), b2 = lo16(a1, a3), b3 = hi16(a1, a3);
    const b4 = lo16(a4, a6), b5 = hi16(a4, a6), b6 = lo16(a5, a7), b7 = hi16(a5, a7);
    const b8 = lo16(a8, a10), b9 = hi16(a8, a10), b10 = lo16(a9, a11), b11 = hi16(a9, a11);
    const b12 = lo16(a12, a14), b13 = hi16(a12, a14), b14 = lo16(a13, a15), b15 = hi16(a13, a15);
    // then quads
    const d0 = lo32(b0, b4), d1 = hi32(b0, b4), d2 = lo32(b1, b5), d3 = hi32(b1, b5);
    const d4 = lo32(b2, b6), d5 = hi32(b2, b6), d6 = lo32(b3, b7), d7 = hi32(b3, b7);
    const d8 = lo32(b8, b12), d9 = hi32(b8, b12), d10 = lo32(b9, b13), d11 = hi32(b9, b13);
    const d12 = lo32(b10, b14), d13 = hi32(b10, b14), d14 = lo32(b11, b15), d15 = hi32(b11, b15);
    // byte t of rows 0..15 in lane order
    v128.store(o, lo64(d0, d8), 0 * 32);
    v128.store(o, hi64(d0, d8), 1 * 32);
    v128.store(o, lo64(d1, d9), 2 * 32);
    v128.store(o, hi64(d1, d9), 3 * 32);
    v128.store(o, lo64(d2, d10), 4 * 32);
    v128.store(o, hi64(d2, d10), 5 * 32);
    v128.store(o, lo64(d3, d11), 6 * 32);
    v128.store(o, hi64(d3, d11), 7 * 32);
    v128.store(o, lo64(d4, d12), 8 * 32);
    v128.store(o, hi64(d4, d12), 9 * 32);
    v128.store(o, lo64(d5, d13), 10 * 32);
    v128.store(o, hi64(d5, d13), 11 * 32);
    v128.store(o, lo64(d6, d14), 12 * 32);
    v128.store(o, hi64(d6, d14), 13 * 32);
    v128.store(o, lo64(d7, d15), 14 * 32);
    v128.store(o, hi64(d7, d15), 15 * 32);
  }
}

/** Writes the registers of 16 streams (byte k of stream i = lane i of ck) as u32 at `dst`. */
function storeRegisters(dst: usize, c0: v128, c1: v128, c2: v128, c3: v128): void {
  const l01 = lo8(c0, c1), l23 = lo8(c2, c3), h01 = hi8(c0, c1), h23 = hi8(c2, c3);
  v128.store(dst, lo16(l01, l23), 0);
  v128.store(dst, hi16(l01, l23), 16);
  v128.store(dst, lo16(h01, h23), 32);
  v128.store(dst, hi16(h01, h23), 48);
}

/** Register after the BLOCK bytes at `p` from register 0 (32 streams of SEG bytes). */
function simdBlock(p: usize): u32 {
  const tb = TRANSPOSED;
  transpose(p, tb);
  transpose(p + LANES * SEG, tb + 16);

  const m = i8x16.splat(0x0f);
  const lo0 = v128.load(NIBBLE, 0), hi0 = v128.load(NIBBLE, 16);
  const lo1 = v128.load(NIBBLE, 32), hi1 = v128.load(NIBBLE, 48);
  const lo2 = v128.load(NIBBLE, 64), hi2 = v128.load(NIBBLE, 80);
  const lo3 = v128.load(NIBBLE, 96), hi3 = v128.load(NIBBLE, 112);
  const zero = i8x16.splat(0);
  let a0 = zero, a1 = zero, a2 = zero, a3 = zero; // group 0 register bytes
  let b0 = zero, b1 = zero, b2 = zero, b3 = zero; // group 1
  for (let o = tb, end = tb + BLOCK; o < end; o += 32) {
    const x = v128.xor(a0, v128.load(o, 0));
    const y = v128.xor(b0, v128.load(o, 16));
    const xl = v128.and(x, m);
    const xh = v128.and(i16x8.shr_u(x, 4), m);
    const yl = v128.and(y, m);
    const yh = v128.and(i16x8.shr_u(y, 4), m);
    // crc = (crc >> 8) ^ T[x]: byte k of the new register = byte k+1 of the old ^ byte k of T[x]
    const na0 = v128.xor(a1, v128.xor(i8x16.swizzle(lo0, xl), i8x16.swizzle(hi0, xh)));
    const nb0 = v128.xor(b1, v128.xor(i8x16.swizzle(lo0, yl), i8x16.swizzle(hi0, yh)));
    const na1 = v128.xor(a2, v128.xor(i8x16.swizzle(lo1, xl), i8x16.swizzle(hi1, xh)));
    const nb1 = v128.xor(b2, v128.xor(i8x16.swizzle(lo1, yl), i8x16.swizzle(hi1, yh)));
    const na2 = v128.xor(a3, v128.xor(i8x16.swizzle(lo2, xl), i8x16.swizzle(hi2, xh)));
    const nb2 = v128.xor(b3, v128.xor(i8x16.swizzle(lo2, yl), i8x16.swizzle(hi2, yh)));
    a3 = v128.xor(i8x16.swizzle(lo3, xl), i8x16.swizzle(hi3, xh));
    b3 = v128.xor(i8x16.swizzle(lo3, yl), i8x16.swizzle(hi3, yh));
    a0 = na0;
    a1 = na1;
    a2 = na2;
    b0 = nb0;
    b1 = nb1;
    b2 = nb2;
  }
  storeRegisters(REGS, a0, a1, a2, a3);
  storeRegisters(REGS + LANES * 4, b0, b1, b2, b3);

  // Join: r = shift(r) ^ next stream, in stream order.
  let r = load<u32>(REGS);
  for (let i: usize = 1; i < STREAMS; i++) r = shift(SHIFT_SEG, r) ^ load<u32>(REGS + (i << 2));
  return r;
}

/**
 * CRC-32C of `len` bytes at `ptr`, continuing `crc` (a finished CRC value,
 * 0 to start): crc32c_update(crc32c_update(0, a), b) == crc32c_update(0, a ++ b).
 */
export function crc32c_update(crc: u32, ptr: usize, len: usize): u32 {
  let c = ~crc;
  let p = ptr;
  const end = ptr + len;
  if (ASC_FEATURE_SIMD) {
    // The block runs from register 0; c joins it by a shift, off the block's critical path.
    while (end - p >= BLOCK) {
      c = shift(SHIFT_BLOCK, c) ^ simdBlock(p);
      p += BLOCK;
    }
  }
  return ~scalarRun(c, p, end);
}
