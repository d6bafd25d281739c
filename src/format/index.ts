// The stream format (docs/FORMAT.md): encoder, decoder, Web Streams and the
// shapes a caller needs.

export type { ChunkCoder, ChunkDecodeRequest, ChunkDecoder, CodingPool } from "./chunk-coders.js";
export { type DecoderOptions, decodeStream, decodeStreamAsync, StreamDecoder, verifyStream } from "./decoder.js";
export {
  type DeviceWriter,
  type EncoderOptions,
  type EncoderStats,
  encodeStream,
  encodeStreamAsync,
  StreamEncoder,
} from "./encoder.js";
export type { DecoderLimits } from "./limits.js";
export {
  type DecoderStreamOptions,
  type EncoderStreamOptions,
  MigrationDecoderStream,
  MigrationEncoderStream,
} from "./streams.js";
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
} from "./types.js";
