// Parallel chunk coding: encode a mixed-page image with LZ4 through the worker
// pool at 1 thread (inline) and N threads; report MB/s and the speed-up.
// The image lives in a SharedArrayBuffer, so chunk views reach the workers with
// no copy and can be encoded again on every repetition.
// Usage: node bench/parallel.mjs [MiB=256] [chunkKiB=256] [codec=lz4]
import { availableCores, WorkerPool } from "../dist/pool.js";
import { median, printTable, rng, summary } from "./lib.mjs";

const MIB = Number(process.argv[2] ?? 256);
const CHUNK = Number(process.argv[3] ?? 256) * 1024;
const CODEC = process.argv[4] ?? "lz4";
const REPS = 5;
const PAGE = 4096;
const SIZE = MIB * 1024 * 1024;

/** Mixed device-state pages: 40% zero, 20% code-like, 25% heap-like, 15% random. */
function fillImage(out) {
  const next = rng(12345);
  const words = new Uint32Array(out.buffer, out.byteOffset, out.byteLength >>> 2);
  const vocab = Array.from({ length: 24 }, () => Array.from({ length: 3 + (next() % 5) }, () => next() & 0xff));
  for (let off = 0; off < out.length; off += PAGE) {
    const u = next() % 100;
    const w0 = off >>> 2;
    if (u < 40) continue; // zero (SharedArrayBuffer starts zeroed)
    if (u < 60) {
      for (let i = off; i < off + PAGE; )
        for (const b of vocab[next() % vocab.length]) if (i < off + PAGE) out[i++] = b;
    } else if (u < 85) {
      for (let w = w0; w < w0 + PAGE / 4; w += 2) {
        const r = next();
        if ((r & 3) <= 1) (words[w] = 0x7f000000 + (r & 0xfff8)), (words[w + 1] = 0x5555);
        else if ((r & 3) === 2) words[w] = r >>> 24;
      }
    } else {
      for (let w = w0; w < w0 + PAGE / 4; w++) words[w] = next();
    }
  }
}

const image = new Uint8Array(new SharedArrayBuffer(SIZE));
fillImage(image);
const chunks = [];
for (let off = 0; off < SIZE; off += CHUNK) chunks.push(image.subarray(off, Math.min(off + CHUNK, SIZE)));

async function encodeAll(pool) {
  let coded = 0;
  let hashes = 0n;
  for await (const c of pool.encodeOrdered(chunks, { codec: CODEC })) {
    coded += c.payload.length;
    hashes ^= c.hash;
  }
  return { coded, hashes };
}

const cores = availableCores();
const counts = [1, 2, ...(cores > 2 ? [cores] : [])];
const pools = counts.map((threads) => new WorkerPool({ threads }));
await Promise.all(pools.map((p) => p.start()));
// Same output from every pool (also the warm-up).
const reference = await encodeAll(pools[0]);
for (const p of pools) {
  const c = await encodeAll(p);
  if (c.coded !== reference.coded || c.hashes !== reference.hashes)
    throw new Error(`threads ${p.threads}: output differs`);
}
// Interleaved repetitions, so that load from other processes hits every pool alike.
const times = pools.map(() => []);
for (let rep = 0; rep < REPS; rep++) {
  for (let i = 0; i < pools.length; i++) {
    const t0 = performance.now();
    await encodeAll(pools[i]);
    times[i].push(performance.now() - t0);
  }
}
await Promise.all(pools.map((p) => p.close()));
const rows = counts.map((threads, i) => {
  const ms = median(times[i]);
  return { threads, "MB/s": SIZE / 1e6 / (ms / 1000), ms };
});
for (const r of rows) r.ratio = `${(r["MB/s"] / rows[0]["MB/s"]).toFixed(2)}×`;
summary({
  figure: `pool ${CODEC} encode, ${rows.at(-1).threads} threads`,
  ours: rows.at(-1)["MB/s"],
  peer: "the same pool, 1 thread",
  theirs: rows[0]["MB/s"],
  unit: "MB/s",
});
printTable(
  `${CODEC} encode + xxh3, ${MIB} MiB mixed pages, ${CHUNK / 1024} KiB chunks, ${cores} cores, median of ${REPS} (coded ${((reference.coded / SIZE) * 100).toFixed(1)}%)`,
  rows,
);
