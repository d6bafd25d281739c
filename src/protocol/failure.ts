// Turning whatever a protocol step threw into the library's typed error, with
// the step and field named, and attaching what recovery did afterwards.
import { MigstreamError } from "../errors.js";

/** Wraps `e` (thrown while performing `step`) as a MigstreamError naming the step. */
export function atStep(e: unknown, step: string, field?: string): MigstreamError {
  if (e instanceof MigstreamError) {
    return new MigstreamError(e.code, `${step}: ${e.message}`, {
      step,
      field: field ?? e.field,
      errno: e.errno,
      offset: e.offset,
      cause: e,
    });
  }
  const message = e instanceof Error ? e.message : String(e);
  return new MigstreamError("TRANSPORT", `${step}: ${message}`, { step, field, cause: e });
}

/** A PROTOCOL error: the device broke the region protocol. */
export function protocolError(step: string, field: string, message: string): MigstreamError {
  return new MigstreamError("PROTOCOL", `${step}: ${message}`, { step, field });
}

/** The same error with `note` appended to its message (e.g. what recovery did). */
export function withNote(e: MigstreamError, note: string): MigstreamError {
  if (note === "") return e;
  return new MigstreamError(e.code, `${e.message}; ${note}`, {
    step: e.step,
    field: e.field,
    errno: e.errno,
    offset: e.offset,
    frame: e.frame,
    device: e.device,
    cause: e.cause,
  });
}

/** Short text of any thrown value, for notes. */
export function describe(e: unknown): string {
  if (e instanceof MigstreamError) return e.errno ? `${e.message} (${e.errno})` : e.message;
  return e instanceof Error ? e.message : String(e);
}
