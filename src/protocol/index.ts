// The VFIO migration protocol drivers (user side): v1 migration region and v2 device feature + data stream.
export * from "./constants.js";
export { type RegionIO, ERRNO, type ErrnoName, errnoName } from "./region-io.js";
export type { Phase, SaveSink, ResumeItem, MigrationProtocol } from "./types.js";
export { Registers, MIN_ACCESS } from "./registers.js";
export { readData, writeData } from "./data.js";
export { setDeviceState, KEEP_ALL, CLEAR_LOW } from "./state.js";
export { Precopy, DEFAULT_MAX_PRECOPY_ITERATIONS, type PrecopyPolicy, type PrecopyEnd, type StopSignal, type PrecopyControl } from "./policy.js";
export type { Progress, ProgressListener, PhaseCount, SaveSummary, ResumeSummary } from "./progress.js";
export { save, type SaveOptions } from "./save.js";
export { resume, startResumed, stopResumed, type ResumeOptions } from "./resume.js";
export { type MigratableDevice, generationOf, isMigrationDevice, generationName, protocolOf } from "./generation.js";
export { saveAny, resumeAny, startAny, stopResumedAny, restartSource } from "./drive.js";
export { PrecopyGroup, GROUP_POLL_MS } from "./precopy-group.js";
export {
  saveGroup,
  resumeGroup,
  type GroupSaveMember,
  type GroupSaveOptions,
  type GroupSaveSummary,
  type GroupResumeMember,
  type GroupResumeOptions,
  type GroupResumeSummary,
} from "./group.js";
export * as v2 from "./v2/index.js";
