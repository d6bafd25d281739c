// Checks a zstd payload's structure before it reaches the decoder: exactly one
// frame (no skippable frame, nothing after it), no dictionary, a declared
// content size equal to the expected raw length, and blocks whose sizes can add
// up to it. Reading headers only, it bounds what decoding may allocate.
// Layout (RFC 8878 §3.1.1): magic, frame header, blocks (3-byte headers),
// optional 4-byte content checksum.

import { MigstreamError } from "../errors.js";

const ZSTD_MAGIC = 0xfd2fb528;
/** Largest decoded size of one block (RFC 8878 Block_Maximum_Size). */
const ZSTD_BLOCK_MAX = 128 * 1024;
const BLOCK_RAW = 0;
const BLOCK_RLE = 1;
const BLOCK_COMPRESSED = 2;

/** Worst-case frame size for `n` input bytes (ZSTD_COMPRESSBOUND of zstd 1.3/1.5). */
export function zstdCompressBound(n: number): number {
  return n + (n >>> 8) + (n < ZSTD_BLOCK_MAX ? (ZSTD_BLOCK_MAX - n) >>> 11 : 0);
}

function bad(message: string, offset: number): MigstreamError {
  return new MigstreamError("CODEC", `zstd payload: ${message}`, { offset });
}

function readLE(p: Uint8Array, at: number, n: number): number {
  let v = 0;
  for (let i = n - 1; i >= 0; i--) v = v * 256 + p[at + i];
  return v;
}

export interface ZstdFrameInfo {
  contentSize: number;
  headerSize: number;
  blocks: number;
  checksum: boolean;
}

/** Validates the payload as described above, or throws CODEC (offset = byte at fault). */
export function checkZstdFrame(p: Uint8Array, rawLength: number): ZstdFrameInfo {
  if (p.length < 6) throw bad(`${p.length} bytes is shorter than any frame`, 0);
  if (readLE(p, 0, 4) !== ZSTD_MAGIC) throw bad("bad frame magic (not a single zstd frame)", 0);
  const fhd = p[4];
  const fcsFlag = fhd >>> 6;
  const single = (fhd & 0x20) !== 0;
  if (fhd & 0x08) throw bad("reserved bit set in the frame header", 4);
  const checksum = (fhd & 0x04) !== 0;
  const dictBytes = [0, 1, 2, 4][fhd & 3];
  const fcsBytes = fcsFlag === 0 ? (single ? 1 : 0) : [0, 2, 4, 8][fcsFlag];
  let at = 5;
  let windowSize = Infinity;
  if (!single) {
    const wd = p[at++];
    const wlog = 10 + (wd >>> 3);
    windowSize = 2 ** wlog + (2 ** wlog / 8) * (wd & 7);
  }
  const headerSize = at + dictBytes + fcsBytes;
  if (p.length < headerSize + 3) throw bad("truncated frame header", p.length);
  if (dictBytes > 0 && readLE(p, at, dictBytes) !== 0) throw bad("frame needs a dictionary", at);
  at += dictBytes;
  if (fcsBytes === 0) throw bad("frame does not declare its content size", 4);
  let contentSize = readLE(p, at, fcsBytes);
  if (fcsBytes === 2) contentSize += 256;
  if (contentSize !== rawLength) {
    throw bad(`frame declares ${contentSize} bytes, chunk header says ${rawLength}`, at);
  }
  at += fcsBytes;
  // A single-segment frame's window is its content.
  const blockMax = Math.min(single ? contentSize : windowSize, ZSTD_BLOCK_MAX);
  // Walk the blocks: `known` counts raw/RLE output, `open` the compressed
  // blocks whose output (≤ blockMax each) is only known after decoding.
  let known = 0;
  let open = 0;
  let blocks = 0;
  for (;;) {
    if (at + 3 > p.length) throw bad("truncated block header", at);
    const h = readLE(p, at, 3);
    const last = (h & 1) === 1;
    const type = (h >>> 1) & 3;
    const size = h >>> 3;
    at += 3;
    blocks++;
    if (type === BLOCK_RAW) {
      if (size > blockMax) throw bad(`raw block of ${size} bytes exceeds ${blockMax}`, at - 3);
      known += size;
      at += size;
    } else if (type === BLOCK_RLE) {
      if (size > blockMax) throw bad(`RLE block of ${size} bytes exceeds ${blockMax}`, at - 3);
      known += size;
      at += 1;
    } else if (type === BLOCK_COMPRESSED) {
      if (size > blockMax) throw bad(`compressed block of ${size} bytes exceeds ${blockMax}`, at - 3);
      open++;
      at += size;
    } else {
      throw bad("reserved block type", at - 3);
    }
    if (at > p.length) throw bad("block runs past the end of the payload", p.length);
    if (known > rawLength) throw bad(`blocks produce more than ${rawLength} bytes`, at);
    if (last) break;
  }
  if (checksum) at += 4;
  if (at !== p.length) {
    throw bad(
      at > p.length ? "truncated content checksum" : `${p.length - at} bytes after the frame`,
      Math.min(at, p.length),
    );
  }
  if (known + open * blockMax < rawLength) throw bad(`blocks cannot produce ${rawLength} bytes`, at);
  return { contentSize, headerSize, blocks, checksum };
}
