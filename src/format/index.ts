// The stream format (docs/FORMAT.md): encoder, decoder, Web Streams and the
// shapes a caller needs.
export { StreamEncoder, encodeStream, encodeStreamAsync, type EncoderOptions, type DeviceWriter, type EncoderStats } from "./encoder.js";
export { StreamDecoder, decodeStream, decodeStreamAsync, verifyStream, type DecoderOptions } from "./decoder.js";
export type { ChunkCoder, ChunkDecoder, ChunkDecodeRequest, CodingPool } from "./chunk-coders.js";
export type { DecoderLimits } from "./limits.js";
export type { DeviceInfo, DeviceItem, DeviceInput, DeviceTrailer, StreamTrailer, DecodedDevice, DecodedStream, DecodeEvent, StreamHeader } from "./types.js";
export { MigrationEncoderStream, MigrationDecoderStream, type EncoderStreamOptions, type DecoderStreamOptions } from "./streams.js";
