// vfio-migstream library entry.
export * from "./kernels/index.js";
export { MigstreamError, isMigstreamError, type ErrorCode, type ErrorDetails } from "./errors.js";
