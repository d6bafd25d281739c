// The README's library example runs as written (against the built package).
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";

describe("README library example", () => {
  it("saves, verifies and restores a simulated device; digests match", () => {
    const out = execFileSync(process.execPath, ["examples/library.mjs"], { encoding: "utf8", timeout: 60_000 });
    expect(out).toMatch(/^saved \d+ buffers, \d+ bytes → \d+ bytes$/m);
    expect(out).toMatch(/^restored: digests match$/m);
  });
});
