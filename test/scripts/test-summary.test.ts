// The closing line of `npm test` must count every test: scripts/deno-test.mjs
// runs its Deno groups (plain, then *.net) and totals them; scripts/test.mjs
// reads that total. Proved with real `deno test` runs over a fixture directory
// whose second group holds the failure.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
// @ts-expect-error plain .mjs helper without types
import { denoRunCounts, denoTotal } from "../../scripts/summary.mjs";

const root = fileURLToPath(new URL("../../", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "migstream-deno-summary-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("test summary", () => {
  it("sums every Deno group, and a failure in a later group is counted", () => {
    writeFileSync(join(dir, "a.test.ts"), `Deno.test("one", () => {});\nDeno.test("two", () => {});\n`);
    writeFileSync(
      join(dir, "b.net.test.ts"),
      `Deno.test("three", () => {});\nDeno.test("four fails", () => { throw new Error("on purpose"); });\n`,
    );
    const r = spawnSync(process.execPath, ["scripts/deno-test.mjs", dir], { cwd: root, encoding: "utf8" });
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^deno: 3 passed \| 1 failed$/m);
    expect(denoTotal(r.stdout)).toEqual({ passed: 3, failed: 1 });
  });

  it("reads one run's counts from deno's closing line, with or without colour and ignored tests", () => {
    expect(denoRunCounts("running 2 tests\n\nok | 2 passed | 0 failed (5ms)\n")).toEqual({ passed: 2, failed: 0 });
    expect(denoRunCounts("\x1b[0m\x1b[31mFAILED\x1b[0m | 1 passed | 3 failed | 2 ignored (1s)\n")).toEqual({
      passed: 1,
      failed: 3,
    });
    expect(denoRunCounts("error: Module not found\n")).toBeUndefined();
  });
});
