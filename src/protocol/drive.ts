// The one entry for saving or restoring any device, v1 or v2: picks the
// driver by the device's generation. Both drivers take the same sink, items,
// options and progress events and return the same summaries, so a
// coordinator can drive a set of devices of either generation through these
// functions (one call per device; each unwinds its own device on failure),
// and undo a device's completed part when another device of the set failed.

import { STATE_RESUMING, STATE_RUNNING, STATE_SAVING, stateName } from "./constants.js";
import { describe } from "./failure.js";
import type { MigratableDevice } from "./generation.js";
import { isMigrationDevice } from "./generation.js";
import type { ResumeSummary, SaveSummary } from "./progress.js";
import type { RegionIO } from "./region-io.js";
import { Registers } from "./registers.js";
import { type ResumeOptions, resume, startResumed, stopResumed } from "./resume.js";
import { save } from "./save.js";
import { setDeviceState } from "./state.js";
import type { ResumeItem, SaveSink } from "./types.js";
import { resumeV2, startResumedV2, stopDestination } from "./v2/resume.js";
import { backToRunning, type SaveV2Options, saveV2 } from "./v2/save.js";

/** Saves any device into `sink` (v1: migration region driver; v2: device-feature driver). */
export function saveAny(dev: MigratableDevice, sink: SaveSink, options: SaveV2Options = {}): Promise<SaveSummary> {
  return isMigrationDevice(dev) ? saveV2(dev, sink, options) : save(dev, sink, options);
}

/** Restores any device from `items`; a stream of the other generation is refused before the device is touched. */
export function resumeAny(
  dev: MigratableDevice,
  items: AsyncIterable<ResumeItem> | Iterable<ResumeItem>,
  options: ResumeOptions = {},
): Promise<ResumeSummary> {
  return isMigrationDevice(dev) ? resumeV2(dev, items, options) : resume(dev, items, options);
}

/** Starts a device a resume left loaded (`start: false`): v1 RESUMING → RUNNING, v2 STOP → RUNNING. */
export function startAny(dev: MigratableDevice): Promise<void> {
  return isMigrationDevice(dev) ? startResumedV2(dev) : startResumed(dev);
}

/**
 * Takes back a destination a resume completed (loaded, or started) because
 * the migration failed elsewhere: it ends not RUNNING (v1: reset and STOP;
 * v2: STOP). Returns a note for the error.
 */
export async function stopResumedAny(dev: MigratableDevice): Promise<string> {
  if (!isMigrationDevice(dev)) return stopResumed(dev);
  if (dev.vmmOwnsStates) return "the VMM owns the device: it must not start it";
  return stopDestination(dev);
}

/** Puts a source a save completed (stopped) back in RUNNING, with its state; returns a note for the error. */
export async function restartSource(dev: MigratableDevice): Promise<string> {
  if (isMigrationDevice(dev)) {
    if (dev.vmmOwnsStates) return "the VMM owns the source device: it must put it back in RUNNING";
    return `source ${await backToRunning(dev, "save: restart source")}`;
  }
  return restartRegion(dev);
}

async function restartRegion(region: RegionIO): Promise<string> {
  try {
    const s = await setDeviceState(
      new Registers(region),
      ~(STATE_SAVING | STATE_RESUMING) >>> 0,
      STATE_RUNNING,
      "save: restart source",
    );
    return `source device back in ${stateName(s)}`;
  } catch (e) {
    return `putting the source device back in RUNNING failed: ${describe(e)}`;
  }
}
