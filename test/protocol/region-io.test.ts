// The RegionIO contract's bounds rule (an access outside the region is the
// caller's bug, USAGE), written once in protocol/region-io.ts and used by the
// transports: checked on its own and through the in-process transport.
import { describe, expect, it } from "vitest";
import { SimDevice } from "../../src/device/simulated.js";
import { checkRegionAccess } from "../../src/protocol/region-io.js";
import { InProcessRegion } from "../../src/transport/in-process.js";

describe("checkRegionAccess", () => {
  it("accepts every access inside [0, size), the empty one at the end included", () => {
    for (const [offset, count] of [
      [0, 0],
      [0, 4096],
      [4095, 1],
      [4096, 0],
    ])
      expect(() => checkRegionAccess("t", 4096, offset, count, "read")).not.toThrow();
  });

  it("refuses an access past the end, negative or fractional, as USAGE with the offset", () => {
    for (const [offset, count] of [
      [4095, 2],
      [4097, 0],
      [-1, 1],
      [0, -1],
      [0.5, 1],
      [0, Number.NaN],
      [2 ** 53, 1],
    ]) {
      let err: unknown;
      try {
        checkRegionAccess("t", 4096, offset, count, "write");
      } catch (e) {
        err = e;
      }
      expect(err, `${count}@${offset}`).toMatchObject({ code: "USAGE", offset });
      expect(String((err as Error).message)).toMatch(
        /^t: write of .* bytes at .* is outside the 4096-byte migration region$/,
      );
    }
  });

  it("an in-process region applies it before the device sees anything", async () => {
    const dev = new SimDevice({ stateSize: 64 << 10 });
    const io = new InProcessRegion(dev);
    await expect(io.read(io.size - 4, 8)).rejects.toMatchObject({ code: "USAGE", offset: io.size - 4 });
    await expect(io.write(io.size, new Uint8Array(1))).rejects.toMatchObject({ code: "USAGE", offset: io.size });
    await expect(io.read(0, 4)).resolves.toHaveLength(4); // device_state, at its native width
  });
});
