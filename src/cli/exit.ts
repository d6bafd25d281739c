// Exit codes of the migstream CLI (documented in the README).
import { type ErrorCode, MigstreamError, STREAM_ERROR_CODES } from "../errors.js";

export const EXIT_OK = 0;
export const EXIT_USAGE = 1;
export const EXIT_STREAM = 2; // stream integrity or format error
export const EXIT_DEVICE = 3; // device or protocol error
export const EXIT_IO = 4; // I/O error (files, sockets)

const STREAM_CODES: ReadonlySet<ErrorCode> = new Set(STREAM_ERROR_CODES);
const DEVICE_CODES: ReadonlySet<ErrorCode> = new Set(["PROTOCOL", "DEVICE", "ABORTED"]);

/** Maps any thrown value to an exit code. */
export function exitCodeFor(e: unknown): number {
  if (e instanceof MigstreamError) {
    if (e.code === "USAGE") return EXIT_USAGE;
    if (STREAM_CODES.has(e.code)) return EXIT_STREAM;
    if (DEVICE_CODES.has(e.code)) return EXIT_DEVICE;
    return EXIT_IO; // IO, TRANSPORT, TIMEOUT, INTERNAL
  }
  if (e && typeof e === "object" && "code" in e && typeof (e as { code: unknown }).code === "string") {
    return EXIT_IO; // Node system errors (ENOENT, EPIPE, ...)
  }
  return EXIT_IO;
}

/** The one line a failing command prints (without the `migstream: ` prefix). */
export function errorLine(e: unknown): string {
  if (e instanceof MigstreamError) return e.toLine();
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return typeof code === "string" ? `IO (${code}): ${e.message}` : `INTERNAL: ${e.message}`;
  }
  return `INTERNAL: ${String(e)}`;
}

/** A usage error. */
export function usage(message: string): MigstreamError {
  return new MigstreamError("USAGE", message);
}
