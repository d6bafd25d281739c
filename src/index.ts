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
// VFIO migration v2: the driver (device feature + data stream), any-generation entry points,
// the vfio-user v2 client (detects v1 or v2) and server extension, the kernel driver over
// Deno's FFI, a data fd handed over by a VMM, and the simulated v2 device.
export { v2, saveAny, resumeAny, generationOf, isMigrationDevice, type MigratableDevice, type MigrationProtocol } from "./protocol/index.js";
export { openVfioUser, VfioUserMigration, type OpenOptions, type V2Declarations } from "./transport/vfio-user/migration.js";
export { V2Handler, type V2HandlerOptions } from "./transport/vfio-user/server-v2.js";
export { KernelMigration, type Syscalls } from "./transport/kernel/device.js";
export { denoSyscalls } from "./transport/kernel/ioctl-deno.js";
export { HandedOverDataFd } from "./transport/fd/data-fd.js";
export { MigrationSimDevice, type MigrationSimOptions, type MigrationFault } from "./device/migration-sim.js";
export { type MigrationVendor, walk } from "./device/migration-vendor.js";
export { InProcessMigration } from "./transport/in-process-v2.js";
// Devices that migrate together (issue 17): one stream, one coordinated pre-copy policy,
// one stop-and-copy window; all devices started only after the whole stream verified.
export {
  saveGroup,
  resumeGroup,
  PrecopyGroup,
  startAny,
  stopResumedAny,
  restartSource,
  type PrecopyControl,
  type GroupSaveMember,
  type GroupSaveOptions,
  type GroupSaveSummary,
  type GroupResumeMember,
  type GroupResumeOptions,
  type GroupResumeSummary,
} from "./protocol/index.js";
export {
  saveDevices,
  saveDevicesTo,
  restoreDevices,
  StreamDemux,
  type SaveDevicesMember,
  type SaveDevicesResult,
  type SaveDevicesToOptions,
  type SaveDevicesToResult,
  type SavedDevice,
  type RestoreDevicesMember,
  type RestoreDevicesOptions,
  type RestoreDevicesResult,
  type RestoredDevice,
  type StreamHead,
  type StreamDevice,
} from "./migrate/index.js";
