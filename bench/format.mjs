// npm run bench:format — the stream format against the bare codecs, in one run.
// Data: src/device/pages.ts makeImage (zero, code-like, heap-like and random
// pages), cut into 1 MiB transactions of one device. For LZ4 and zstd 1/3/9:
// encode and decode MB/s of the format and of the bare codec on the same
// 256 KiB chunks (our LZ4 and zstd wasm kernels), the format's time as a ratio
// of the bare codec's, the size ratio and the size against QEMU's layout
// (raw + 24 bytes per buffer). Then verify-only GB/s, per page kind, LZ4 on
// 70%-zero data, and the dedup scenario (256 MiB sent in pre-copy, then
// again in stop-and-copy with 10% changed), and what sealing frames with
// AES-256-GCM (--encrypt) costs against authenticating them with
// HMAC-SHA-256 (--key-file) and against no key. Medians of repeated runs.
// Usage: node bench/format.mjs [MiB=128]
import { StreamDecoder, StreamEncoder, verifyStream } from "../dist/index.js";
import {
  allocBuffer,
  lz4CompressBound,
  lz4CompressInto,
  lz4DecompressInto,
  simdActive,
  zstdCompress,
  zstdDecompress,
} from "../dist/kernels.js";
import { loadPages, median, printTable, summary } from "./lib.mjs";

const MIB = 1 << 20;
const SIZE = Number(process.argv[2] ?? 128) * MIB;
const TXN = MIB; // one data-section buffer
const CHUNK = 256 << 10; // the format's default chunk
const QEMU_BUFFER_OVERHEAD = 24; // QEMU-layout baseline: raw data plus 24 bytes of markers per buffer
const STREAM_ID = new Uint8Array(16);
const CODECS = [
  { name: "lz4", opts: { codec: "lz4" }, reps: 5 },
  { name: "zstd 1", opts: { codec: "zstd", level: 1 }, reps: 3 },
  { name: "zstd 3", opts: { codec: "zstd", level: 3 }, reps: 3 },
  { name: "zstd 9", opts: { codec: "zstd", level: 9 }, reps: 2 },
];

async function timeAsync(fn, reps, warmup = 1) {
  for (let i = 0; i < warmup; i++) await fn();
  const t = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    t.push(performance.now() - t0);
  }
  return median(t);
}

const mbps = (bytes, ms) => bytes / 1e6 / (ms / 1000);
const gbps = (bytes, ms) => bytes / 1e9 / (ms / 1000);

/**
 * Encodes `data` as one device's stop-and-copy transactions; returns the
 * stream, or with `count` only its size (output blocks are then reused, as
 * for a sink that writes them out: `reuseOutput`).
 */
async function encode(data, opts, count = false, fresh = false) {
  const parts = [];
  let n = 0;
  const enc = new StreamEncoder(
    (b) => {
      n += b.length;
      if (!count) parts.push(b);
    },
    { ...opts, streamId: STREAM_ID, maxDevices: 1, maxTransaction: TXN, reuseOutput: count && !fresh },
  );
  const d = enc.device(0, { name: "bench" });
  await d.phase("stopcopy", 0);
  for (let at = 0; at < data.length; at += TXN) await d.transaction(data.subarray(at, at + TXN));
  await d.end();
  await enc.finish();
  return count ? n : Buffer.concat(parts);
}

/** Streamed decode: chunk events, their data in one reused buffer (or in new arrays with `fresh`). */
function decode(stream, fresh = false) {
  const dec = new StreamDecoder({ reuseOutput: !fresh });
  let raw = 0;
  for (const ev of dec.write(stream)) if (ev.type === "chunk") raw += ev.rawLength;
  dec.finish();
  return raw;
}

function chunksOf(data) {
  const out = [];
  for (let t = 0; t < data.length; t += TXN) {
    const end = Math.min(data.length, t + TXN);
    for (let at = t; at < end; at += CHUNK) out.push(data.subarray(at, Math.min(end, at + CHUNK)));
  }
  return out;
}

/** The bare codec on the same chunks: encode and decode closures, and the coded chunks. */
function bareCodec(name, level, chunks) {
  if (name === "lz4") {
    const dst = allocBuffer(lz4CompressBound(CHUNK));
    const out = allocBuffer(CHUNK);
    const coded = chunks.map((c) => dst.view(0, lz4CompressInto(c, dst.view(), 1)).slice());
    return {
      coded,
      encode: () => {
        for (const c of chunks) lz4CompressInto(c, dst.view(), 1);
      },
      decode: () => {
        for (const c of coded) lz4DecompressInto(c, out.view());
      },
    };
  }
  // The same engine the format uses, output into reused buffers (as the format's coder does).
  const dst = new Uint8Array(CHUNK * 2);
  const out = new Uint8Array(CHUNK);
  const coded = chunks.map((c) => zstdCompress(c, level));
  return {
    coded,
    encode: () => {
      for (const c of chunks) zstdCompress(c, level, dst);
    },
    decode: () => {
      for (let i = 0; i < coded.length; i++) zstdDecompress(coded[i], chunks[i].length, out);
    },
  };
}

const t0 = performance.now();
const pages = await loadPages();
console.log(
  `# stream format benchmark (node ${process.version}, simd ${simdActive()}, ${SIZE / MIB} MiB, ${TXN / MIB} MiB transactions, ${CHUNK >> 10} KiB chunks)`,
);
const mixed = pages.makeImage(SIZE, 1);
const qemu = SIZE + QEMU_BUFFER_OVERHEAD * Math.ceil(SIZE / TXN);
const chunks = chunksOf(mixed);

// ---- format vs bare codec ----
const rows = [];
const streams = {};
for (const c of CODECS) {
  const level = c.opts.level ?? 1;
  const stream = await encode(mixed, c.opts);
  streams[c.name] = stream;
  if (decode(stream) !== SIZE) throw new Error(`${c.name}: decode lost bytes`);
  const encMs = await timeAsync(() => encode(mixed, c.opts, true), c.reps);
  const freshMs = c.name === "lz4" ? await timeAsync(() => encode(mixed, c.opts, true, true), c.reps) : null;
  const decMs = await timeAsync(() => decode(stream), c.reps);
  const freshDecMs = c.name === "lz4" ? await timeAsync(() => decode(stream, true), c.reps) : null;
  const bare = bareCodec(c.opts.codec, level, chunks);
  const bareEncMs = await timeAsync(bare.encode, c.reps);
  const bareDecMs = await timeAsync(bare.decode, c.reps);
  const bareSize = bare.coded.reduce((n, x) => n + x.length, 0);
  rows.push({
    codec: c.name,
    ratio: stream.length / SIZE,
    "bare ratio": bareSize / SIZE,
    "vs QEMU size": stream.length / qemu,
    "enc MB/s": mbps(SIZE, encMs),
    "bare enc MB/s": mbps(SIZE, bareEncMs),
    "enc time / bare": encMs / bareEncMs,
    "enc MB/s, new output arrays": freshMs === null ? "" : mbps(SIZE, freshMs),
    "dec MB/s": mbps(SIZE, decMs),
    "bare dec MB/s": mbps(SIZE, bareDecMs),
    "dec time / bare": decMs / bareDecMs,
    "dec MB/s, new chunk arrays": freshDecMs === null ? "" : mbps(SIZE, freshDecMs),
  });
}
for (const r of rows.filter((r) => r.codec === "lz4" || r.codec === "zstd 1")) {
  summary({
    figure: `stream encode, ${r.codec}`,
    ours: r["enc MB/s"],
    peer: `bare ${r.codec} on the same chunks`,
    theirs: r["bare enc MB/s"],
    unit: "MB/s",
  });
  summary({
    figure: `stream decode, ${r.codec}`,
    ours: r["dec MB/s"],
    peer: `bare ${r.codec} on the same chunks`,
    theirs: r["bare dec MB/s"],
    unit: "MB/s",
  });
}
const lz4Row = rows.find((r) => r.codec === "lz4");
summary({
  figure: "stream size, lz4",
  ours: (lz4Row.ratio * SIZE) / MIB,
  peer: "QEMU raw layout",
  theirs: qemu / MIB,
  unit: "MiB",
  better: "lower",
});
printTable(
  `format vs bare codec, mixed image (40% zero, 20% code, 25% heap, 15% random pages); QEMU layout = raw + ${QEMU_BUFFER_OVERHEAD} B per 1 MiB buffer`,
  rows,
);

// ---- verify-only ----
const vrows = [];
for (const name of ["lz4", "zstd 3"]) {
  const s = streams[name];
  const ms = await timeAsync(() => verifyStream(s), 5);
  vrows.push({
    stream: name,
    "stream MiB": s.length / MIB,
    "stream GB/s": gbps(s.length, ms),
    "raw GB/s": gbps(SIZE, ms),
  });
}
printTable("verify-only (every check, no decompression)", vrows);

// ---- per page kind ----
const KIND_SIZE = 32 * MIB;
const krows = [];
for (const kind of pages.PAGE_KINDS) {
  const img = pages.makeImage(KIND_SIZE, 2, { zero: 0, code: 0, heap: 0, random: 0, [kind]: 1 });
  const row = { kind };
  for (const c of CODECS) {
    const ms = await timeAsync(() => encode(img, c.opts, true), 1, 0);
    const size = await encode(img, c.opts, true);
    row[`${c.name} ratio`] = size / KIND_SIZE;
    row[`${c.name} MB/s`] = mbps(KIND_SIZE, ms);
  }
  krows.push(row);
}
printTable(`per page kind (${KIND_SIZE / MIB} MiB each): size ratio and encode MB/s`, krows);

// ---- LZ4 on 70%-zero data ----
const sparse = pages.makeImage(SIZE, 3, { zero: 0.7, code: 0.1, heap: 0.1, random: 0.1 });
const sparseMs = await timeAsync(() => encode(sparse, { codec: "lz4" }, true), 5);
const sparseChunks = chunksOf(sparse);
const sparseBare = bareCodec("lz4", 1, sparseChunks);
const sparseBareMs = await timeAsync(sparseBare.encode, 5);
printTable("LZ4 encode of 70%-zero data, one core", [
  {
    data: `${SIZE / MIB} MiB, 70% zero pages`,
    "format GB/s": gbps(SIZE, sparseMs),
    "bare LZ4 GB/s": gbps(SIZE, sparseBareMs),
    ratio: (await encode(sparse, { codec: "lz4" }, true)) / SIZE,
  },
]);

// ---- dedup scenario ----
const DEDUP_SIZE = 256 * MIB;
/** Pre-copy of `img`, then `change(img)`, then stop-and-copy of it; returns both phases' stream bytes. */
async function scenario(img, change, opts) {
  let n = 0;
  const enc = new StreamEncoder((b) => void (n += b.length), {
    ...opts,
    streamId: STREAM_ID,
    maxDevices: 1,
    maxTransaction: TXN,
    reuseOutput: true,
  });
  const d = enc.device(0);
  await d.phase("precopy", 0);
  for (let at = 0; at < img.length; at += TXN) await d.transaction(img.subarray(at, at + TXN));
  const pre = n;
  change(img);
  await d.phase("stopcopy", 0);
  for (let at = 0; at < img.length; at += TXN) await d.transaction(img.subarray(at, at + TXN));
  await d.end();
  await enc.finish();
  return { pre, stop: n - pre, total: n };
}
/** Rewrites 10% of the pages, in runs of `run` pages at random places (deterministic). */
function dirty(run) {
  return (img) => {
    const nPages = img.length / pages.PAGE_SIZE;
    let x = 987654321;
    const rand = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0), x / 2 ** 32);
    for (let changed = 0; changed < nPages / 10; changed += run) {
      const p = Math.floor(rand() * (nPages - run));
      for (let k = 0; k < run; k++)
        pages.fillPage(img.subarray((p + k) * pages.PAGE_SIZE, (p + k + 1) * pages.PAGE_SIZE), "heap", p + k + 77);
    }
  };
}
const drows = [];
for (const [label, run, chunkSize] of [
  ["10% changed in 64 KiB runs, 64 KiB chunks", 16, 64 << 10],
  ["10% changed, scattered 4 KiB pages, 64 KiB chunks", 1, 64 << 10],
  ["10% changed, scattered 4 KiB pages, 16 KiB chunks", 1, 16 << 10],
]) {
  const off = await scenario(pages.makeImage(DEDUP_SIZE, 4), dirty(run), { codec: "lz4" });
  const t1 = performance.now();
  const on = await scenario(pages.makeImage(DEDUP_SIZE, 4), dirty(run), {
    codec: "lz4",
    dedup: true,
    chunkSize,
    dedupWindow: 512 * MIB,
  });
  const ms = performance.now() - t1;
  drows.push({
    scenario: label,
    "no dedup MiB": off.total / MIB,
    "dedup MiB": on.total / MIB,
    "total ratio": on.total / off.total,
    "stop-copy ratio": on.stop / off.stop,
    "dedup enc MB/s": mbps(2 * DEDUP_SIZE, ms),
  });
}
const scattered = drows[1];
summary({
  figure: "bytes sent, dedup, 10% of pages changed (scattered)",
  ours: scattered["dedup MiB"],
  peer: "the same without dedup",
  theirs: scattered["no dedup MiB"],
  unit: "MiB",
  better: "lower",
});
printTable(
  `dedup: ${DEDUP_SIZE / MIB} MiB sent in pre-copy, then again in stop-and-copy (LZ4; without dedup 256 KiB chunks; with dedup content-defined chunks, 512 MiB window)`,
  drows,
);

// ---- keyed streams: what sealing (AES-256-GCM) costs over authenticating (HMAC-SHA-256) ----
const KEY = new Uint8Array(32).fill(0x5c);
const KEYED_SIZE = Math.min(SIZE, 64 * MIB);
const keyedData = mixed.subarray(0, KEYED_SIZE);

/** Encodes as encode() does, but lets an encrypting encoder draw its own stream id (it refuses a given one). */
async function encodeKeyed(data, opts) {
  const parts = [];
  const enc = new StreamEncoder((b) => void parts.push(b), { ...opts, maxDevices: 1, maxTransaction: TXN });
  const d = enc.device(0, { name: "bench" });
  await d.phase("stopcopy", 0);
  for (let at = 0; at < data.length; at += TXN) await d.transaction(data.subarray(at, at + TXN));
  await d.end();
  await enc.finish();
  return Buffer.concat(parts);
}

async function decodeKeyed(stream, key) {
  const dec = new StreamDecoder({ key, reuseOutput: true });
  let raw = 0;
  for (let at = 0; at < stream.length; at += 4 * MIB)
    for await (const ev of dec.writeAsync(stream.subarray(at, at + 4 * MIB)))
      if (ev.type === "chunk") raw += ev.rawLength;
  dec.finish();
  return raw;
}

const krows2 = [];
for (const codec of ["raw", "lz4"]) {
  const modes = [
    { mode: "no key", opts: { codec } },
    { mode: "HMAC-SHA-256 (--key-file)", opts: { codec, key: KEY } },
    { mode: "AES-256-GCM (--encrypt)", opts: { codec, key: KEY, encrypt: true } },
  ];
  const times = {};
  for (const m of modes) {
    const stream = await encodeKeyed(keyedData, m.opts);
    const encMs = await timeAsync(() => encodeKeyed(keyedData, m.opts), 3);
    const decMs = await timeAsync(() => decodeKeyed(stream, m.opts.key), 3);
    times[m.mode] = { encMs, decMs };
    krows2.push({
      codec,
      stream: m.mode,
      "enc MB/s": mbps(KEYED_SIZE, encMs),
      "dec MB/s": mbps(KEYED_SIZE, decMs),
      "stream MiB": stream.length / MIB,
    });
  }
  const hmac = times["HMAC-SHA-256 (--key-file)"];
  const aes = times["AES-256-GCM (--encrypt)"];
  krows2.push({
    codec,
    stream: "sealed time / HMAC time",
    "enc MB/s": aes.encMs / hmac.encMs,
    "dec MB/s": aes.decMs / hmac.decMs,
    "stream MiB": "",
  });
  if (codec === "lz4") {
    summary({
      figure: "sealed (--encrypt) encode, lz4",
      ours: mbps(KEYED_SIZE, aes.encMs),
      peer: "the HMAC-keyed stream",
      theirs: mbps(KEYED_SIZE, hmac.encMs),
      unit: "MB/s",
    });
    summary({
      figure: "sealed (--encrypt) decode, lz4",
      ours: mbps(KEYED_SIZE, aes.decMs),
      peer: "the HMAC-keyed stream",
      theirs: mbps(KEYED_SIZE, hmac.decMs),
      unit: "MB/s",
    });
  }
}
// The peers: WebCrypto's own AES-256-GCM and HMAC-SHA-256 on 256 KiB blocks, 32 at a time (as the format batches them).
{
  const subtle = globalThis.crypto.subtle;
  const aes = await subtle.importKey("raw", KEY, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
  const hmac = await subtle.importKey("raw", KEY, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const blocks = chunksOf(keyedData);
  const iv = new Uint8Array(12);
  const run = async (f) => {
    for (let i = 0; i < blocks.length; i += 32) await Promise.all(blocks.slice(i, i + 32).map(f));
  };
  const sealed = await Promise.all(blocks.map((b) => subtle.encrypt({ name: "AES-GCM", iv }, aes, b)));
  const encMs = await timeAsync(() => run((b) => subtle.encrypt({ name: "AES-GCM", iv }, aes, b)), 3);
  const decMs = await timeAsync(() => run((_, i) => subtle.decrypt({ name: "AES-GCM", iv }, aes, sealed[i])), 3);
  const macMs = await timeAsync(() => run((b) => subtle.sign("HMAC", hmac, b)), 3);
  krows2.push({
    codec: "peer",
    stream: "WebCrypto AES-256-GCM alone",
    "enc MB/s": mbps(KEYED_SIZE, encMs),
    "dec MB/s": mbps(KEYED_SIZE, decMs),
    "stream MiB": "",
  });
  krows2.push({
    codec: "peer",
    stream: "WebCrypto HMAC-SHA-256 alone",
    "enc MB/s": mbps(KEYED_SIZE, macMs),
    "dec MB/s": mbps(KEYED_SIZE, macMs),
    "stream MiB": "",
  });
}
printTable(
  `keyed streams, ${KEYED_SIZE / MIB} MiB of the mixed image, 256 KiB chunks, one thread (WebCrypto: ${typeof Deno === "undefined" ? "Node" : "Deno"})`,
  krows2,
);
console.log(`\n(bench ran ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
