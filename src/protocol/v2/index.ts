// The VFIO migration v2 driver (user side): device-feature state machine and data stream.
export * from "./constants.js";
export type { DataChannel, MigrationDevice, PrecopyInfo } from "./device-io.js";
export { hasSession, isSaving, pathTo, sessionEffect, stateSupported } from "./fsm.js";
export { resumeV2, startResumedV2, stopDestination } from "./resume.js";
export { backToRunning, type SaveV2Options, saveV2 } from "./save.js";
export { checkMigration, migrationFlagNames } from "./support.js";
