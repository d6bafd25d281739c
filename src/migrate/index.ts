// Migration pipelines: one device saved into a stream of its own and written
// to a sink (saveDevice), and one device restored from a stream's bytes as
// they arrive (restoreDevice); each encodes or decodes by itself.
export { saveDevice, type SaveDeviceOptions, type SaveDeviceResult, type SaveStep } from "./save-to.js";
export { restoreDevice, type RestoreOptions } from "./restore-stream.js";
export type { StreamItemsOptions } from "./items.js";
export { writableSink, type ByteSink, type WritableSinkOptions } from "./sink.js";
