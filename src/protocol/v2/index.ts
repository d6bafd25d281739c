// The VFIO migration v2 driver (user side): device-feature state machine and data stream.
export * from "./constants.js";
export { pathTo, stateSupported, hasSession, sessionEffect, isSaving } from "./fsm.js";
export type { MigrationDevice, DataChannel, PrecopyInfo } from "./device-io.js";
export { saveV2, backToRunning, type SaveV2Options } from "./save.js";
export { resumeV2, startResumedV2, stopDestination } from "./resume.js";
export { checkMigration, migrationFlagNames } from "./support.js";
