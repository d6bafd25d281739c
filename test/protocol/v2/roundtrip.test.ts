// v2 save → resume round trips over the in-process transport, one per
// simulated vendor behaviour.
import { describe, expect, it } from "vitest";
import { KiB, roundTripV2 } from "./helpers.js";

describe("v2 round trip", () => {
  it("live, with pre-copy and a running device", async () => {
    const r = await roundTripV2({ stateSize: 256 * KiB, seed: 3, dirtyPerMiB: 128 }, {}, { bufferSize: 32 * KiB });
    expect(r.summary.precopy.bytes).toBeGreaterThan(0);
    expect(r.summary.stopcopy.bytes).toBeGreaterThan(0);
  });
  it("suspend (no pre-copy)", async () => {
    const r = await roundTripV2({ stateSize: 64 * KiB, seed: 4 }, {}, { precopy: false });
    expect(r.summary.precopy.bytes).toBe(0);
  });
});
