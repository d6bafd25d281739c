// The stream format (docs/FORMAT.md): encoder, decoder, Web Streams and the
// constants and shapes a caller needs.
export {
  StreamEncoder,
  encodeStream,
  encodeStreamAsync,
  CODER_IN_FLIGHT,
  type EncoderOptions,
  type ChunkCoder,
  type DeviceWriter,
  type EncoderStats,
} from "./encoder.js";
export {
  StreamDecoder,
  decodeStream,
  decodeStreamAsync,
  verifyStream,
  MAC_BATCH_FRAMES,
  MAC_BATCH_BYTES,
  type DecoderOptions,
} from "./decoder.js";
export {
  ParallelDecoder,
  PARALLEL_DECODE_IN_FLIGHT,
  type ChunkDecoder,
  type ChunkDecodeRequest,
  type ParallelDecoderOptions,
} from "./parallel-decode.js";
export { FORMAT_LIMITS, resolveLimits, type DecoderLimits } from "./limits.js";
export type {
  DeviceInfo,
  DeviceItem,
  DeviceInput,
  DeviceTrailer,
  StreamTrailer,
  DecodedDevice,
  DecodedStream,
  DecodeEvent,
  StreamHeader,
} from "./types.js";
export * from "./constants.js";
export { OUTPUT_BLOCK_SIZE } from "./builder.js";
export {
  MigrationEncoderStream,
  MigrationDecoderStream,
  decodeEvents,
  type EncoderStreamOptions,
  type DecoderStreamOptions,
} from "./streams.js";
/** Loads the kernels and zstd (where it can load); the synchronous one-shot API needs it for zstd. */
export { ready } from "../codec/index.js";
