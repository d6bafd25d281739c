// A simulated device served over vfio-user (what `migstream sim serve` runs).
// With the default "recover" policy, when a client goes away mid-migration: a
// source (SAVING, SAVING|RUNNING, or STOP after a save) returns to RUNNING and
// keeps its state, as after a failed or finished save, so it can be saved
// again and its digest still names what was saved; a destination still
// RESUMING, or a device in ERROR, is reset (its partial state dropped) and
// then stopped, so a broken restore never leaves a RUNNING destination; a
// device stopped otherwise (after a failed restore the driver reset and
// stopped it) stays stopped. With "stay" nothing happens: the device keeps
// the state its client left, as real hardware does.
import { type Fault, SimDevice, type SimDeviceOptions } from "../../device/index.js";
import { type MigrationFault, MigrationSimDevice, type MigrationSimOptions } from "../../device/migration-sim.js";
import { VendorErrno } from "../../device/vendor.js";
import { OFF_DEVICE_STATE, STATE_MASK, STATE_RUNNING, STATE_SAVING, STATE_STOP } from "../../protocol/constants.js";
import { ERRNO } from "../../protocol/region-io.js";
import { V2_DIGEST_REGION_INDEX } from "../vfio-user/constants.js";
import { VfioUserServer, type VfioUserServerOptions } from "../vfio-user/server.js";
import { V2Handler, type V2HandlerOptions } from "../vfio-user/server-v2.js";

/**
 * What a served sim device does when its client goes away: "recover" (the
 * file comment's policy: a source back to RUNNING, a half-restored
 * destination reset) or "stay" (nothing: the device keeps whatever state the
 * client left it in, as a real device does — what tests of the driver's own
 * recovery need).
 */
export type SimDisconnect = "stay" | "recover";
export const SIM_DISCONNECT_POLICIES: readonly SimDisconnect[] = ["recover", "stay"];

export interface SimServeOptions extends Omit<VfioUserServerOptions, "onDisconnect"> {
  device?: SimDeviceOptions;
  /** Faults armed when the device is created. */
  faults?: Fault[];
  /** Default "recover". */
  onDisconnect?: SimDisconnect;
}

const SOURCE_STATES: ReadonlySet<number> = new Set([STATE_STOP, STATE_SAVING, STATE_SAVING | STATE_RUNNING]);

/** The disconnect policy of a served SimDevice (see the file comment). */
export async function recoverSim(dev: SimDevice): Promise<void> {
  const s = dev.state;
  const low = s & STATE_MASK;
  if (low === STATE_RUNNING) return;
  // Stopped after a failed (reset) restore, or never migrated: stays stopped.
  if (low === STATE_STOP && dev.lastRole !== "save") return;
  if (SOURCE_STATES.has(low)) {
    const v = new Uint8Array(4);
    new DataView(v.buffer).setUint32(0, ((s & ~STATE_MASK) | STATE_RUNNING) >>> 0, true);
    try {
      await dev.write(OFF_DEVICE_STATE, v);
      return;
    } catch {
      // the device refused: reset below
    }
  }
  const role = dev.lastRole;
  await dev.reset();
  if (role === "save") return; // a source that had to be reset: RUNNING (its state is gone, as on hardware)
  const v = new Uint8Array(4);
  new DataView(v.buffer).setUint32(0, (dev.state & ~STATE_MASK) >>> 0, true);
  await dev.write(OFF_DEVICE_STATE, v).catch(() => undefined); // RUNNING → STOP; a refusal leaves the reset state
}

export interface SimServeV2Options
  extends Omit<VfioUserServerOptions, "onDisconnect" | "extension" | "regionIndex" | "digestRegionIndex">,
    V2HandlerOptions {
  device?: MigrationSimOptions;
  faults?: MigrationFault[];
}

/**
 * Creates a simulated v2 device and serves it on `path` as libvfio-user
 * (HEAD) serves a v2 device: no migration region, the digest region at
 * V2_DIGEST_REGION_INDEX, and the state kept when a client leaves (a new
 * client finds it where the last one left it and reads it first, case 28).
 */
export async function serveSimV2(
  path: string,
  opts: SimServeV2Options = {},
): Promise<{ server: VfioUserServer; device: MigrationSimDevice; handler: V2Handler }> {
  const { device: deviceOptions, faults, resetKeepsState, ...serverOptions } = opts;
  const device = new MigrationSimDevice(deviceOptions);
  for (const f of faults ?? []) device.inject(f);
  const handler = new V2Handler(device, { resetKeepsState });
  const refuse = async (): Promise<never> => {
    throw new VendorErrno(ERRNO.EINVAL, "a v2 device has no migration region");
  };
  // The served "vendor" of the base server: no region of its own, only the reset and the digest.
  const vendor = { size: 0, read: refuse, write: refuse, reset: () => handler.reset(), digest: () => device.digest() };
  const server = await VfioUserServer.listen(path, vendor, {
    ...serverOptions,
    regionIndex: V2_DIGEST_REGION_INDEX,
    digestRegionIndex: V2_DIGEST_REGION_INDEX,
    extension: handler,
    onDisconnect: "keep",
  });
  return { server, device, handler };
}

/** Creates the device and serves it on `path`. */
export async function serveSim(
  path: string,
  opts: SimServeOptions = {},
): Promise<{ server: VfioUserServer; device: SimDevice }> {
  const { device: deviceOptions, faults, onDisconnect, ...serverOptions } = opts;
  const device = new SimDevice(deviceOptions);
  for (const f of faults ?? []) device.inject(f);
  const policy = onDisconnect === "stay" ? "keep" : () => recoverSim(device);
  const server = await VfioUserServer.listen(path, device, { ...serverOptions, onDisconnect: policy });
  return { server, device };
}
