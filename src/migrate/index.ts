// Migration pipelines: one device saved into a stream of its own and written
// to a sink (saveDevice), and one device restored from a stream's bytes as
// they arrive (restoreDevice); several devices that migrate together, saved
// into one stream (saveDevices) and restored from it (restoreDevices). Each
// encodes or decodes by itself.
export { saveDevice, type SaveDeviceOptions, type SaveDeviceResult, type SaveStep } from "./save-to.js";
export { restoreDevice, type RestoreOptions } from "./restore-stream.js";
export { saveDevices, type SaveDevicesMember, type SaveDevicesOptions, type SaveDevicesResult, type SavedDevice } from "./save-devices.js";
export { restoreDevices, type RestoreDevicesMember, type RestoreDevicesOptions, type RestoreDevicesResult, type RestoredDevice } from "./restore-devices.js";
export { StreamDemux, type StreamDemuxOptions, type StreamHead, type StreamDevice } from "./demux.js";
export type { StreamItemsOptions } from "./items.js";
export { writableSink, type ByteSink, type WritableSinkOptions } from "./sink.js";
