// Save → stream: the protocol driver writes straight into a stream encoder's
// device writer (phases marked), and the device's trailer follows the last
// transaction. A failed save leaves the stream without its trailers, so any
// reader rejects it as truncated.
import type { StreamEncoder } from "../format/encoder.js";
import type { DeviceInfo, DeviceTrailer } from "../format/types.js";
import { save, type SaveOptions } from "../protocol/save.js";
import type { SaveSummary } from "../protocol/progress.js";
import type { RegionIO } from "../protocol/region-io.js";

export interface SaveDeviceResult {
  summary: SaveSummary;
  trailer: DeviceTrailer;
}

/** Saves the device behind `region` as device `id` of `encoder`'s stream. */
export async function saveDevice(
  region: RegionIO,
  encoder: StreamEncoder,
  id: number,
  info: DeviceInfo = {},
  options: SaveOptions = {},
): Promise<SaveDeviceResult> {
  const writer = encoder.device(id, info);
  const summary = await save(region, writer, options);
  const trailer = await writer.end();
  return { summary, trailer };
}
