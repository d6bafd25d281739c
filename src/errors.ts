// One error class for the whole library. `code` is stable and machine-readable;
// the optional fields say where the problem was found.

/** The codes that mean the stream itself is bad: not ours, damaged, or not what it declares (CLI exit 2). */
export const STREAM_ERROR_CODES = [
  "BAD_MAGIC", // not a migstream stream (or mangled by a text transfer)
  "VERSION", // unsupported major version or unknown mandatory feature
  "CHECKSUM", // a checksum or digest did not match
  "TRUNCATED", // the stream ended early
  "SEQUENCE", // a frame is missing, repeated or out of order
  "LIMIT", // a declared or configured limit was exceeded
  "MAC", // authentication failed or a key is required
  "CODEC", // a coded payload could not be decoded, or a codec is unavailable
  "FORMAT", // a structurally invalid field
] as const;

/** Every error code, stable and machine-readable (README: exit codes by code). */
export const ERROR_CODES = [
  ...STREAM_ERROR_CODES,
  // driver and transports
  "PROTOCOL", // the device broke the region protocol
  "DEVICE", // the device returned an errno
  "TRANSPORT", // the region transport failed (socket, fd)
  "TIMEOUT",
  "ABORTED",
  // everything else
  "USAGE",
  "IO",
  "INTERNAL",
] as const;

/** Stable, machine-readable error codes (README: exit codes by code). */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Where a problem was found, as far as known. */
export interface ErrorDetails {
  /** Byte offset in the stream (or region) where the problem was found. */
  offset?: number;
  /** Frame sequence number in the stream. */
  frame?: number;
  /** Device id in the stream. */
  device?: number;
  /** The field or structure at fault. */
  field?: string;
  /** Protocol step (e.g. "save:read data_offset"). */
  step?: string;
  /** errno name reported by the device or OS (e.g. "EINVAL"). */
  errno?: string;
  cause?: unknown;
}

/** The one error type the library throws: a stable `code` and where the problem was found. */
export class MigstreamError extends Error {
  readonly code: ErrorCode;
  readonly offset?: number;
  readonly frame?: number;
  readonly device?: number;
  readonly field?: string;
  readonly step?: string;
  readonly errno?: string;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "MigstreamError";
    this.code = code;
    this.offset = details.offset;
    this.frame = details.frame;
    this.device = details.device;
    this.field = details.field;
    this.step = details.step;
    this.errno = details.errno;
  }

  /** One line: `CODE at byte N (frame F, field X): message`. */
  toLine(): string {
    const where: string[] = [];
    if (this.step !== undefined) where.push(`step ${this.step}`);
    if (this.frame !== undefined) where.push(`frame ${this.frame}`);
    if (this.device !== undefined) where.push(`device ${this.device}`);
    if (this.field !== undefined) where.push(`field ${this.field}`);
    if (this.errno !== undefined) where.push(this.errno);
    const at = this.offset !== undefined ? ` at byte ${this.offset}` : "";
    return `${this.code}${at}${where.length ? ` (${where.join(", ")})` : ""}: ${this.message}`;
  }
}

/** True when `e` is a MigstreamError (with `code`, when given). */
export function isMigstreamError(e: unknown, code?: ErrorCode): e is MigstreamError {
  return e instanceof MigstreamError && (code === undefined || e.code === code);
}
