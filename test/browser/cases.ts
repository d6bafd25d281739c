// The browser suite's cases, run twice with the same inputs: in Chromium (bundled
// with the library for the browser, see app.ts) and in Node (browser.test.ts).
// Each returns plain JSON — digests, lengths, error codes — and the test wants
// both runs to agree, so the browser build must produce Node's bytes. The file
// is bundled alone for the page, so it carries its own small helpers.
import {
  decodeStreamAsync,
  type EncoderOptions,
  encodeStreamAsync,
  isMigstreamError,
  MigrationDecoderStream,
  MigrationEncoderStream,
  ParallelDecoder,
  poolCoder,
  poolDecoder,
  StreamEncoder,
  WorkerPool,
} from "vfio-migstream";
import {
  allocBuffer,
  cdcBoundaries,
  crc32c,
  init,
  initZstd,
  lz4Compress,
  lz4Decompress,
  simdActive,
  xxh3_64,
  xxh64,
  zeroPageMap,
  zstdCompress,
  zstdDecompress,
} from "vfio-migstream/kernels";

const PAGE = 4096;
const STREAM_ID = new Uint8Array(16).fill(7);
const KEY = new Uint8Array(32).map((_, i) => i * 13 + 1);

/** Device-state-like bytes: zero, repetitive, text-like and random pages (xorshift32, deterministic). */
export function mixedBytes(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  for (let p = 0; p < size; p += PAGE) {
    const page = out.subarray(p, Math.min(p + PAGE, size));
    const kind = next() % 4;
    if (kind === 1) for (let i = 0; i < page.length; i++) page[i] = (i * 7) & 0x3f;
    else if (kind === 2) for (let i = 0; i < page.length; i++) page[i] = 97 + (next() % 8);
    else if (kind === 3) for (let i = 0; i < page.length; i++) page[i] = next() & 0xff;
  }
  return out;
}

const hex64 = (v: bigint) => v.toString(16).padStart(16, "0");
/** A 64-bit digest of `b` (xxh3), for comparing outputs without shipping them. */
const digest = (b: Uint8Array) => `${b.length}:${hex64(xxh3_64(b))}`;
const concat = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/** One device, stop-and-copy, 64 KiB transactions. */
function device(data: Uint8Array) {
  const items: { kind: "transaction"; data: Uint8Array }[] = [];
  for (let at = 0; at < data.length; at += 65536)
    items.push({ kind: "transaction", data: data.subarray(at, at + 65536) });
  return [
    { id: 3, name: "sim0", items: [{ kind: "phase" as const, phase: "stopcopy" as const, iteration: 0 }, ...items] },
  ];
}

async function transactionsOf(stream: Uint8Array, key?: Uint8Array) {
  const d = await decodeStreamAsync(stream, { key });
  return concat(d.devices[0].items.flatMap((it) => (it.kind === "transaction" ? [it.data] : [])));
}

/** Every kernel on the same inputs, including an odd-sized tail and zstd. */
export async function kernels() {
  await init();
  await initZstd();
  const data = mixedBytes((1 << 20) + 4093, 11);
  const buf = allocBuffer(data.length);
  buf.view().set(data);
  const lz4 = lz4Compress(data);
  const zstd = zstdCompress(data.subarray(0, 1 << 20), 3);
  return {
    simd: simdActive(),
    crc32c: crc32c(data) >>> 0,
    crc32cInPlace: crc32c(buf.view()) >>> 0,
    xxh64: hex64(xxh64(data)),
    xxh64Seeded: hex64(xxh64(data.subarray(5, 70_001), 0x9e3779b97f4a7c15n)),
    xxh3: hex64(xxh3_64(data)),
    xxh3Short: [0, 1, 3, 4, 8, 9, 16, 17, 128, 129, 240, 241].map((n) => hex64(xxh3_64(data.subarray(0, n)))),
    zeroPages: digest(zeroPageMap(data.subarray(0, 1 << 20))),
    cdc: Array.from(cdcBoundaries(data, { minSize: 4096, avgSize: 16384, maxSize: 65536 })).join(","),
    lz4: digest(lz4),
    lz4RoundTrip: same(lz4Decompress(lz4, data.length), data),
    zstd: digest(zstd),
    zstdRoundTrip: same(zstdDecompress(zstd, 1 << 20), data.subarray(0, 1 << 20)),
  };
}

/** One-shot encode and decode with each codec. */
export async function oneShot() {
  const data = mixedBytes(1 << 20, 21);
  const out: Record<string, string | boolean> = {};
  for (const [name, opts] of [
    ["raw", { codec: "raw" }],
    ["lz4", { codec: "lz4" }],
    ["zstd", { codec: "zstd", level: 3 }],
    ["zstd+dedup", { codec: "zstd", dedup: true }],
  ] as const) {
    const stream = await encodeStreamAsync(device(data), { ...opts, streamId: STREAM_ID });
    out[name] = digest(stream);
    out[`${name} round trip`] = same(await transactionsOf(stream), data);
  }
  return out;
}

/** Raw bytes → MigrationEncoderStream → a fetch Response body → MigrationDecoderStream → raw bytes. */
export async function webStreams() {
  const data = mixedBytes(3 << 19, 31);
  const source = new ReadableStream<Uint8Array>({
    start(c) {
      for (let at = 0; at < data.length; at += 100_000) c.enqueue(data.slice(at, at + 100_000));
      c.close();
    },
  });
  const encoded = source.pipeThrough(
    new MigrationEncoderStream({ codec: "lz4", streamId: STREAM_ID, transactionSize: 256 << 10 }),
  );
  const [wire, toDecode] = encoded.tee();
  const response = new Response(toDecode, { headers: { "content-type": "application/octet-stream" } });
  const body = response.body;
  if (!body) throw new Error("Response has no body");
  const decoded = body.pipeThrough(new MigrationDecoderStream());
  const [raw, stream] = await Promise.all([collect(decoded), collect(wire)]);
  return { stream: digest(stream), roundTrip: same(raw, data) };
}

async function collect(s: ReadableStream<Uint8Array>) {
  const parts: Uint8Array[] = [];
  for (const r = s.getReader(); ; ) {
    const { done, value } = await r.read();
    if (done) break;
    parts.push(value);
  }
  return concat(parts);
}

/** A keyed zstd stream restores; a flipped byte is refused with a typed error naming where. */
export async function keyed() {
  const data = mixedBytes(1 << 20, 41);
  const stream = await encodeStreamAsync(device(data), { codec: "zstd", key: KEY, streamId: STREAM_ID });
  const result: Record<string, unknown> = {
    stream: digest(stream),
    roundTrip: same(await transactionsOf(stream, KEY), data),
  };
  const wrongKey = await transactionsOf(
    stream,
    KEY.map((b) => b ^ 1),
  ).catch((e) => e);
  result.wrongKey = isMigstreamError(wrongKey) ? wrongKey.code : String(wrongKey);
  for (const at of [100, stream.length >> 1, stream.length - 10]) {
    const bad = stream.slice();
    bad[at] ^= 0x20;
    const e = await transactionsOf(bad, KEY).catch((err) => err);
    result[`flip@${at}`] = isMigstreamError(e)
      ? { code: e.code, offset: e.offset, frame: e.frame }
      : `no error: ${String(e)}`;
  }
  return result;
}

/** One device's stop-and-copy of `data` in 1 MiB transactions, coded as `options` say. */
async function encodeWith(data: Uint8Array, options: EncoderOptions) {
  const parts: Uint8Array[] = [];
  const enc = new StreamEncoder((b) => void parts.push(b.slice()), { ...options, streamId: STREAM_ID });
  const dev = enc.device(0, { name: "pool" });
  await dev.phase("stopcopy", 0);
  for (let at = 0; at < data.length; at += 1 << 20) await dev.transaction(data.slice(at, at + (1 << 20)));
  await dev.end();
  await enc.finish();
  return concat(parts);
}

/** The worker pool (module Workers in a browser, worker_threads in Node): the same bytes as inline coding. */
export async function pool() {
  const data = mixedBytes(4 << 20, 51);
  // Where a bundler put the worker script (Vite); else the default, next to the library.
  const workerUrl = (globalThis as { migstreamWorkerUrl?: string }).migstreamWorkerUrl;
  const pool = new WorkerPool({ threads: 2, workerUrl });
  try {
    await pool.start();
    const auto = { codec: "auto", maxTransaction: 1 << 20 } as const;
    const inline = await encodeWith(data, auto);
    const pooled = await encodeWith(data, { ...auto, coder: poolCoder(pool) });
    const zstdStream = await encodeWith(data, { codec: "zstd", level: 3, coder: poolCoder(pool) });
    const decoder = new ParallelDecoder({ decoder: poolDecoder(pool, { cheapInline: false }), assemble: true });
    const back: Uint8Array[] = [];
    for await (const ev of decoder.events([zstdStream]))
      if (ev.type === "transaction-end" && ev.data) back.push(ev.data);
    return {
      workers: pool.workers,
      inline: pool.inline,
      auto: digest(pooled),
      sameAsInline: same(pooled, inline),
      zstd: digest(zstdStream),
      decodedOnWorkers: same(concat(back), data),
    };
  } finally {
    await pool.close();
  }
}

export const cases = { kernels, oneShot, webStreams, keyed, pool };
export type CaseName = keyof typeof cases;
