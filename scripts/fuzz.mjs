// Long-running mutation fuzzer for the stream decoder (the cases of
// test/format/fuzz-core.mjs, against the built library in dist/).
// Usage: npm run fuzz -- [--seconds N] [--seed S]
// Stops at the first misbehaviour (a non-stream error, an accepted damaged
// stream, wrong output, a case slower than SLOW_CASE_MS, or heap growth past
// HEAP_LIMIT_BYTES) and prints the seed that reproduces it; exit code 1.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { fuzzCase, makeCorpus, prng } = await import(join(root, "test", "format", "fuzz-core.mjs"));
const lib = await import(join(root, "dist", "index.js"));

/** A case taking longer than this counts as a hang. */
const SLOW_CASE_MS = 2000;
/** Heap in use may not grow past this (the fuzz limits allow a few MiB per case). */
const HEAP_LIMIT_BYTES = 512 << 20;
/** Progress line every this many ms. */
const REPORT_MS = 10_000;

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? Number(process.argv[i + 1]) : dflt;
}

/** Mixed pages (the device page generator is not part of the library entry): zero, text-like, random. */
function makeImage(size, seed) {
  const out = new Uint8Array(size);
  const r = prng(seed);
  for (let off = 0; off < size; off += 4096) {
    const kind = r.int(3);
    const end = Math.min(size, off + 4096);
    for (let i = off; i < end; i++) out[i] = kind === 0 ? 0 : kind === 1 ? 97 + ((i * 7) % 13) : r.int(256);
  }
  return out;
}

const seconds = arg("seconds", 60);
const first = arg("seed", Date.now() % 1e9);
await lib.init();
const api = { ...lib };
const corpus = await makeCorpus(api, makeImage);
const codes = new Map();
let cases = 0;
let ok = 0;
const t0 = performance.now();
let lastReport = t0;
console.log(`fuzz: ${corpus.length} seed streams, ${seconds} s, first seed ${first}`);
for (let seed = first; performance.now() - t0 < seconds * 1000; seed++) {
  const rnd = prng(seed * 2654435761);
  const entry = corpus[seed % corpus.length];
  const c0 = performance.now();
  let r;
  try {
    r = await fuzzCase(api, corpus, entry, rnd);
  } catch (e) {
    console.error(`fuzz: FAILED at seed ${seed}: ${e.message}`);
    process.exit(1);
  }
  const ms = performance.now() - c0;
  if (ms > SLOW_CASE_MS) {
    console.error(`fuzz: FAILED at seed ${seed}: the case took ${ms.toFixed(0)} ms`);
    process.exit(1);
  }
  cases++;
  if (r.outcome === "ok") ok++;
  else codes.set(r.code, (codes.get(r.code) ?? 0) + 1);
  if (performance.now() - lastReport > REPORT_MS) {
    lastReport = performance.now();
    const heap = process.memoryUsage().heapUsed;
    if (heap > HEAP_LIMIT_BYTES) {
      console.error(`fuzz: FAILED at seed ${seed}: heap ${heap} bytes`);
      process.exit(1);
    }
    console.log(
      `fuzz: ${cases} cases, ${((lastReport - t0) / 1000).toFixed(0)} s, heap ${(heap / 2 ** 20).toFixed(0)} MiB`,
    );
  }
}
const mix = [...codes]
  .sort((a, b) => b[1] - a[1])
  .map(([c, n]) => `${c} ${n}`)
  .join(", ");
console.log(`fuzz: ${cases} cases in ${seconds} s, all typed errors or original data (${ok} decoded; ${mix})`);
