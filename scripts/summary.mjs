// Reading test runners' closing lines, for scripts/test.mjs and
// scripts/deno-test.mjs: each `deno test` run ends with one summary line, and
// deno-test.mjs ends with the total over all of its runs.

/** Counts of one `deno test` run (`ok | N passed | N failed ...` or `FAILED | ...`), or undefined without a summary. */
export function denoRunCounts(stdout) {
  const m = /^(?:ok|FAILED) \| (\d+) passed[^|\n]*\| (\d+) failed/m.exec(stripColor(stdout));
  return m ? { passed: Number(m[1]), failed: Number(m[2]) } : undefined;
}

/** The line deno-test.mjs ends with. */
export function denoTotalLine(passed, failed) {
  return `deno: ${passed} passed | ${failed} failed`;
}

/** The total deno-test.mjs printed (its last `deno: ...` line), or undefined. */
export function denoTotal(stdout) {
  const all = [...stripColor(stdout).matchAll(/^deno: (\d+) passed \| (\d+) failed$/gm)];
  const m = all.at(-1);
  return m ? { passed: Number(m[1]), failed: Number(m[2]) } : undefined;
}

function stripColor(s) {
  return s.replace(/\x1b\[[0-9;]*m/g, "");
}
