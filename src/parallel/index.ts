// Parallel chunk coding: a worker pool (Node worker_threads, Deno and browser
// module Workers) with an ordered, back-pressured pipeline; poolCoder plugs it
// into a StreamEncoder, and SinkMeter tells `auto` how fast the output drains.
export {
  WorkerPool,
  DEFAULT_IN_FLIGHT_PER_THREAD,
  DEFAULT_JOB_TIMEOUT_MS,
  WORKER_QUEUE_DEPTH,
  WORKER_START_TIMEOUT_MS,
  type PoolOptions,
} from "./pool.js";
export { OrderedPipeline } from "./ordered.js";
export { poolCoder, poolDecoder, UNSETTLED_IN_FLIGHT, type PoolCoderOptions, type PoolDecoderOptions } from "./coder.js";
export { BATCH_BYTES, BATCH_MAX_CHUNKS } from "./batch.js";
export {
  SinkMeter,
  throttle,
  SINK_BOUND_SHARE,
  SINK_BUSY_SHARE,
  SINK_FIRST_PART,
  SINK_MIN_BLOCK_MS,
  SINK_FREE_SHARE,
  SINK_RATE_GROWTH,
  SINK_WINDOW_BYTES,
  SINK_WINDOW_MAX_WRITES,
  SINK_WINDOW_MS,
  THROTTLE_BUFFER,
  type SinkMeterOptions,
  type ThrottledSink,
  type ThrottleOptions,
} from "./rate.js";
export { availableCores, MAX_THREADS } from "./platform.js";
export { FAULT_ENV, FAULT_EXIT_CODE } from "./faults.js";
export type {
  BatchItem,
  BatchResult,
  DecodeSpan,
  EncodeSpan,
  CodecChoice,
  DecodeRequest,
  EncodedChunk,
  EncodeOptions,
  FaultPlan,
  PoolJob,
  ResultOf,
  TransferOptions,
} from "./jobs.js";
