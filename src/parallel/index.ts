// Parallel chunk coding: a worker pool (Node worker_threads, Deno and browser
// module Workers) with an ordered, back-pressured pipeline.
export {
  WorkerPool,
  DEFAULT_IN_FLIGHT_PER_THREAD,
  DEFAULT_JOB_TIMEOUT_MS,
  WORKER_QUEUE_DEPTH,
  WORKER_START_TIMEOUT_MS,
  type PoolOptions,
} from "./pool.js";
export { OrderedPipeline } from "./ordered.js";
export { availableCores, MAX_THREADS } from "./platform.js";
export { FAULT_ENV, FAULT_EXIT_CODE } from "./faults.js";
export type {
  CodecChoice,
  DecodeRequest,
  EncodedChunk,
  EncodeOptions,
  FaultPlan,
  PoolJob,
  ResultOf,
  TransferOptions,
} from "./jobs.js";
