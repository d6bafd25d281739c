// Runs the whole suite: vitest (Node) over src/, then Deno over the built dist/.
// Ends with one plain line `N passed, N failed` that CI reads.
// Usage: node scripts/test.mjs [vitest filters...]
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { denoTotal } from "./summary.mjs";

const dir = mkdtempSync(join(tmpdir(), "migstream-test-"));
const report = join(dir, "vitest.json");
let passed = 0;
let failed = 0;
let ok = true;

const vitest = spawnSync(
  process.execPath,
  [
    "node_modules/vitest/vitest.mjs",
    "run",
    "--reporter=default",
    "--reporter=json",
    `--outputFile.json=${report}`,
    ...process.argv.slice(2),
  ],
  { stdio: "inherit" },
);
try {
  const r = JSON.parse(readFileSync(report, "utf8"));
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  // A suite that fails to load counts as a failure even with no test inside.
  failed += r.numFailedTestSuites > 0 && r.numFailedTests === 0 ? r.numFailedTestSuites : 0;
} catch {
  console.error("test: vitest wrote no report");
  ok = false;
}
if (vitest.status !== 0) ok = false;

if (process.argv.length <= 2) {
  const deno = spawnSync(process.execPath, ["scripts/deno-test.mjs"], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  process.stdout.write(deno.stdout);
  const total = denoTotal(deno.stdout);
  if (total) {
    passed += total.passed;
    failed += total.failed;
  } else {
    console.error("test: deno printed no summary");
    ok = false;
  }
  if (deno.status !== 0) ok = false;
}

rmSync(dir, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exit(ok && failed === 0 ? 0 : 1);
