// `sim:` device specs: a simulated device in this process behind the
// in-process transport, with its state digest.
import { SimDevice } from "../../device/index.js";
import { InProcessRegion } from "../in-process.js";
import type { OpenedDevice } from "../spec.js";
import { simDeviceOptions } from "./options.js";

/** The in-process transport over a SimDevice, offering the device's digest. */
export class SimRegion extends InProcessRegion implements OpenedDevice {
  constructor(readonly device: SimDevice) {
    super(device, { label: "sim" });
  }

  async stateDigest(): Promise<bigint> {
    return this.device.digest();
  }
}

/** Opens the device a `sim:` spec's options describe (see options.ts for the keys). */
export async function openSimDevice(options: Record<string, string>): Promise<SimRegion> {
  return new SimRegion(new SimDevice(simDeviceOptions(options)));
}
