// The VFIO v1 migration-region protocol driver (user side).
export * from "./constants.js";
export { type RegionIO, ERRNO, type ErrnoName, errnoName } from "./region-io.js";
export type { Phase, SaveSink, ResumeItem } from "./types.js";
export { Registers, MIN_ACCESS } from "./registers.js";
export { readData, writeData } from "./data.js";
export { setDeviceState, KEEP_ALL, CLEAR_LOW } from "./state.js";
export { Precopy, DEFAULT_MAX_PRECOPY_ITERATIONS, type PrecopyPolicy, type PrecopyEnd, type StopSignal } from "./policy.js";
export type { Progress, ProgressListener, PhaseCount, SaveSummary, ResumeSummary } from "./progress.js";
export { save, type SaveOptions } from "./save.js";
export { resume, startResumed, type ResumeOptions } from "./resume.js";
