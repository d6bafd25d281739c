// LZ4 block codec (standard block format, no frame, no size header).
//
// Block = sequences. Each sequence:
//   token      1 byte: high nibble = literal count, low nibble = match length - 4;
//              a nibble of 15 is followed by continuation bytes (255, 255, ..., <255)
//              that add up to the rest of the length
//   literals   the literal bytes
//   offset     u16 little-endian, 1..65535 back from the current output position
//   [match length continuation bytes]
// The last sequence has only a token and literals (no offset). The encoder keeps
// lz4's end-of-block rules: the last 5 bytes are literals and the last match
// starts at least 12 bytes before the end, so inputs under 13 bytes are all
// literals. Any lz4 block decoder reads what `lz4_compress` writes.
//
// Compressor: single-pass greedy, one hash table of 4-byte sequences (Knuth
// multiplicative hash; 4096 u32 entries = 16 KiB in static data, lz4.c's default
// size), lz4.c's skip acceleration (the probe step grows by one every 64 misses,
// times `acceleration`), 8-byte match extension (ctz of the XOR). The table
// stores "generation + position": each call starts at a generation beyond every
// older entry's reach, so stale entries fail the distance check and the table
// never needs clearing (except when the u32 generation wraps).
//
// Decompressor: safe. Every length, offset and bound is checked; reads stay in
// [src, src+srcLen), writes in [dst, dst+dstCap); every loop step consumes input,
// so any input terminates. Errors return -1 - (input offset) and set a kind.

const MINMATCH: u32 = 4;
const LASTLITERALS: u32 = 5;
const MFLIMIT: u32 = 12;
const MIN_LENGTH_FOR_MATCH: u32 = MFLIMIT + 1;
const MAX_DISTANCE: u32 = 65535;
const RUN_MASK: u32 = 15;
const ML_MASK: u32 = 15;
const SKIP_TRIGGER: u32 = 6;
const ACCELERATION_MAX: u32 = 65537;
const MAX_INPUT_SIZE: u32 = 0x7e000000;

const HASH_LOG: u32 = 12;
const HASH_ENTRIES: u32 = 1 << HASH_LOG;
const HASH_TABLE: usize = memory.data(HASH_ENTRIES << 2, 64);
/** Wild copies may write this far past the logical end (inside dst bounds only). */
const WILD: u32 = 16;
/** Literal runs up to this long are copied in 8/16-byte steps; longer ones with memory.copy. */
const WILD_LITERALS: u32 = 64;

// Generation base for table entries; starts one window past the zeroed table.
let generation: u32 = MAX_DISTANCE + 1;

/** Table byte offset for a 4-byte sequence: top HASH_LOG bits of the Knuth product. */
@inline function hashOf(seq: u32): usize {
  return <usize>((seq * 2654435761) >> (32 - HASH_LOG - 2)) & ((HASH_ENTRIES - 1) << 2);
}

@inline function hashAt(p: usize): usize {
  return hashOf(load<u32>(p));
}

/** Bytes equal at `a` and `b`, comparing up to `limit` (for `a`); 8 at a time. */
@inline function matchLength(a: usize, b: usize, limit: usize): u32 {
  const start = a;
  while (a + 8 <= limit) {
    const diff = load<u64>(a) ^ load<u64>(b);
    if (diff != 0) return <u32>(a - start) + <u32>(ctz(diff) >> 3);
    a += 8;
    b += 8;
  }
  if (a + 4 <= limit && load<u32>(a) == load<u32>(b)) {
    a += 4;
    b += 4;
  }
  if (a + 2 <= limit && load<u16>(a) == load<u16>(b)) {
    a += 2;
    b += 2;
  }
  if (a < limit && load<u8>(a) == load<u8>(b)) a++;
  return <u32>(a - start);
}

/** Copies 16 bytes; correct when the ranges are at least 16 bytes apart. */
@inline function copy16(d: usize, s: usize): void {
  if (ASC_FEATURE_SIMD) {
    v128.store(d, v128.load(s));
  } else {
    store<u64>(d, load<u64>(s));
    store<u64>(d, load<u64>(s, 8), 8);
  }
}

/** Writes a length continuation (value already reduced by the nibble's 15). */
@inline function putLength(op: usize, len: u32): usize {
  while (len >= 255) {
    store<u8>(op++, 255);
    len -= 255;
  }
  store<u8>(op++, <u8>len);
  return op;
}

/**
 * Compresses `srcLen` bytes at `src` into at most `dstCap` bytes at `dst`.
 * Returns the compressed size, or 0 when it does not fit (or input too large).
 */
export function lz4_compress(src: usize, srcLen: u32, dst: usize, dstCap: u32, acceleration: u32): u32 {
  if (srcLen > MAX_INPUT_SIZE) return 0;
  if (acceleration < 1) acceleration = 1;
  if (acceleration > ACCELERATION_MAX) acceleration = ACCELERATION_MAX;
  // With room for the worst case the output checks can never fail: skip them.
  const bound = <u64>srcLen + srcLen / 255 + 16;
  return <u64>dstCap >= bound
    ? compressBlock(src, srcLen, dst, dstCap, acceleration, false)
    : compressBlock(src, srcLen, dst, dstCap, acceleration, true);
}

// Inlined twice, so `limited` is a constant in each copy.
@inline function compressBlock(src: usize, srcLen: u32, dst: usize, dstCap: u32, acceleration: u32, limited: bool): u32 {
  const iend = src + srcLen;
  const oend = dst + dstCap;
  let op = dst;
  let anchor = src;

  if (srcLen >= MIN_LENGTH_FOR_MATCH) {
    // Entries are stored as base + pointer (u32 wrap-around is intended).
    if (<u64>generation + srcLen + MAX_DISTANCE + 1 > <u64>U32.MAX_VALUE) {
      memory.fill(HASH_TABLE, 0, HASH_ENTRIES << 2);
      generation = MAX_DISTANCE + 1;
    }
    const base: u32 = generation - <u32>src;
    generation += srcLen + MAX_DISTANCE + 1;

    const mflimitPlusOne = iend - MFLIMIT + 1;
    const matchLimit = iend - LASTLITERALS;
    let ip = src;
    store<u32>(HASH_TABLE + hashAt(ip), base + <u32>ip);
    ip++;
    let forwardSeq = load<u32>(ip);
    let forwardH = hashOf(forwardSeq);

    while (true) {
      // Find a match: probe with a step that grows with consecutive misses.
      let match: usize = 0;
      let found = false;
      let forwardIp = ip;
      let step: u32 = 1;
      let searchMatchNb: u32 = acceleration << SKIP_TRIGGER;
      while (true) {
        const h = forwardH;
        const seq = forwardSeq;
        ip = forwardIp;
        forwardIp += step;
        step = searchMatchNb++ >> SKIP_TRIGGER;
        if (forwardIp > mflimitPlusOne) break;
        const ref = load<u32>(HASH_TABLE + h);
        forwardSeq = load<u32>(forwardIp);
        forwardH = hashOf(forwardSeq);
        const cur = base + <u32>ip;
        store<u32>(HASH_TABLE + h, cur);
        const dist = cur - ref;
        if (dist <= MAX_DISTANCE) {
          match = ip - dist;
          if (load<u32>(match) == seq) {
            found = true;
            break;
          }
        }
      }
      if (!found) break; // too close to the end: the rest are literals

      // Extend backwards over equal bytes.
      while (ip > anchor && match > src && load<u8>(ip - 1) == load<u8>(match - 1)) {
        ip--;
        match--;
      }

      // Literals.
      const litLen = <u32>(ip - anchor);
      let token = op++;
      if (limited && <u64>op + litLen + (2 + 1 + LASTLITERALS) + litLen / 255 > <u64>oend) return 0;
      if (litLen >= RUN_MASK) {
        store<u8>(token, <u8>(RUN_MASK << 4));
        op = putLength(op, litLen - RUN_MASK);
      } else {
        store<u8>(token, <u8>(litLen << 4));
      }
      if (litLen > WILD_LITERALS) {
        memory.copy(op, anchor, litLen);
      } else {
        // Wild copy: reads stay below ip + 8 <= iend, writes below op + litLen + 8 <= oend.
        let d = op;
        let s = anchor;
        const e = op + litLen;
        while (d < e) {
          store<u64>(d, load<u64>(s));
          d += 8;
          s += 8;
        }
      }
      op += litLen;

      // Match, then try an immediate next match at the new position.
      let atEnd = false;
      while (true) {
        store<u16>(op, <u16>(ip - match));
        op += 2;
        let ml = matchLength(ip + MINMATCH, match + MINMATCH, matchLimit);
        ip += ml + MINMATCH;
        if (limited && <u64>op + (1 + LASTLITERALS) + (ml + 240) / 255 > <u64>oend) return 0;
        if (ml >= ML_MASK) {
          store<u8>(token, load<u8>(token) | <u8>ML_MASK);
          op = putLength(op, ml - ML_MASK);
        } else {
          store<u8>(token, load<u8>(token) | <u8>ml);
        }
        anchor = ip;
        if (ip >= mflimitPlusOne) {
          atEnd = true;
          break;
        }

        store<u32>(HASH_TABLE + hashAt(ip - 2), base + <u32>(ip - 2));
        const seq = load<u32>(ip);
        const h = hashOf(seq);
        const ref = load<u32>(HASH_TABLE + h);
        const cur = base + <u32>ip;
        store<u32>(HASH_TABLE + h, cur);
        const dist = cur - ref;
        if (dist > MAX_DISTANCE) break;
        match = ip - dist;
        if (load<u32>(match) != seq) break;
        token = op++;
        store<u8>(token, 0);
      }
      if (atEnd) break;
      forwardSeq = load<u32>(++ip);
      forwardH = hashOf(forwardSeq);
    }
  }

  // Last literals.
  const lastRun = <u32>(iend - anchor);
  if (limited && <u64>op + lastRun + 1 + (lastRun + 255 - RUN_MASK) / 255 > <u64>oend) return 0;
  if (lastRun >= RUN_MASK) {
    store<u8>(op++, <u8>(RUN_MASK << 4));
    op = putLength(op, lastRun - RUN_MASK);
  } else {
    store<u8>(op++, <u8>(lastRun << 4));
  }
  memory.copy(op, anchor, lastRun);
  op += lastRun;
  return <u32>(op - dst);
}

// Decoder error kinds (read with lz4_errorKind after a negative return).
const ERR_TRUNCATED: i32 = 1; // input ended inside a sequence
const ERR_OFFSET: i32 = 2; // offset 0 or before the start of output
const ERR_OUTPUT: i32 = 3; // output would exceed dstCap
let lastError: i32 = 0;

export function lz4_errorKind(): i32 {
  return lastError;
}

@inline function fail(kind: i32, src: usize, at: usize): i32 {
  lastError = kind;
  return -1 - <i32>(at - src);
}

// Stride for overlapping matches with offset < 16: the smallest multiple of the
// offset that is >= 16, so 16-byte copies from that far back repeat the pattern.
const OVERLAP_STRIDE: usize = memory.data<u8>([0, 16, 16, 18, 16, 20, 18, 21, 16, 18, 20, 22, 24, 26, 28, 30]);
// Row `offset` (< 16): byte indexes i % offset, a swizzle that spreads the first
// `offset` bytes of a match over 16 bytes.
const OVERLAP_PATTERN: usize = memory.data<u8>([
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,
  0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0,
  0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3,
  0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0,
  0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3,
  0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6, 0, 1,
  0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7,
  0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 3, 4, 5, 6,
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5,
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 1, 2, 3, 4,
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 3,
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 1, 2,
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 0, 1,
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0,
]);
// Decoder fast loop: runs while the input holds a whole short sequence (token,
// up to 14 literals, offset: 17 bytes) and dst has room for its fixed-size
// copies (16 literal bytes, then up to 32 match bytes from 14 on).
const FAST_IN: usize = 17;
const FAST_OUT: usize = 48;

/**
 * Writes the first 16 bytes of a match whose offset is below 16 (it overlaps
 * its own output): the offset's period repeated. `m` = d - offset.
 */
@inline function overlapPattern(d: usize, m: usize, offset: usize): void {
  if (ASC_FEATURE_SIMD) {
    v128.store(d, i8x16.swizzle(v128.load(m), v128.load(OVERLAP_PATTERN + (offset << 4))));
  } else if (offset >= 8) {
    store<u64>(d, load<u64>(m));
    store<u64>(d, load<u64>(m, 8), 8);
  } else {
    for (let i: usize = 0; i < 16; i++) store<u8>(d + i, load<u8>(m + i));
  }
}

/**
 * Decodes the block at `src` (`srcLen` bytes) into `dst` (capacity `dstCap`).
 * Returns the decoded size, or -1 - offset of the failing input byte.
 * Bytes of dst past the returned size may be overwritten.
 */
export function lz4_decompress(src: usize, srcLen: u32, dst: usize, dstCap: u32): i32 {
  let ip = src;
  const iend = src + srcLen;
  let op = dst;
  const oend = dst + dstCap;
  lastError = 0;
  while (true) {
    // Fast loop: the common sequence, both lengths in the token (<= 14
    // literals, a match of <= 18 bytes), with fixed-size copies and no
    // length checks beyond the loop's. Anything else, and the block's end,
    // take the general path below.
    while (iend - ip >= FAST_IN && oend - op >= FAST_OUT) {
      const t = <u32>load<u8>(ip);
      if (t >= RUN_MASK << 4 || (t & ML_MASK) == ML_MASK) break;
      const lit = <usize>(t >> 4);
      copy16(op, ip + 1);
      ip += lit + 1;
      op += lit;
      const offset = <usize>load<u16>(ip);
      // offset 0 wraps to the largest usize: one compare rejects it and any offset before dst.
      if (offset - 1 >= op - dst) return fail(ERR_OFFSET, src, ip);
      ip += 2;
      const ml = <usize>(t & ML_MASK) + MINMATCH;
      const m = op - offset;
      // One 16-byte step, a second only for a match longer than that.
      if (offset >= WILD) {
        copy16(op, m);
        if (ml > 16) copy16(op + 16, m + 16);
      } else {
        overlapPattern(op, m, offset);
        if (ml > 16) copy16(op + 16, op + 16 - <usize>load<u8>(OVERLAP_STRIDE + offset));
      }
      op += ml;
    }

    if (ip >= iend) return fail(ERR_TRUNCATED, src, ip);
    const token = <u32>load<u8>(ip++);
    let lit = token >> 4;
    let ml = token & ML_MASK;

    // Literals.
    if (lit == RUN_MASK) {
      while (true) {
        if (ip >= iend) return fail(ERR_TRUNCATED, src, ip);
        const b = <u32>load<u8>(ip++);
        lit += b;
        if (b != 255) break;
        if (lit > srcLen) return fail(ERR_TRUNCATED, src, ip);
      }
    }
    if (<usize>lit > iend - ip) return fail(ERR_TRUNCATED, src, ip);
    if (<usize>lit > oend - op) return fail(ERR_OUTPUT, src, ip);
    if (lit <= WILD_LITERALS && iend - ip >= <usize>lit + WILD && oend - op >= <usize>lit + WILD) {
      let d = op;
      let s = ip;
      const e = op + lit;
      do {
        copy16(d, s);
        d += 16;
        s += 16;
      } while (d < e);
    } else {
      memory.copy(op, ip, lit);
    }
    ip += lit;
    op += lit;
    if (ip == iend) break; // the last sequence has no match

    // Offset.
    if (iend - ip < 2) return fail(ERR_TRUNCATED, src, ip);
    const offset = <usize>load<u16>(ip);
    if (offset - 1 >= op - dst) return fail(ERR_OFFSET, src, ip);
    ip += 2;

    // Match length.
    if (ml == ML_MASK) {
      while (true) {
        if (ip >= iend) return fail(ERR_TRUNCATED, src, ip);
        const b = <u32>load<u8>(ip++);
        ml += b;
        if (b != 255) break;
        if (ml > dstCap) return fail(ERR_OUTPUT, src, ip);
      }
    }
    ml += MINMATCH;
    if (<usize>ml > oend - op) return fail(ERR_OUTPUT, src, ip);

    // Match copy: 16-byte steps while a whole step fits in dst, then bytes.
    // Overlapping matches (offset < 16) first lay down one 16-byte period
    // pattern, then copy from a whole number of periods back.
    let m = op - offset;
    const e = op + ml;
    let d = op;
    const room = oend - op;
    const fastEnd = room >= <usize>ml + WILD ? e : room > WILD ? oend - WILD : op;
    if (d < fastEnd) {
      if (offset < WILD) {
        overlapPattern(d, m, offset);
        d += 16;
        m = d - <usize>load<u8>(OVERLAP_STRIDE + offset);
      }
      while (d < fastEnd) {
        copy16(d, m);
        d += 16;
        m += 16;
      }
    }
    while (d < e) store<u8>(d++, load<u8>(m++));
    op = e;
  }
  return <i32>(op - dst);
}
