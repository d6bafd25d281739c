// `sim:` device specs: a simulated device in this process behind the
// in-process transport, with its state digest.
import { SimDevice } from "../../device/index.js";
import { MigrationSimDevice } from "../../device/migration-sim.js";
import { InProcessRegion } from "../in-process.js";
import { InProcessMigration } from "../in-process-v2.js";
import { simDeviceOptions, simMigrationOptions, simProtocol } from "./options.js";

/** The in-process transport over a SimDevice, offering the device's digest. */
export class SimRegion extends InProcessRegion {
  constructor(readonly device: SimDevice) {
    super(device, { label: "sim" });
  }

  async stateDigest(): Promise<bigint> {
    return this.device.digest();
  }
}

/** The in-process v2 transport over a simulated v2 device, offering its digest. */
export class SimMigration extends InProcessMigration {
  constructor(readonly device: MigrationSimDevice) {
    super(device, { label: "sim v2" });
  }

  async stateDigest(): Promise<bigint> {
    return this.device.digest();
  }
}

/** Opens the device a `sim:` spec's options describe (see options.ts for the keys; protocol=v2 for a v2 device). */
export async function openSimDevice(options: Record<string, string>): Promise<SimRegion | SimMigration> {
  if (simProtocol(options) === 2) return new SimMigration(new MigrationSimDevice(simMigrationOptions(options)));
  return new SimRegion(new SimDevice(simDeviceOptions(options)));
}
