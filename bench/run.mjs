// npm run bench — every suite (each `bench:NAME` script of package.json) in
// turn, after one build, each printing its own tables as it goes; then one
// summary table of the headline figures the suites recorded with summary()
// (bench/lib.mjs): ours, the peer measured in the same run, and the ratio.
//
//   node bench/run.mjs [SUITE...]     default: every suite
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { printTable } from "./lib.mjs";

const PREFIX = "bench:";
const BUILD = "npm run build --silent && ";

const scripts = JSON.parse(readFileSync("package.json", "utf8")).scripts;
const all = Object.keys(scripts)
  .filter((s) => s.startsWith(PREFIX))
  .map((s) => s.slice(PREFIX.length));
const wanted = process.argv.slice(2);
for (const w of wanted) if (!all.includes(w)) throw new Error(`no suite "${w}" (suites: ${all.join(", ")})`);
const suites = wanted.length ? wanted : all;

const sh = (command, env = {}) =>
  spawnSync("sh", ["-c", command], { stdio: "inherit", env: { ...process.env, ...env } }).status;

if (sh("npm run build --silent") !== 0) process.exit(1);
const dir = mkdtempSync(join(tmpdir(), "bench-"));
const file = join(dir, "summary.jsonl");
const failed = [];
const started = performance.now();
try {
  for (const suite of suites) {
    // The build ran once above; a suite's own build step is skipped.
    const command = scripts[PREFIX + suite].replace(BUILD, "");
    console.log(`\n## ${suite} (${command})`);
    const t0 = performance.now();
    const status = sh(command, { BENCH_SUMMARY: file, BENCH_SUITE: suite });
    console.log(
      `\n(${suite}: ${((performance.now() - t0) / 1000).toFixed(0)} s${status === 0 ? "" : `, FAILED with exit ${status}`})`,
    );
    if (status !== 0) failed.push(suite);
  }
  let lines = [];
  try {
    lines = readFileSync(file, "utf8")
      .trim()
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  } catch {
    // no suite recorded anything
  }
  const num = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  printTable(
    `summary: ${lines.length} figures from ${suites.length} suites, ${((performance.now() - started) / 1000).toFixed(0)} s; ` +
      "ratio > 1: ours ahead of the peer (rates: ours / peer; times and sizes: peer / ours)",
    lines.map((l) => ({
      suite: l.suite,
      figure: l.figure,
      ours: `${num(l.ours)} ${l.unit}`,
      peer: l.peer,
      "peer's": `${num(l.theirs)} ${l.unit}`,
      ratio: `${(l.better === "lower" ? l.theirs / l.ours : l.ours / l.theirs).toFixed(2)}×`,
    })),
  );
  for (const s of suites)
    if (!failed.includes(s) && !lines.some((l) => l.suite === s)) console.log(`(${s}: no summary figures)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (failed.length) {
  console.error(`bench: ${failed.join(", ")} failed`);
  process.exit(1);
}
