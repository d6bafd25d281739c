// CRC-32C of the 12-byte frame headers, in plain JS: for inputs this small a
// table lookup per byte is far cheaper than a call into the wasm kernel.
// Same definition as kernels/crc32c.ts (tests check they agree):
// crcSmall(b, crcSmall(a)) === crcSmall(a ++ b).

const TABLE = new Uint32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  TABLE[n] = c >>> 0;
}

/** CRC-32C of bytes[start..end), continuing the finished value `crc`. */
export function crcSmall(bytes: Uint8Array, start: number, end: number, crc = 0): number {
  let c = ~crc;
  for (let i = start; i < end; i++) c = TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
