// Save → stream: the protocol driver writes straight into a stream encoder's
// device writer (phases marked), and the device's trailer follows the last
// transaction. A failed save leaves the stream without its trailers, so any
// reader rejects it as truncated.
import type { StreamEncoder } from "../format/encoder.js";
import type { DeviceInfo, DeviceTrailer } from "../format/types.js";
import { saveAny } from "../protocol/drive.js";
import type { MigratableDevice } from "../protocol/generation.js";
import type { SaveSummary } from "../protocol/progress.js";
import type { SaveV2Options } from "../protocol/v2/save.js";

export interface SaveDeviceResult {
  summary: SaveSummary;
  trailer: DeviceTrailer;
}

/** Saves the device behind `region` (v1 or v2) as device `id` of `encoder`'s stream. */
export async function saveDevice(
  region: MigratableDevice,
  encoder: StreamEncoder,
  id: number,
  info: DeviceInfo = {},
  options: SaveV2Options = {},
): Promise<SaveDeviceResult> {
  const writer = encoder.device(id, info);
  const summary = await saveAny(region, writer, options);
  const trailer = await writer.end();
  return { summary, trailer };
}
