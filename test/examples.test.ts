// The README's library examples run as written (against the built package).
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";

describe("README library example", () => {
  it("saves, verifies and restores a simulated device; digests match", () => {
    const out = execFileSync(process.execPath, ["examples/library.mjs"], { encoding: "utf8", timeout: 60_000 });
    expect(out).toMatch(/^saved \d+ buffers, \d+ bytes → \d+ bytes$/m);
    expect(out).toMatch(/^restored: digests match$/m);
  });

  it("saves a v1 and a v2 device together into one stream and restores both; digests match", () => {
    const out = execFileSync(process.execPath, ["examples/devices.mjs"], { encoding: "utf8", timeout: 60_000 });
    expect(out).toMatch(
      /^saved together, pre-copy ended: \w+; \d+ iterations, \d+ bytes \| \d+ iterations, \d+ bytes$/m,
    );
    expect(out).toMatch(/^restored "gpu" and "nic": digests match$/m);
  });
});
