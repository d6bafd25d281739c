// A VM's devices migrating together: a v1 and a v2 simulated device saved
// into one stream (their pre-copy at once under one policy, one stop-and-copy
// window), then restored together into two fresh devices, which start only
// once the whole stream verified and both loaded.
// Run after `npm run build`: node examples/devices.mjs
import {
  InProcessMigration,
  InProcessRegion,
  MigrationSimDevice,
  restoreDevices,
  SimDevice,
  StreamEncoder,
  saveDevices,
} from "../dist/index.js";

const gpu = new SimDevice({ stateSize: 8 << 20, seed: 1, dirtyPerTxn: 4 });
const nic = new MigrationSimDevice({ stateSize: 2 << 20, seed: 2, dirtyPerMiB: 32 });

const parts = [];
const encoder = new StreamEncoder((bytes) => void parts.push(bytes.slice()), { codec: "lz4", maxDevices: 2 });
const saved = await saveDevices(
  [
    { device: new InProcessRegion(gpu), info: { name: "gpu" } },
    { device: new InProcessMigration(nic), info: { name: "nic" } },
  ],
  encoder,
  { policy: { pendingThreshold: 256 << 10 } }, // the total pending of both devices
);
await encoder.finish();
console.log(
  `saved together, pre-copy ended: ${saved.precopyEnd}; ${saved.devices.map((d) => `${d.summary.iterations} iterations, ${d.summary.bytes} bytes`).join(" | ")}`,
);

const gpu2 = new SimDevice({ stateSize: 8 << 20, empty: true });
const nic2 = new MigrationSimDevice({ stateSize: 2 << 20, empty: true });
const restored = await restoreDevices(
  [{ device: new InProcessRegion(gpu2) }, { device: new InProcessMigration(nic2) }],
  parts,
);
const same = gpu.digest() === gpu2.digest() && nic.digest() === nic2.digest();
console.log(
  `restored ${restored.devices.map((d) => `"${d.name}"`).join(" and ")}: ${same ? "digests match" : "DIGESTS DIFFER"}`,
);
process.exitCode = same ? 0 : 1;
