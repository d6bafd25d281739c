// The inputs and options of the golden vectors (test/vectors/*.mstream).
// Plain JavaScript with its own data generator, shared by
// scripts/make-vectors.mjs (which writes the vectors) and
// test/format/vectors.test.ts (which decodes them and re-encodes these
// inputs byte for byte). Changing anything here changes the vectors.

/** Fixed stream id and key of every vector (never use these outside tests). */
export const STREAM_ID = Uint8Array.from({ length: 16 }, (_, i) => 0x10 + i);
export const KEY = new TextEncoder().encode("migstream test vector key, 32 B!");
/** The destination's challenge the bound vectors are bound to. */
export const CHALLENGE = Uint8Array.from({ length: 16 }, (_, i) => 0xc0 + i);
/**
 * The "random" source of the encrypted vectors: an encrypting encoder draws
 * its stream id itself (it refuses a given one), so the vectors replace its
 * randomness with 0x20, 0x21, ... — never do this outside test vectors.
 */
export function fixedRandom(b) {
  for (let i = 0; i < b.length; i++) b[i] = 0x20 + i;
}

const enc = new TextEncoder();

/** `n` pseudo-random bytes (xorshift32 from `seed`): incompressible. */
export function noise(n, seed) {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** `n` bytes of repetitive text: compressible. */
export function text(n, seed = 0) {
  const words = ["vfio", "device", "state", "migration", "region", "buffer", "pending", "bytes", "saving", "resuming"];
  const parts = [];
  let len = 0;
  for (let i = 0; len < n; i++) {
    const w = `${words[(i * 7 + seed) % words.length]} ${(i * 13 + seed) % 97} `;
    parts.push(w);
    len += w.length;
  }
  return enc.encode(parts.join("")).subarray(0, n);
}

const phase = (p, iteration = 0) => ({ kind: "phase", phase: p, iteration });
const txn = (data) => ({ kind: "transaction", data });

/** [{ name, note, input: DeviceInput[], options: EncoderOptions, decode?: DecoderOptions (default: the options' key) }] */
export function vectorCases() {
  const base = { streamId: STREAM_ID };
  const mixed = [phase("precopy"), txn(text(600, 1)), phase("stopcopy"), txn(new Uint8Array(300)), txn(new Uint8Array(0)), txn(noise(200, 9))];
  const rep = noise(900, 4);
  return [
    {
      name: "minimal",
      note: "one device, one 16-byte RAW transaction (the worked example of FORMAT.md §13)",
      input: [{ id: 1, name: "dev", items: [phase("stopcopy"), txn(enc.encode("hello, migstream"))] }],
      options: { ...base, codec: "raw" },
    },
    {
      name: "raw",
      note: "RAW and ZERO chunks, an empty transaction, two phases",
      input: [{ id: 0, name: "gpu", metadata: Uint8Array.of(0xde, 0x10, 0x1b, 0x20), items: mixed }],
      options: { ...base, codec: "raw", chunkSize: 256 },
    },
    {
      name: "lz4",
      note: "LZ4 chunks, RAW fallback for noise, ZERO",
      input: [{ id: 0, name: "gpu", items: mixed }],
      options: { ...base, codec: "lz4", chunkSize: 256 },
    },
    {
      name: "zstd",
      note: "zstd level 3 chunks",
      input: [{ id: 0, name: "gpu", items: mixed }],
      options: { ...base, codec: "zstd", level: 3, chunkSize: 512 },
    },
    {
      name: "multi",
      note: "three devices interleaved one item at a time, with metadata",
      input: [
        { id: 3, name: "nic0", metadata: enc.encode('{"vendor":"0x8086"}'), items: [phase("setup"), txn(text(100, 2)), phase("stopcopy"), txn(text(50, 3))] },
        { id: 7, name: "gpu0", items: [phase("precopy", 0), txn(noise(64, 5)), phase("precopy", 1), txn(text(90, 4)), phase("end")] },
        { id: 65535, name: "", items: [] },
      ],
      options: { ...base, codec: "lz4", chunkSize: 64 },
    },
    {
      name: "dedup",
      note: "content-defined chunks; the second copy of the data is sent as DEDUP_REF chunks",
      input: [{ id: 2, name: "dedup", items: [phase("precopy"), txn(rep), phase("stopcopy"), txn(rep), txn(rep.subarray(100))] }],
      options: { ...base, codec: "lz4", dedup: true, chunkSize: 1024, dedupWindow: 8192 },
    },
    {
      name: "v2",
      note: "a VFIO migration v2 device that restarts its stream at STOP_COPY (DEVICE_PROTOCOL frame) beside a v1 device (no record)",
      input: [
        { id: 0, name: "v2dev", protocol: { generation: 2, restartsAtStopCopy: true }, items: [phase("precopy"), txn(text(120, 6)), phase("stopcopy"), txn(text(150, 6))] },
        { id: 1, name: "v1dev", items: [phase("stopcopy"), txn(text(40, 7))] },
      ],
      options: { ...base, codec: "raw" },
    },
    {
      name: "mac",
      note: "authenticated with HMAC-SHA-256 (key: the 32 ASCII bytes of KEY)",
      input: [{ id: 0, name: "keyed", items: [phase("stopcopy"), txn(text(300, 5)), txn(noise(40, 6))] }],
      options: { ...base, codec: "lz4", chunkSize: 256, key: KEY },
    },
    {
      name: "bound",
      note: "v1.1: HMAC-SHA-256, bound to the connection challenge CHALLENGE (flag BOUND)",
      input: [{ id: 0, name: "keyed", items: [phase("stopcopy"), txn(text(300, 5)), txn(noise(40, 6))] }],
      options: { ...base, codec: "lz4", chunkSize: 256, key: KEY, challenge: CHALLENGE },
      decode: { key: KEY, challenge: CHALLENGE },
    },
    {
      name: "sealed",
      note: "v1.1: every frame sealed with AES-256-GCM (mac_alg 2); stream id from fixedRandom",
      input: [{ id: 0, name: "secret", metadata: enc.encode("vendor 0x10de"), items: [phase("precopy"), txn(text(300, 5)), phase("stopcopy"), txn(noise(40, 6)), txn(new Uint8Array(64))] }],
      options: { codec: "lz4", chunkSize: 256, key: KEY, encrypt: true, random: fixedRandom },
    },
    {
      name: "sealed-bound",
      note: "v1.1: AES-256-GCM and bound to CHALLENGE: keys from the key, the source's stream id and the destination's challenge",
      input: [{ id: 5, name: "secret", items: [phase("stopcopy"), txn(text(200, 7))] }],
      options: { codec: "raw", key: KEY, encrypt: true, random: fixedRandom, challenge: CHALLENGE },
      decode: { key: KEY, challenge: CHALLENGE },
    },
  ];
}
