// A stream's protocol record meets the device: restoring a v1 stream into a
// v2 device, or the reverse, is refused before the device is touched; a v2
// stream restores a v2 device through the stream format (restart flag kept).
import { describe, expect, it } from "vitest";
import { MigrationSimDevice } from "../../src/device/migration-sim.js";
import { SimDevice } from "../../src/device/simulated.js";
import { decodeStream } from "../../src/format/index.js";
import { restoreDevice } from "../../src/migrate/restore-stream.js";
import { saveDevice } from "../../src/migrate/save-to.js";
import { MIG_STATE } from "../../src/protocol/v2/constants.js";
import { InProcessRegion } from "../../src/transport/in-process.js";
import { InProcessMigration } from "../../src/transport/in-process-v2.js";

async function streamOf(dev: InProcessRegion | InProcessMigration): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  await saveDevice(dev, (b) => void out.push(b.slice()), { encoder: { codec: "raw" }, info: { name: "d" } });
  return out;
}

describe("the stream's protocol record against the device", () => {
  it("a v2 stream restores a v2 device; the record says so, with the restart flag", async () => {
    const src = new MigrationSimDevice({ stateSize: 64 << 10, restarts: true, dirtyPerMiB: 64 });
    const bytes = await streamOf(new InProcessMigration(src));
    expect(decodeStream(Buffer.concat(bytes)).devices[0].protocol).toEqual({ generation: 2, restartsAtStopCopy: true });
    const dst = new MigrationSimDevice({ stateSize: 64 << 10, restarts: true, empty: true });
    const r = await restoreDevice(new InProcessMigration(dst), bytes);
    expect(dst.digest()).toBe(src.digest());
    expect(r.skipped).toBeGreaterThan(0); // the pre-copy bytes: not part of a restarting device's state
  });

  it("a v1 stream into a v2 device: USAGE, the device untouched", async () => {
    const bytes = await streamOf(new InProcessRegion(new SimDevice({ stateSize: 32 << 10, txnSize: 8 << 10 })));
    const dst = new MigrationSimDevice({ stateSize: 32 << 10, empty: true });
    let touched = false;
    await expect(
      restoreDevice(new InProcessMigration(dst), bytes, { onTouch: () => (touched = true) }),
    ).rejects.toMatchObject({ code: "USAGE", field: "generation" });
    expect(touched).toBe(false); // refused on the stream's head, before the device would be touched
    expect(dst.arcs).toEqual([]); // the device saw nothing
    expect(dst.state).toBe(MIG_STATE.RUNNING);
  });

  it("a v2 stream into a v1 device: USAGE, the device untouched", async () => {
    const bytes = await streamOf(new InProcessMigration(new MigrationSimDevice({ stateSize: 32 << 10 })));
    const dst = new SimDevice({ stateSize: 32 << 10, txnSize: 8 << 10, empty: true });
    await expect(restoreDevice(new InProcessRegion(dst), bytes)).rejects.toMatchObject({
      code: "USAGE",
      field: "generation",
    });
    expect(dst.stateWrites).toEqual([]);
    expect(dst.state & 7).toBe(1);
  });
});
