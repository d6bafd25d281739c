// Shared benchmark helpers: warm-up, repeated timing, medians, ratio tables,
// and the generated page corpus. Benchmarks compare ratios against peers
// measured in the same process run.
import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** Median of an array of numbers. */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Times `fn` (which processes `bytes` bytes per call): `warmup` untimed calls,
 * then `reps` timed calls. Returns { gbps, ms } from the median call.
 */
export function measure(fn, bytes, { warmup = 2, reps = 7 } = {}) {
  for (let i = 0; i < warmup; i++) fn();
  const times = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  const ms = median(times);
  return { ms, gbps: bytes / (ms / 1000) / 1e9 };
}

/** Async variant of `measure`. */
export async function measureAsync(fn, bytes, { warmup = 1, reps = 5 } = {}) {
  for (let i = 0; i < warmup; i++) await fn();
  const times = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  const ms = median(times);
  return { ms, gbps: bytes / (ms / 1000) / 1e9 };
}

/** Prints rows (objects with the same keys) as an aligned Markdown table. */
export function printTable(title, rows) {
  if (rows.length === 0) return;
  const keys = Object.keys(rows[0]);
  const cells = [keys, ...rows.map((r) => keys.map((k) => fmt(r[k])))];
  const w = keys.map((_, i) => Math.max(...cells.map((c) => String(c[i]).length)));
  const line = (c) => `| ${c.map((x, i) => String(x).padEnd(w[i])).join(" | ")} |`;
  console.log(`\n### ${title}\n`);
  console.log(line(keys));
  console.log(`| ${w.map((n) => "-".repeat(n)).join(" | ")} |`);
  for (const c of cells.slice(1)) console.log(line(c));
}

function fmt(v) {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 2 : 1);
  return v ?? "";
}

/** Deterministic PRNG (xorshift32) for generated data. */
export function rng(seed = 1) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/**
 * src/device/pages.ts (makeImage and friends: zero, code-like, heap-like and
 * random pages), bundled on the fly — plain Node cannot import .ts. esbuild is
 * loaded only here, so timed child processes that import this file do not pay
 * for it.
 */
export async function loadPages() {
  const dir = mkdtempSync(join(tmpdir(), "migstream-bench-pages-"));
  try {
    const out = join(dir, "pages.mjs");
    const { buildSync } = await import("esbuild");
    buildSync({
      entryPoints: [fileURLToPath(new URL("../src/device/pages.ts", import.meta.url))],
      bundle: true,
      format: "esm",
      platform: "neutral",
      outfile: out,
      logLevel: "error",
    });
    return await import(pathToFileURL(out).href);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Records one headline figure for the summary table of `npm run bench`
 * (bench/run.mjs): ours and a named peer measured in the same run, in `unit`,
 * `better` "higher" (rates) or "lower" (times, sizes). Appended as a JSON line
 * to the file named by $BENCH_SUMMARY; without it (a suite run alone) nothing.
 */
export function summary({ figure, ours, peer, theirs, unit, better = "higher" }) {
  const file = process.env.BENCH_SUMMARY;
  if (!file) return;
  for (const [k, v] of Object.entries({ ours, theirs })) {
    if (!Number.isFinite(v) || v <= 0) throw new Error(`bench summary "${figure}": ${k} is ${v}`);
  }
  const suite = process.env.BENCH_SUITE ?? "";
  appendFileSync(file, `${JSON.stringify({ suite, figure, ours, peer, theirs, unit, better })}\n`);
}
