// What a v2 device must offer before either driver touches its state (cases
// 1, 2, 4, 33): GET MIGRATION succeeds (ENOTTY on a kernel device, EINVAL over
// vfio-user: no v2 migration, reported as such, no guessing), and its flags
// include STOP_COPY. P2P states are never requested (the drivers ask for
// STOP, RUNNING, PRE_COPY, STOP_COPY and RESUMING only); DMA logging
// features are never used (device state needs none of them).
import { MigstreamError } from "../../errors.js";
import { atStep } from "../failure.js";
import { MIGRATION_P2P, MIGRATION_PRE_COPY, MIGRATION_STOP_COPY } from "./constants.js";
import type { Access } from "./data.js";
import type { MigrationDevice } from "./device-io.js";

/** VFIO_MIGRATION_* flags as text: `STOP_COPY|PRE_COPY`. */
export function migrationFlagNames(flags: number): string {
  const out: string[] = [];
  if (flags & MIGRATION_STOP_COPY) out.push("STOP_COPY");
  if (flags & MIGRATION_P2P) out.push("P2P");
  if (flags & MIGRATION_PRE_COPY) out.push("PRE_COPY");
  const rest = flags & ~(MIGRATION_STOP_COPY | MIGRATION_P2P | MIGRATION_PRE_COPY);
  if (rest) out.push(`0x${rest.toString(16)}`);
  return out.length ? out.join("|") : "none";
}

/** GET MIGRATION, checked: returns the flags. */
export async function checkMigration(
  dev: MigrationDevice,
  step: string,
  checkAbort: (step: string) => void,
): Promise<number> {
  checkAbort(step);
  let flags: number;
  try {
    flags = await dev.migrationFlags();
  } catch (e) {
    const err = atStep(e, step, "migration");
    if (err.code === "DEVICE" && (err.errno === "ENOTTY" || err.errno === "EINVAL")) {
      throw new MigstreamError("DEVICE", `${step}: the device has no v2 migration (GET MIGRATION: ${err.errno})`, {
        step,
        field: "migration",
        errno: err.errno,
        cause: e,
      });
    }
    throw err;
  }
  if ((flags & MIGRATION_STOP_COPY) === 0) {
    throw new MigstreamError(
      "PROTOCOL",
      `${step}: MIGRATION flags ${migrationFlagNames(flags)} lack STOP_COPY, which every v2 device must offer; refusing the device`,
      {
        step,
        field: "migration",
      },
    );
  }
  return flags;
}

/** How the drivers cut data accesses for this device. */
export function dataAccess(dev: MigrationDevice): Access {
  const max = dev.maxAccess;
  if (!(max >= 1)) throw new MigstreamError("USAGE", `v2 device: maxAccess must be ≥ 1 (got ${max})`);
  const fixed = dev.fixedAccess === true;
  if (fixed && !Number.isSafeInteger(max))
    throw new MigstreamError("USAGE", `v2 device: a fixed access size needs a finite maxAccess (got ${max})`);
  return { piece: Number.isFinite(max) ? Math.floor(max) : Infinity, fixed };
}
