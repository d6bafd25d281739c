// Migration pipelines: one device saved into a stream of its own and written
// to a sink (saveDevice), and one device restored from a stream's bytes as
// they arrive (restoreDevice); several devices that migrate together, saved
// into one stream (saveDevices) and restored from it (restoreDevices). Each
// encodes or decodes by itself.

export { StreamDemux, type StreamDemuxOptions, type StreamDevice, type StreamHead } from "./demux.js";
export type { StreamItemsOptions } from "./items.js";
export {
  type RestoreDevicesMember,
  type RestoreDevicesOptions,
  type RestoreDevicesResult,
  type RestoredDevice,
  restoreDevices,
} from "./restore-devices.js";
export { type RestoreOptions, restoreDevice } from "./restore-stream.js";
export {
  type SaveDevicesMember,
  type SaveDevicesOptions,
  type SaveDevicesResult,
  type SavedDevice,
  saveDevices,
} from "./save-devices.js";
export { type SaveDeviceOptions, type SaveDeviceResult, type SaveStep, saveDevice } from "./save-to.js";
export { type ByteSink, type WritableSinkOptions, writableSink } from "./sink.js";
