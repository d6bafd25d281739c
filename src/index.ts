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

// Initialisation: the one call the synchronous APIs need first (everything asynchronous makes it itself).
export { init, type InitOptions } from "./codec/index.js";
export { MigstreamError, isMigstreamError, type ErrorCode, type ErrorDetails } from "./errors.js";
export { CODECS, type CodecName } from "./codec/ids.js";

// Encode: one-shot, streaming, Web Streams.
export { encodeStream, encodeStreamAsync, StreamEncoder, type EncoderOptions, type DeviceWriter, type EncoderStats } from "./format/encoder.js";
export { MigrationEncoderStream, MigrationDecoderStream, type EncoderStreamOptions, type DecoderStreamOptions } from "./format/streams.js";
// Decode: one-shot, streaming, Web Streams (above), and verification alone.
export { decodeStream, decodeStreamAsync, StreamDecoder, verifyStream, type DecoderOptions } from "./format/decoder.js";
export type { DecoderLimits } from "./format/limits.js";
export type { DeviceInfo, DeviceItem, DeviceInput, DeviceTrailer, StreamTrailer, DecodedDevice, DecodedStream, DecodeEvent, StreamHeader } from "./format/types.js";
export type { CodingPool } from "./format/chunk-coders.js";
export type { SinkRate } from "./codec/auto/sink.js";

// One device: saved into a stream of its own, restored from one.
export { saveDevice, restoreDevice, writableSink, type SaveDeviceOptions, type SaveDeviceResult, type SaveStep, type RestoreOptions, type ByteSink, type WritableSinkOptions } from "./migrate/index.js";
export type { SaveOptions } from "./protocol/save.js";
export type { SaveV2Options } from "./protocol/v2/save.js";
export type { ResumeOptions } from "./protocol/resume.js";
export type { Phase, MigrationProtocol } from "./protocol/types.js";
export type { Progress, ProgressListener, SaveSummary, ResumeSummary } from "./protocol/progress.js";
export type { PrecopyPolicy, StopSignal } from "./protocol/policy.js";

// Several devices that migrate together: one stream, one pre-copy policy, one stop-and-copy
// window; on the destination all start only after the whole stream verified. StreamDemux is
// the destination's split of such a stream, for driving the devices by hand (resumeGroup in /protocol).
export { saveDevices, restoreDevices, StreamDemux, type SaveDevicesMember, type SaveDevicesOptions, type SaveDevicesResult, type SavedDevice, type RestoreDevicesMember, type RestoreDevicesOptions, type RestoreDevicesResult, type RestoredDevice, type StreamDemuxOptions, type StreamHead, type StreamDevice } from "./migrate/index.js";
export type { GroupSaveOptions } from "./protocol/group.js";

// Devices: a spec string, or a transport by hand — a v1 migration region (RegionIO) or a v2
// device (MigrationDevice); anything implementing either works too.
export type { RegionIO } from "./protocol/region-io.js";
export type { MigrationDevice } from "./protocol/v2/device-io.js";
export type { MigratableDevice } from "./protocol/generation.js";
export { openDevice, type DeviceSpec, type OpenedDevice } from "./transport/spec.js";
export { connectVfioUser, VfioUserRegion, type ConnectOptions, type DiscoveredRegion, type VfioUserInfo } from "./transport/vfio-user/client.js";
export { VfioUserServer, type ServedVendor, type VfioUserServerOptions } from "./transport/vfio-user/server.js";
export { FdRegion, type FdRegionOptions, type FdSource } from "./transport/fd/region.js";
export { findMigrationRegion, queryRegionInfo, type RegionInfoQuery } from "./transport/region-info.js";
export { openVfioUser, VfioUserMigration, type OpenOptions, type V2Declarations } from "./transport/vfio-user/migration.js";
export { V2Handler, type V2HandlerOptions } from "./transport/vfio-user/server-v2.js";
export { KernelMigration, type Syscalls } from "./transport/kernel/device.js";
export { denoSyscalls } from "./transport/kernel/ioctl-deno.js";
export { HandedOverDataFd } from "./transport/fd/data-fd.js";
