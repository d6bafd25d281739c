// The one entry for saving or restoring any device, v1 or v2: picks the
// driver by the device's generation. Both drivers take the same sink, items,
// options and progress events and return the same summaries, so a
// coordinator can drive a set of devices of either generation through these
// two functions (one call per device; each unwinds its own device on failure).
import type { MigratableDevice } from "./generation.js";
import { isMigrationDevice } from "./generation.js";
import type { ResumeSummary, SaveSummary } from "./progress.js";
import { resume, type ResumeOptions } from "./resume.js";
import { save } from "./save.js";
import type { ResumeItem, SaveSink } from "./types.js";
import { resumeV2 } from "./v2/resume.js";
import { saveV2, type SaveV2Options } from "./v2/save.js";

/** Saves any device into `sink` (v1: migration region driver; v2: device-feature driver). */
export function saveAny(dev: MigratableDevice, sink: SaveSink, options: SaveV2Options = {}): Promise<SaveSummary> {
  return isMigrationDevice(dev) ? saveV2(dev, sink, options) : save(dev, sink, options);
}

/** Restores any device from `items`; a stream of the other generation is refused before the device is touched. */
export function resumeAny(dev: MigratableDevice, items: AsyncIterable<ResumeItem> | Iterable<ResumeItem>, options: ResumeOptions = {}): Promise<ResumeSummary> {
  return isMigrationDevice(dev) ? resumeV2(dev, items, options) : resume(dev, items, options);
}
