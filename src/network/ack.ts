// The destination's answer to a network save: once the stream's STREAM_END
// verified and the device took the state (or at the first failure) the
// destination sends one JSON line back on the same connection saying whether
// the device took the state. The source keeps its device stopped only on
// `ok: true`; otherwise it puts it back in RUNNING. A success may still carry
// `trailingBytes`: bytes that followed STREAM_END on the connection, which the
// source reports as an error — without undoing the restore.
import { ERROR_CODES, type ErrorCode, MigstreamError } from "../errors.js";
import { MAX_DEVICES } from "../format/constants.js";

/** Longest ack line accepted (bytes, newline included): room for a device entry of each of MAX_DEVICES devices. */
export const MAX_ACK_BYTES = 512 << 10;
/** Longest error message carried in an ack (characters). */
export const MAX_ACK_MESSAGE = 1000;

/**
 * One device of a multi-device restore, in the order the destination paired
 * them (the stream's): whether it was started, what it took, and how long
 * before the ack was sent it entered RUNNING (the source subtracts it from
 * the ack's arrival to end that device's downtime).
 */
export interface AckDevice {
  id: number;
  started: boolean;
  transactions: number;
  bytes: number;
  runningMs?: number;
}

export type Ack =
  | { ok: true; started: boolean; transactions: number; bytes: number; devices?: AckDevice[]; trailingBytes?: number }
  | { ok: false; code: ErrorCode; message: string; offset?: number; frame?: number; busy?: boolean };

/** What a busy destination answers a second source (with `busy: true`, so that the source retries). */
export const BUSY_MESSAGE = "the destination is busy with another source";

const KNOWN_CODES: ReadonlySet<string> = new Set<ErrorCode>(ERROR_CODES);

/**
 * The success ack of a multi-device restore: the totals (started: all of
 * them), and each device with how long ago (performance.now() clock) it
 * entered RUNNING.
 */
export function devicesAck(
  devices: readonly { id: number; started: boolean; transactions: number; bytes: number; startedAt: number }[],
): Ack & { ok: true } {
  const now = performance.now();
  return {
    ok: true,
    started: devices.every((d) => d.started),
    transactions: devices.reduce((a, d) => a + d.transactions, 0),
    bytes: devices.reduce((a, d) => a + d.bytes, 0),
    devices: devices.map((d) => ({
      id: d.id,
      started: d.started,
      transactions: d.transactions,
      bytes: d.bytes,
      ...(d.started ? { runningMs: now - d.startedAt } : {}),
    })),
  };
}

/** The failure ack for `e`. */
export function failureAck(e: unknown): Ack {
  if (e instanceof MigstreamError) {
    return { ok: false, code: e.code, message: e.message.slice(0, MAX_ACK_MESSAGE), offset: e.offset, frame: e.frame };
  }
  return {
    ok: false,
    code: "INTERNAL",
    message: (e instanceof Error ? e.message : String(e)).slice(0, MAX_ACK_MESSAGE),
  };
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
    const ack: Ack = {
      ok: true,
      started: v.started === true,
      transactions: num(v.transactions) ?? 0,
      bytes: num(v.bytes) ?? 0,
    };
    const devices = ackDevices(v.devices);
    const trailing = num(v.trailingBytes);
    return { ...ack, ...(devices ? { devices } : {}), ...(trailing ? { trailingBytes: trailing } : {}) };
  }
  const code = typeof v.code === "string" && KNOWN_CODES.has(v.code) ? (v.code as ErrorCode) : "INTERNAL";
  const message = typeof v.message === "string" ? v.message.slice(0, MAX_ACK_MESSAGE) : "no reason given";
  return {
    ok: false,
    code,
    message,
    offset: num(v.offset),
    frame: num(v.frame),
    ...(v.busy === true ? { busy: true } : {}),
  };
}

/**
 * The error a success ack with trailing bytes stands for: the restore stands
 * (the destination took the state), but something after the stream's end
 * reached the destination — not from this source, which sends nothing after
 * STREAM_END.
 */
export function trailingError(ack: Ack & { ok: true }): MigstreamError | null {
  if (!ack.trailingBytes) return null;
  const many = (ack.devices?.length ?? 1) > 1;
  const took = many
    ? `its ${ack.devices!.length} devices ${ack.started ? "RUNNING" : "not started"}`
    : `device ${ack.started ? "RUNNING" : "left in RESUMING"}`;
  return new MigstreamError(
    "FORMAT",
    `the destination took the state (${took}), but ${ack.trailingBytes} bytes followed the end of the stream on the connection (not sent by this source: something on the path added them); the source ${many ? "devices stay" : "device stays"} stopped`,
    { field: "trailing" },
  );
}

/** An ack's per-device entries (at most MAX_DEVICES; TRANSPORT for a malformed one), or undefined without any. */
function ackDevices(x: unknown): AckDevice[] | undefined {
  if (x === undefined) return undefined;
  const bad = () => new MigstreamError("TRANSPORT", "the destination's ack holds a malformed device list");
  if (!Array.isArray(x) || x.length > MAX_DEVICES) throw bad();
  const count = (n: unknown) => (typeof n === "number" && Number.isSafeInteger(n) && n >= 0 ? n : undefined);
  return x.map((d: Record<string, unknown>) => {
    if (d === null || typeof d !== "object") throw bad();
    const id = count(d.id);
    const transactions = count(d.transactions);
    const bytes = count(d.bytes);
    if (
      id === undefined ||
      id > 0xffff ||
      transactions === undefined ||
      bytes === undefined ||
      typeof d.started !== "boolean"
    )
      throw bad();
    const ms =
      typeof d.runningMs === "number" && Number.isFinite(d.runningMs) && d.runningMs >= 0 ? d.runningMs : undefined;
    return { id, started: d.started, transactions, bytes, ...(ms === undefined ? {} : { runningMs: ms }) };
  });
}

/** The error a failure ack stands for, on the source side. */
export function ackError(ack: Ack & { ok: false }): MigstreamError {
  return new MigstreamError(ack.code, `the destination failed: "${ack.message}"`, {
    offset: ack.offset,
    frame: ack.frame,
  });
}
