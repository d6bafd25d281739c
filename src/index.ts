// The "vfio-migstream" entry: what an application needs to move device state,
// laid out as a grid. Encode and decode each come one-shot (encodeStream /
// decodeStream, and their Async forms for keys, sources and pools),
// streaming (StreamEncoder / StreamDecoder) and as Web Streams
// (MigrationEncoderStream / MigrationDecoderStream); parallelism is their
// `pool` option, not another class. One device is saved into a stream and
// restored from one by saveDevice / restoreDevice, which encode and decode by
// themselves, from a VFIO v1 migration region or a v2 device; several devices
// that migrate together, by saveDevices / restoreDevices. Lower layers
// have entries of their own: "vfio-migstream/kernels" (checksums, LZ4, zstd,
// chunking), "/protocol" (the v1 and v2 protocol drivers, one device or a
// group), "/sim" (simulated
// devices and link), "/pool" (the worker pool).

export type { SinkRate } from "./codec/auto/sink.js";
export { CODECS, type CodecName } from "./codec/ids.js";
// Initialisation: the one call the synchronous APIs need first (everything asynchronous makes it itself).
export { type InitOptions, init } from "./codec/index.js";
export {
  ERROR_CODES,
  type ErrorCode,
  type ErrorDetails,
  isMigstreamError,
  MigstreamError,
  STREAM_ERROR_CODES,
} from "./errors.js";
export type { CodingPool } from "./format/chunk-coders.js";
// Decode: one-shot, streaming, Web Streams (above), and verification alone.
export { type DecoderOptions, decodeStream, decodeStreamAsync, StreamDecoder, verifyStream } from "./format/decoder.js";
// Encode: one-shot, streaming, Web Streams.
export {
  type DeviceWriter,
  type EncoderOptions,
  type EncoderStats,
  encodeStream,
  encodeStreamAsync,
  StreamEncoder,
} from "./format/encoder.js";
export type { DecoderLimits } from "./format/limits.js";
export {
  type DecoderStreamOptions,
  type EncoderStreamOptions,
  MigrationDecoderStream,
  MigrationEncoderStream,
} from "./format/streams.js";
export type {
  DecodedDevice,
  DecodedStream,
  DecodeEvent,
  DeviceInfo,
  DeviceInput,
  DeviceItem,
  DeviceTrailer,
  StreamHeader,
  StreamTrailer,
} from "./format/types.js";
// One device: saved into a stream of its own, restored from one.
// Several devices that migrate together: one stream, one pre-copy policy, one stop-and-copy
// window; on the destination all start only after the whole stream verified. StreamDemux is
// the destination's split of such a stream, for driving the devices by hand (resumeGroup in /protocol).
export {
  type ByteSink,
  type RestoreDevicesMember,
  type RestoreDevicesOptions,
  type RestoreDevicesResult,
  type RestoredDevice,
  type RestoreOptions,
  restoreDevice,
  restoreDevices,
  type SaveDeviceOptions,
  type SaveDeviceResult,
  type SaveDevicesMember,
  type SaveDevicesOptions,
  type SaveDevicesResult,
  type SavedDevice,
  type SaveStep,
  StreamDemux,
  type StreamDemuxOptions,
  type StreamDevice,
  type StreamHead,
  saveDevice,
  saveDevices,
  type WritableSinkOptions,
  writableSink,
} from "./migrate/index.js";
export type { MigratableDevice } from "./protocol/generation.js";
export type { GroupSaveOptions } from "./protocol/group.js";
export type { PrecopyPolicy, StopSignal } from "./protocol/policy.js";
export type { Progress, ProgressListener, ResumeSummary, SaveSummary } from "./protocol/progress.js";
// Devices: a spec string, or a transport by hand — a v1 migration region (RegionIO) or a v2
// device (MigrationDevice); anything implementing either works too.
export type { RegionIO } from "./protocol/region-io.js";
export type { ResumeOptions } from "./protocol/resume.js";
export type { SaveOptions } from "./protocol/save.js";
export type { MigrationProtocol, Phase } from "./protocol/types.js";
export type { MigrationDevice } from "./protocol/v2/device-io.js";
export type { SaveV2Options } from "./protocol/v2/save.js";
export { HandedOverDataFd } from "./transport/fd/data-fd.js";
export { FdRegion, type FdRegionOptions, type FdSource } from "./transport/fd/region.js";
export { KernelMigration, type Syscalls } from "./transport/kernel/device.js";
export { denoSyscalls } from "./transport/kernel/ioctl-deno.js";
export { findMigrationRegion, queryRegionInfo, type RegionInfoQuery } from "./transport/region-info.js";
export { type DeviceSpec, type OpenedDevice, openDevice } from "./transport/spec.js";
export {
  type ConnectOptions,
  connectVfioUser,
  type DiscoveredRegion,
  type VfioUserInfo,
  VfioUserRegion,
} from "./transport/vfio-user/client.js";
export {
  type OpenOptions,
  openVfioUser,
  type V2Declarations,
  VfioUserMigration,
} from "./transport/vfio-user/migration.js";
export { type ServedVendor, VfioUserServer, type VfioUserServerOptions } from "./transport/vfio-user/server.js";
export { V2Handler, type V2HandlerOptions } from "./transport/vfio-user/server-v2.js";
