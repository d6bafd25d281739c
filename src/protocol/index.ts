// The VFIO migration protocol drivers (user side): v1 migration region and v2 device feature + data stream.
export * from "./constants.js";
export { readData, writeData } from "./data.js";
export { restartSource, resumeAny, saveAny, startAny, stopResumedAny } from "./drive.js";
export { generationName, generationOf, isMigrationDevice, type MigratableDevice, protocolOf } from "./generation.js";
export {
  type GroupResumeMember,
  type GroupResumeOptions,
  type GroupResumeSummary,
  type GroupSaveMember,
  type GroupSaveOptions,
  type GroupSaveSummary,
  resumeGroup,
  saveGroup,
} from "./group.js";
export {
  DEFAULT_MAX_PRECOPY_ITERATIONS,
  Precopy,
  type PrecopyControl,
  type PrecopyEnd,
  type PrecopyPolicy,
  type StopSignal,
} from "./policy.js";
export { GROUP_POLL_MS, PrecopyGroup } from "./precopy-group.js";
export type { PhaseCount, Progress, ProgressListener, ResumeSummary, SaveSummary } from "./progress.js";
export { ERRNO, type ErrnoName, errnoName, type RegionIO } from "./region-io.js";
export { MIN_ACCESS, Registers } from "./registers.js";
export { type ResumeOptions, resume, startResumed, stopResumed } from "./resume.js";
export { type SaveOptions, save } from "./save.js";
export { CLEAR_LOW, KEEP_ALL, setDeviceState } from "./state.js";
export type { MigrationProtocol, Phase, ResumeItem, SaveSink } from "./types.js";
/** The VFIO v2 driver: saveV2 / resumeV2 over a MigrationDevice (device feature state machine and data stream), and its constants. */
export * as v2 from "./v2/index.js";
