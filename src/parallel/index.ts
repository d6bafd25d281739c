// The "vfio-migstream/pool" entry: a worker pool (Node worker_threads, Deno
// and browser module Workers) that codes and decodes chunks on every core.
// Pass it as the `pool` option of StreamEncoder / StreamDecoder (and of
// everything built on them); it also runs jobs of its own, in order or not.

export type { AutoContext } from "../codec/auto/decide.js";
export type { CodedChunk } from "../codec/coder.js";
export type { ChunkCoder, ChunkDecodeRequest, ChunkDecoder, CodingPool } from "../format/chunk-coders.js";
export type { PoolCoderOptions, PoolDecoderOptions } from "./coder.js";
export type {
  BatchItem,
  BatchResult,
  DecodeRequest,
  DecodeSpan,
  EncodeOptions,
  EncodeSpan,
  FaultPlan,
  PoolJob,
  ResultOf,
  TransferOptions,
} from "./jobs.js";
export { availableCores, MAX_THREADS } from "./platform.js";
export { type PoolOptions, WorkerPool } from "./pool.js";
