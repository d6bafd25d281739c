// Seeded mutation fuzzing of the decoder, shared by test/format/fuzz.test.ts
// (a few seconds in the suite) and scripts/fuzz.mjs (hours). Plain JS: the
// library API is passed in (src/ under vitest, dist/ in the script).
//
// Each case mutates a valid stream — bit flips, byte writes, inserted,
// deleted, duplicated or moved ranges, truncation, frames spliced in from
// another stream — and sometimes re-seals every frame (fresh checks and
// sequence numbers) so the damage reaches the structure rules and codecs.
// The decoder must then either fail with a typed stream error, or, when it
// succeeds, return exactly the original data: an unsealed mutation may only
// succeed if it changed nothing; a re-sealed one must still yield the
// original transaction bytes (only unchecked fields such as phases or
// metadata may differ, since the re-sealing forges the checks).

/** Error codes a decoder may raise on bad input. */
export const STREAM_CODES = [
  "BAD_MAGIC",
  "VERSION",
  "CHECKSUM",
  "TRUNCATED",
  "SEQUENCE",
  "LIMIT",
  "MAC",
  "CODEC",
  "FORMAT",
];

/** Decoder limits used while fuzzing: small, so over-declarations hit LIMIT instead of allocating. */
export const FUZZ_LIMITS = {
  maxFrameSize: 1 << 20,
  maxChunkSize: 1 << 20,
  maxTransactionSize: 4 << 20,
  maxMetadataSize: 64 << 10,
  maxWindow: 1 << 20,
  maxDevices: 64,
  maxDedupMemory: 8 << 20,
};

export function prng(seed) {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
  next.int = (n) => Math.floor(next() * n);
  return next;
}

const CRC_TABLE = new Uint32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  CRC_TABLE[n] = c >>> 0;
}
function crc32c(b, start, end, crc) {
  let c = ~crc;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

function concat(parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Frames of an unkeyed or keyed stream (no checks; stops at anything odd). */
export function frames(s) {
  const out = [];
  if (s.length < 64) return out;
  const dv = new DataView(s.buffer, s.byteOffset, s.byteLength);
  const tag = s[11] === 1 ? 16 : 0;
  let at = 64;
  while (at + 16 <= s.length) {
    const len = dv.getUint32(at + 8, true);
    const size = 24 + len + tag;
    if (at + size > s.length) break;
    out.push({
      type: s[at],
      flags: s[at + 1],
      device: dv.getUint16(at + 2, true),
      payload: s.slice(at + 16, at + 16 + len),
      start: at,
      end: at + size,
    });
    at += size;
  }
  return out;
}

/** Re-seals an unkeyed stream: header check, then every frame's seq, CRC, payload check; STREAM_END totals follow. */
export function reseal(api, header, list) {
  const h = header.slice();
  const hdv = new DataView(h.buffer);
  hdv.setBigUint64(56, api.xxh3_64(h.subarray(0, 56)), true);
  const seed = hdv.getBigUint64(56, true);
  const crc = Number(seed & 0xffffffffn);
  const parts = [h];
  const checks = [];
  list.forEach((f, i) => {
    let payload = f.payload;
    if (f.type === 6 && payload.length === 64) {
      payload = payload.slice();
      const pdv = new DataView(payload.buffer);
      pdv.setBigUint64(0, BigInt(i), true);
      const all = new Uint8Array(checks.length * 8);
      const adv = new DataView(all.buffer);
      checks.forEach((c, j) => {
        adv.setBigUint64(j * 8, c, true);
      });
      pdv.setBigUint64(48, api.xxh3_64(all), true);
    }
    const b = new Uint8Array(24 + payload.length);
    const dv = new DataView(b.buffer);
    b[0] = f.type;
    b[1] = f.flags;
    dv.setUint16(2, f.device, true);
    dv.setUint32(4, i, true);
    dv.setUint32(8, payload.length, true);
    const hcrc = crc32c(b, 0, 12, crc);
    dv.setUint32(12, hcrc, true);
    b.set(payload, 16);
    const check = api.xxh3_64(payload, seed ^ (BigInt(payload.length) | (BigInt(hcrc) << 32n)));
    dv.setBigUint64(16 + payload.length, check, true);
    checks.push(check);
    parts.push(b);
  });
  return concat(parts);
}

function range(rnd, n) {
  const a = rnd.int(n + 1);
  const len = Math.min(n - a, 1 + rnd.int(rnd() < 0.7 ? 16 : 4096));
  return [a, a + len];
}

/** One byte-level mutation of `s`. */
function mutateBytes(s, rnd, corpus) {
  const b = s.slice();
  switch (rnd.int(9)) {
    case 0: {
      for (let k = 1 + rnd.int(4); k > 0; k--) b[rnd.int(b.length)] ^= 1 << rnd.int(8);
      return b;
    }
    case 1: {
      for (let k = 1 + rnd.int(8); k > 0; k--) b[rnd.int(b.length)] = [0, 0xff, 0x7f, 0x80, 1][rnd.int(5)];
      return b;
    }
    case 2: {
      const at = rnd.int(b.length + 1);
      const ins = new Uint8Array(1 + rnd.int(64)).map(() => rnd.int(256));
      return concat([b.subarray(0, at), ins, b.subarray(at)]);
    }
    case 3: {
      const [x, y] = range(rnd, b.length);
      return concat([b.subarray(0, x), b.subarray(y)]);
    }
    case 4: {
      const [x, y] = range(rnd, b.length);
      return concat([b.subarray(0, y), b.subarray(x, y), b.subarray(y)]);
    }
    case 5: {
      const [x, y] = range(rnd, b.length);
      const at = rnd.int(b.length + 1);
      const cut = concat([b.subarray(0, x), b.subarray(y)]);
      const p = Math.min(at, cut.length);
      return concat([cut.subarray(0, p), b.subarray(x, y), cut.subarray(p)]);
    }
    case 6:
      return b.subarray(0, rnd.int(b.length));
    case 7: {
      // A frame of another stream spliced in at a frame boundary.
      const other = corpus[rnd.int(corpus.length)].bytes;
      const fo = frames(other);
      const fs = frames(b);
      if (fo.length === 0 || fs.length === 0) return b;
      const f = fo[rnd.int(fo.length)];
      const at = fs[rnd.int(fs.length)].start;
      return concat([b.subarray(0, at), other.subarray(f.start, f.end), b.subarray(at)]);
    }
    default: {
      // A 32-bit little-endian field set to an edge value.
      if (b.length < 4) return b;
      const at = rnd.int(b.length - 3);
      const v = [0, 1, 0xffffffff, 0x7fffffff, 0x80000000, 64, 65536][rnd.int(7)];
      new DataView(b.buffer).setUint32(at, v >>> 0, true);
      return b;
    }
  }
}

/** One structural mutation, then re-sealed (unkeyed streams only). */
function mutateSealed(api, s, rnd, corpus) {
  const header = s.slice(0, 64);
  let list = frames(s).map((f) => ({ ...f, payload: f.payload.slice() }));
  if (list.length === 0) return s;
  const i = rnd.int(list.length);
  switch (rnd.int(7)) {
    case 0:
    case 1: {
      const p = list[i].payload;
      if (p.length > 0) for (let k = 1 + rnd.int(3); k > 0; k--) p[rnd.int(p.length)] ^= 1 << rnd.int(8);
      break;
    }
    case 2: {
      const p = list[i].payload;
      if (p.length >= 4)
        new DataView(p.buffer).setUint32(
          rnd.int(p.length - 3),
          [0, 1, 0xffffffff, 255, 256, 4096][rnd.int(6)] >>> 0,
          true,
        );
      break;
    }
    case 3:
      list.splice(i, 1);
      break;
    case 4:
      list.splice(i, 0, list[rnd.int(list.length)]);
      break;
    case 5: {
      const j = rnd.int(list.length);
      [list[i], list[j]] = [list[j], list[i]];
      break;
    }
    default: {
      const fo = frames(corpus[rnd.int(corpus.length)].bytes);
      if (fo.length > 0) list.splice(i, 0, fo[rnd.int(fo.length)]);
      break;
    }
  }
  if (rnd() < 0.2) {
    // Header edits too (limits, window, versions, flags), still with a valid check.
    const hv = new DataView(header.buffer);
    const at = [8, 9, 11, 12, 32, 36, 40, 44, 48, 52][rnd.int(10)];
    if (at === 8 || at === 9 || at === 11) header[at] = rnd.int(3);
    else if (at === 52) hv.setUint16(52, rnd.int(4), true);
    else hv.setUint32(at, [0, 1, 64, 256, 4096, 1 << 20, 0xffffffff][rnd.int(7)] >>> 0, true);
  }
  list = list.map((f) => (rnd() < 0.02 ? { ...f, type: rnd.int(256) } : f));
  return reseal(api, header, list);
}

function transactionBytes(decoded) {
  const m = new Map();
  for (const d of decoded.devices)
    m.set(d.id, concat(d.items.filter((x) => x.kind === "transaction").map((x) => x.data)));
  return m;
}

function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Decodes `bytes` in random pieces through a StreamDecoder; returns per-device transaction bytes. */
async function decodePieces(api, bytes, rnd, options, verifyOnly) {
  const dec = new api.StreamDecoder({ ...options, verifyOnly });
  const parts = new Map();
  let at = 0;
  while (at < bytes.length) {
    const n = 1 + rnd.int(Math.min(bytes.length - at, 1 + rnd.int(5000)));
    for await (const ev of dec.writeAsync(bytes.subarray(at, at + n))) {
      if (ev.type === "chunk" && ev.data) parts.set(ev.device, [...(parts.get(ev.device) ?? []), ev.data.slice()]);
    }
    at += n;
  }
  dec.finish();
  return new Map([...parts].map(([k, v]) => [k, concat(v)]));
}

/**
 * Runs one fuzz case on `entry` (from the corpus). Returns { outcome, code };
 * throws an Error describing the problem when the decoder misbehaves.
 */
export async function fuzzCase(api, corpus, entry, rnd) {
  const keyed = entry.key !== undefined;
  const sealed = !keyed && rnd() < 0.4;
  let bytes = entry.bytes;
  for (let k = 1 + (rnd() < 0.2 ? rnd.int(3) : 0); k > 0; k--)
    bytes = sealed ? mutateSealed(api, bytes, rnd, corpus) : mutateBytes(bytes, rnd, corpus);
  const options = { ...FUZZ_LIMITS, ...(keyed ? { key: entry.key } : {}) };
  const mode = rnd.int(4); // 0: one-shot, 1: pieces, 2: verify-only, 3: one-shot async
  let got;
  try {
    if (mode === 0 && !keyed) got = transactionBytes(api.decodeStream(bytes, options));
    else if (mode === 2) {
      if (keyed) await decodePieces(api, bytes, rnd, options, true);
      else api.verifyStream(bytes, options);
      got = null;
    } else if (mode === 1) got = await decodePieces(api, bytes, rnd, options, false);
    else got = transactionBytes(await api.decodeStreamAsync(bytes, options));
  } catch (e) {
    if (!api.isMigstreamError(e) || !STREAM_CODES.includes(e.code)) {
      const what = api.isMigstreamError(e) ? `${e.code}: ${e.message}` : String(e?.stack ?? e);
      throw new Error(`${entry.name}: the decoder failed with a non-stream error (${what})`);
    }
    return { outcome: "error", code: e.code };
  }
  // Success: the data must be the original.
  if (!sealed && !sameBytes(bytes, entry.bytes)) {
    throw new Error(`${entry.name}: a damaged stream (${bytes.length} bytes) was accepted`);
  }
  if (got !== null) {
    for (const [id, want] of entry.want) {
      const have = got.get(id) ?? new Uint8Array(0);
      if (!sameBytes(have, want)) throw new Error(`${entry.name}: device ${id} decoded to different bytes`);
    }
    for (const id of got.keys())
      if (!entry.want.has(id)) throw new Error(`${entry.name}: an extra device ${id} appeared`);
  }
  return { outcome: "ok", code: null };
}

/** The corpus: small and medium streams of every feature, with their expected bytes. */
export async function makeCorpus(api, makeImage) {
  const key = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
  const sid = Uint8Array.from({ length: 16 }, (_, i) => i);
  const text = new TextEncoder().encode("pre-copy dirty pages; stop-and-copy residue; ".repeat(40));
  const img = makeImage(300_000, 12);
  const specs = [
    ["tiny-raw", [[1, [text.subarray(0, 100), new Uint8Array(50)]]], { codec: "raw", chunkSize: 64 }],
    ["lz4", [[0, [text, img.subarray(0, 40_000), new Uint8Array(0)]]], { codec: "lz4", chunkSize: 4096 }],
    ["zstd", [[0, [img.subarray(0, 60_000), text]]], { codec: "zstd", level: 3, chunkSize: 8192 }],
    ["auto", [[0, [img.subarray(100_000, 200_000)]]], { codec: "auto", chunkSize: 16384 }],
    [
      "dedup",
      [[5, [img.subarray(0, 30_000), img.subarray(0, 30_000), img.subarray(77, 30_000)]]],
      { codec: "lz4", dedup: true, chunkSize: 4096, dedupWindow: 65536 },
    ],
    [
      "multi",
      [
        [1, [text.subarray(0, 300)]],
        [2, [img.subarray(0, 5000), text.subarray(5)]],
        [65535, []],
      ],
      { codec: "lz4", chunkSize: 1024 },
    ],
    ["mac", [[0, [text.subarray(0, 500), img.subarray(0, 9000)]]], { codec: "lz4", chunkSize: 2048, key }],
  ];
  const corpus = [];
  for (const [name, devs, opts] of specs) {
    const input = devs.map(([id, txns]) => ({
      id,
      name: `dev${id}`,
      metadata: Uint8Array.of(id & 0xff, 1, 2),
      items: [
        { kind: "phase", phase: "precopy", iteration: 0 },
        ...txns.map((data) => ({ kind: "transaction", data })),
        { kind: "phase", phase: "stopcopy", iteration: 0 },
      ],
    }));
    const bytes = await api.encodeStreamAsync(input, { ...opts, streamId: sid });
    const want = new Map(
      input.map((d) => [d.id, concat(d.items.filter((x) => x.kind === "transaction").map((x) => x.data))]),
    );
    corpus.push({ name, bytes, want, key: opts.key });
  }
  return corpus;
}
