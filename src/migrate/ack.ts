// The destination's answer to a network save: once the stream's STREAM_END
// verified and the device took the state (or at the first failure) the
// destination sends one JSON line back on the same connection saying whether
// the device took the state. The source keeps its device stopped only on
// `ok: true`; otherwise it puts it back in RUNNING. A success may still carry
// `trailingBytes`: bytes that followed STREAM_END on the connection, which the
// source reports as an error — without undoing the restore.
import { MigstreamError, type ErrorCode } from "../errors.js";

/** Longest ack line accepted (bytes, newline included). */
export const MAX_ACK_BYTES = 16 << 10;
/** Longest error message carried in an ack (characters). */
export const MAX_ACK_MESSAGE = 1000;

export type Ack =
  | { ok: true; started: boolean; transactions: number; bytes: number; trailingBytes?: number }
  | { ok: false; code: ErrorCode; message: string; offset?: number; frame?: number; busy?: boolean };

/** What a busy destination answers a second source (with `busy: true`, so that the source retries). */
export const BUSY_MESSAGE = "the destination is busy with another source";

const KNOWN_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  "BAD_MAGIC", "VERSION", "CHECKSUM", "TRUNCATED", "SEQUENCE", "LIMIT", "MAC", "CODEC", "FORMAT",
  "PROTOCOL", "DEVICE", "TRANSPORT", "TIMEOUT", "ABORTED", "USAGE", "IO", "INTERNAL",
]);

/** The failure ack for `e`. */
export function failureAck(e: unknown): Ack {
  if (e instanceof MigstreamError) {
    return { ok: false, code: e.code, message: e.message.slice(0, MAX_ACK_MESSAGE), offset: e.offset, frame: e.frame };
  }
  return { ok: false, code: "INTERNAL", message: (e instanceof Error ? e.message : String(e)).slice(0, MAX_ACK_MESSAGE) };
}

export function encodeAck(ack: Ack): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify({ migstream: "ack", ...ack })}\n`);
}

/** Parses one ack line (without its newline). TRANSPORT for anything malformed. */
export function parseAck(line: string): Ack {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(line) as Record<string, unknown>;
  } catch {
    throw new MigstreamError("TRANSPORT", "the destination answered something that is not a migstream ack");
  }
  if (v === null || typeof v !== "object" || v.migstream !== "ack" || typeof v.ok !== "boolean") {
    throw new MigstreamError("TRANSPORT", "the destination answered something that is not a migstream ack");
  }
  const num = (x: unknown) => (typeof x === "number" && Number.isSafeInteger(x) && x >= 0 ? x : undefined);
  if (v.ok) {
    const ack: Ack = { ok: true, started: v.started === true, transactions: num(v.transactions) ?? 0, bytes: num(v.bytes) ?? 0 };
    const trailing = num(v.trailingBytes);
    return trailing ? { ...ack, trailingBytes: trailing } : ack;
  }
  const code = typeof v.code === "string" && KNOWN_CODES.has(v.code) ? (v.code as ErrorCode) : "INTERNAL";
  const message = typeof v.message === "string" ? v.message.slice(0, MAX_ACK_MESSAGE) : "no reason given";
  return { ok: false, code, message, offset: num(v.offset), frame: num(v.frame), ...(v.busy === true ? { busy: true } : {}) };
}

/**
 * The error a success ack with trailing bytes stands for: the restore stands
 * (the destination took the state), but something after the stream's end
 * reached the destination — not from this source, which sends nothing after
 * STREAM_END.
 */
export function trailingError(ack: Ack & { ok: true }): MigstreamError | null {
  if (!ack.trailingBytes) return null;
  return new MigstreamError(
    "FORMAT",
    `the destination took the state (device ${ack.started ? "RUNNING" : "left in RESUMING"}), but ${ack.trailingBytes} bytes followed the end of the stream on the connection (not sent by this source: something on the path added them); the source device stays stopped`,
    { field: "trailing" },
  );
}

/** The error a failure ack stands for, on the source side. */
export function ackError(ack: Ack & { ok: false }): MigstreamError {
  return new MigstreamError(ack.code, `the destination failed: "${ack.message}"`, { offset: ack.offset, frame: ack.frame });
}
