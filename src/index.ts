// vfio-migstream library entry.
export * from "./kernels/index.js";
export { MigstreamError, isMigstreamError, type ErrorCode, type ErrorDetails } from "./errors.js";
export * from "./parallel/index.js";
// Region transports: vfio-user client and server, fd regions, device specs.
export { connectVfioUser, VfioUserRegion, type ConnectOptions, type DiscoveredRegion, type VfioUserInfo } from "./transport/vfio-user/client.js";
export { VfioUserServer, type ServedVendor, type VfioUserServerOptions } from "./transport/vfio-user/server.js";
export { FdRegion, type FdRegionOptions, type FdSource } from "./transport/fd/region.js";
export { findMigrationRegion, queryRegionInfo, type RegionInfoQuery } from "./transport/region-info.js";
export { openDevice, parseDeviceSpec, parseSize, type DeviceSpec, type OpenedDevice } from "./transport/spec.js";
export * from "./format/index.js";
// The region protocol driver (save from a device, resume into one).
export { save, resume, startResumed, type SaveOptions, type ResumeOptions, type SaveSink, type ResumeItem, type SaveSummary, type ResumeSummary } from "./protocol/index.js";
// Pipelines: a device saved into a stream encoder, a device restored from stream bytes.
export { saveDevice, restoreDevice, streamItems, type SaveDeviceResult, type RestoreOptions, type StreamItemsOptions } from "./migrate/index.js";
// The simulated vendor device (tests, demos, vendor-side experiments).
export { SimDevice, type SimDeviceOptions } from "./device/index.js";
export { InProcessRegion } from "./transport/in-process.js";
