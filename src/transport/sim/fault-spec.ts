// Fault specs for `migstream sim serve --fault`: one armed fault of the
// simulated device as text,
//   POINT[,nth=N][,errno=NAME|N][,then=stay|error][,from=STATE][,to=STATE][,short=N][,value=N]
// where POINT is a fault point with '-' for the space ("read-data_offset",
// "write-device_state", "reset"). States are names (STOP, RUNNING, SAVING,
// PRECOPY for SAVING|RUNNING, RESUMING) or numbers 0–7.

import { FAULT_POINTS, type Fault, type FaultPoint } from "../../device/index.js";
import { MIGRATION_FAULT_POINTS, type MigrationFault, type MigrationFaultPoint } from "../../device/migration-sim.js";
import { MigstreamError } from "../../errors.js";
import { ERRNO } from "../../protocol/region-io.js";
import { parseMigState } from "../../protocol/v2/constants.js";

export const FAULT_FORM = "POINT[,nth=N][,errno=NAME|N][,then=stay|error][,from=STATE][,to=STATE][,short=N][,value=N]";

const STATES: Record<string, number> = { STOP: 0, RUNNING: 1, SAVING: 2, PRECOPY: 3, RESUMING: 4 };
/** Largest errno accepted (Linux errnos are below 4096). */
const MAX_ERRNO = 4095;
/** Largest nth / short accepted. */
const MAX_COUNT = 2 ** 31;

/** The point names as written on the command line. */
export const FAULT_POINT_NAMES = FAULT_POINTS.map((p) => p.replace(" ", "-"));

function usage(spec: string, why: string): MigstreamError {
  return new MigstreamError(
    "USAGE",
    `bad fault '${spec}': ${why} (form: ${FAULT_FORM}; points: ${FAULT_POINT_NAMES.join(", ")})`,
  );
}

function count(spec: string, key: string, text: string, min: number): number {
  if (!/^\d+$/.test(text)) throw usage(spec, `${key}=${text} is not a whole number`);
  const n = Number(text);
  if (n < min || n > MAX_COUNT) throw usage(spec, `${key}=${text} is outside ${min}..${MAX_COUNT}`);
  return n;
}

function state(spec: string, key: string, text: string): number {
  const up = text.toUpperCase();
  if (up in STATES) return STATES[up];
  if (/^[0-7]$/.test(text)) return Number(text);
  throw usage(spec, `${key}=${text} is not a state (${Object.keys(STATES).join(", ")} or 0-7)`);
}

function errno(spec: string, text: string): number {
  const up = text.toUpperCase();
  if (up in ERRNO) return ERRNO[up as keyof typeof ERRNO];
  if (/^\d+$/.test(text) && Number(text) >= 1 && Number(text) <= MAX_ERRNO) return Number(text);
  throw usage(spec, `errno=${text} is neither a known name (${Object.keys(ERRNO).join(", ")}) nor 1..${MAX_ERRNO}`);
}

/** The v2 point names as written on the command line. */
export const MIGRATION_FAULT_POINT_NAMES = MIGRATION_FAULT_POINTS.map((p) => p.replace(" ", "-"));
export const MIGRATION_FAULT_FORM = "POINT[,nth=N][,errno=NAME|N][,then=stay|error][,from=STATE][,to=STATE][,short=N]";

/**
 * Parses one v2 fault spec: POINT is a v2 point with '-' for the space
 * (set-state, read-data, get-migration, ...), states are v2 names (STOP,
 * RUNNING, STOP_COPY, RESUMING, PRE_COPY, ...) or 0–7.
 */
export function parseMigrationFault(spec: string): MigrationFault {
  const bad = (why: string) =>
    new MigstreamError(
      "USAGE",
      `bad v2 fault '${spec}': ${why} (form: ${MIGRATION_FAULT_FORM}; points: ${MIGRATION_FAULT_POINT_NAMES.join(", ")})`,
    );
  const [head, ...rest] = spec.split(",").map((s) => s.trim());
  const point = head.replace(/-/, " ");
  if (!(MIGRATION_FAULT_POINTS as readonly string[]).includes(point)) throw bad(`unknown point '${head}'`);
  const f: MigrationFault = { at: point as MigrationFaultPoint };
  const seen = new Set<string>();
  for (const part of rest) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw bad(`'${part}' is not key=value`);
    const key = part.slice(0, eq);
    const value = part.slice(eq + 1);
    if (seen.has(key)) throw bad(`'${key}' given twice`);
    seen.add(key);
    if (key === "nth") f.nth = count(spec, key, value, 1);
    else if (key === "short") f.short = count(spec, key, value, 1);
    else if (key === "errno") f.errno = errno(spec, value);
    else if (key === "then") {
      if (value !== "stay" && value !== "error") throw bad(`then=${value} must be stay or error`);
      f.then = value;
    } else if (key === "from" || key === "to") {
      const s = parseMigState(value);
      if (s === undefined) throw bad(`${key}=${value} is not a v2 state`);
      f[key] = s;
    } else throw bad(`unknown key '${key}'`);
  }
  if ((f.then !== undefined || f.from !== undefined || f.to !== undefined) && f.at !== "set state")
    throw bad("then=, from= and to= apply to set-state only");
  if (f.short !== undefined && f.at !== "read data" && f.at !== "write data")
    throw bad("short= applies to read-data and write-data only");
  return f;
}

/** Parses one fault spec. */
export function parseFault(spec: string): Fault {
  const [head, ...rest] = spec.split(",").map((s) => s.trim());
  const point = head.replace(/^(read|write)[- ]/, "$1 ");
  if (!(FAULT_POINTS as readonly string[]).includes(point)) throw usage(spec, `unknown point '${head}'`);
  const f: Fault = { at: point as FaultPoint };
  const seen = new Set<string>();
  for (const part of rest) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw usage(spec, `'${part}' is not key=value`);
    const key = part.slice(0, eq);
    const value = part.slice(eq + 1);
    if (seen.has(key)) throw usage(spec, `'${key}' given twice`);
    seen.add(key);
    switch (key) {
      case "nth":
        f.nth = count(spec, key, value, 1);
        break;
      case "errno":
        f.errno = errno(spec, value);
        break;
      case "then":
        if (value !== "stay" && value !== "error") throw usage(spec, `then=${value} must be stay or error`);
        f.then = value;
        break;
      case "from":
        f.from = state(spec, key, value);
        break;
      case "to":
        f.to = state(spec, key, value);
        break;
      case "short":
        f.short = count(spec, key, value, 1);
        break;
      case "value":
        if (!/^(0x[0-9a-f]+|\d+)$/i.test(value)) throw usage(spec, `value=${value} is not a number`);
        f.value = BigInt(value);
        break;
      default:
        throw usage(spec, `unknown key '${key}'`);
    }
  }
  if ((f.then !== undefined || f.from !== undefined || f.to !== undefined) && f.at !== "write device_state") {
    throw usage(spec, "then=, from= and to= apply to write-device_state only");
  }
  if ((f.short !== undefined || f.value !== undefined) && !f.at.startsWith("read "))
    throw usage(spec, "short= and value= apply to reads only");
  return f;
}
