// Device specs: one string names the migration region to drive.
//   sim:state=64MiB,seed=1,txn=1MiB,...     in-process simulated device (keys: sim/options.ts)
//   vfio-user:/path/to/dev.sock[,timeout=MS][,access=N][,stopcopy=restarts][,write-errors=applied]
//                                            vfio-user server on a UNIX socket, v1 or v2 (detected);
//                                            the last three declare v2 device behaviours
//   fd:N,offset=0x...,size=0x...            inherited VFIO device fd (see fd/region.ts)
//   file:/path,offset=...[,size=...]        a file (or /proc/PID/fd/N) opened by path
// Numbers are decimal or 0x-hex, sizes may end in KiB, MiB or GiB. A file path
// runs to the first comma.
import { MigstreamError } from "../errors.js";
import type { MigratableDevice } from "../protocol/generation.js";
import { HandedOverDataFd } from "./fd/data-fd.js";
import { FdRegion } from "./fd/region.js";
import { simDeviceOptions, simMigrationOptions, simProtocol } from "./sim/options.js";
import { parseSize } from "./size.js";
import { openVfioUser, type V2Declarations } from "./vfio-user/migration.js";

/** A parsed device spec (openDevice): which transport, and its options. */
export type DeviceSpec =
  | { kind: "sim"; options: Record<string, string> }
  | ({ kind: "vfio-user"; path: string; timeoutMs?: number } & V2Declarations)
  | { kind: "fd"; fd: number; offset: number; size: number }
  | { kind: "data-fd"; fd: number; restartsAtStopCopy?: boolean }
  | { kind: "file"; path: string; offset: number; size?: number };

/** An opened device: a v1 RegionIO or a v2 MigrationDevice, plus what it is and, where the device offers one, its state digest. */
export type OpenedDevice = MigratableDevice & {
  readonly label: string;
  stateDigest?(): Promise<bigint>;
};

export const SPEC_FORMS = [
  "sim:state=SIZE,seed=N,txn=SIZE,dirty=N,variant=A+B,empty=1",
  "vfio-user:/path.sock[,timeout=MS][,access=N][,stopcopy=restarts][,write-errors=applied]",
  "fd:N,offset=0xOFF,size=0xSIZE",
  "fd:N,protocol=v2[,stopcopy=restarts]",
  "file:/path,offset=OFF[,size=SIZE]",
];

function usage(spec: string, why: string): MigstreamError {
  return new MigstreamError("USAGE", `bad device spec '${spec}': ${why} (forms: ${SPEC_FORMS.join(" | ")})`);
}

/** `k=v,k=v` → record; rejects empty keys and duplicates. */
function keyValues(spec: string, parts: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of parts) {
    const eq = p.indexOf("=");
    if (eq <= 0) throw usage(spec, `'${p}' is not key=value`);
    const k = p.slice(0, eq).trim();
    if (k in out) throw usage(spec, `'${k}' given twice`);
    out[k] = p.slice(eq + 1).trim();
  }
  return out;
}

function only(spec: string, kv: Record<string, string>, allowed: string[]): void {
  for (const k of Object.keys(kv))
    if (!allowed.includes(k)) throw usage(spec, `unknown option '${k}' (known: ${allowed.join(", ")})`);
}

export function parseDeviceSpec(spec: string): DeviceSpec {
  const colon = spec.indexOf(":");
  if (colon <= 0) throw usage(spec, "missing 'kind:'");
  const kind = spec.slice(0, colon);
  const rest = spec.slice(colon + 1);
  const wrap = <T>(f: () => T): T => {
    try {
      return f();
    } catch (e) {
      throw e instanceof MigstreamError && e.code === "USAGE" && !e.message.startsWith("bad device spec")
        ? usage(spec, e.message)
        : e;
    }
  };
  switch (kind) {
    case "sim": {
      const options = rest.trim() === "" ? {} : keyValues(spec, rest.split(","));
      wrap(() => (simProtocol(options) === 2 ? simMigrationOptions(options) : simDeviceOptions(options))); // checked now, applied when opened
      return { kind, options };
    }
    case "vfio-user": {
      const [path, ...opts] = rest.split(",");
      if (!path) throw usage(spec, "missing socket path");
      const kv = keyValues(spec, opts);
      only(spec, kv, ["timeout", "access", "stopcopy", "write-errors"]);
      if (kv.stopcopy !== undefined && kv.stopcopy !== "restarts" && kv.stopcopy !== "continues")
        throw usage(spec, `stopcopy=${kv.stopcopy} is neither restarts nor continues`);
      if (kv["write-errors"] !== undefined && kv["write-errors"] !== "applied")
        throw usage(spec, `write-errors=${kv["write-errors"]} must be 'applied'`);
      return wrap(() => ({
        kind,
        path,
        ...(kv.timeout !== undefined ? { timeoutMs: parseSize(kv.timeout, "timeout") } : {}),
        ...(kv.access !== undefined ? { fixedAccess: parseSize(kv.access, "access") } : {}),
        ...(kv.stopcopy === "restarts" ? { restartsAtStopCopy: true } : {}),
        ...(kv["write-errors"] === "applied" ? { writeErrorsApplied: true } : {}),
      }));
    }
    case "fd": {
      const [n, ...opts] = rest.split(",");
      if (!/^\d+$/.test(n ?? "")) throw usage(spec, `'${n}' is not an fd number`);
      const kv = keyValues(spec, opts);
      if (kv.protocol === "v2") {
        // A v2 data fd the VMM handed over: no region, no offset.
        only(spec, kv, ["protocol", "stopcopy"]);
        if (kv.stopcopy !== undefined && kv.stopcopy !== "restarts" && kv.stopcopy !== "continues")
          throw usage(spec, `stopcopy=${kv.stopcopy} is neither restarts nor continues`);
        return { kind: "data-fd", fd: Number(n), ...(kv.stopcopy === "restarts" ? { restartsAtStopCopy: true } : {}) };
      }
      if (kv.protocol !== undefined && kv.protocol !== "v1")
        throw usage(spec, `protocol=${kv.protocol} is neither v1 nor v2`);
      delete kv.protocol;
      only(spec, kv, ["offset", "size"]);
      if (kv.offset === undefined || kv.size === undefined)
        throw usage(
          spec,
          "fd: needs offset= and size= (from VFIO_DEVICE_GET_REGION_INFO), or protocol=v2 for a v2 data fd",
        );
      return wrap(() => ({
        kind,
        fd: Number(n),
        offset: parseSize(kv.offset, "offset"),
        size: parseSize(kv.size, "size"),
      }));
    }
    case "file": {
      const [path, ...opts] = rest.split(",");
      if (!path) throw usage(spec, "missing file path");
      const kv = keyValues(spec, opts);
      only(spec, kv, ["offset", "size"]);
      return wrap(() => ({
        kind,
        path,
        offset: kv.offset === undefined ? 0 : parseSize(kv.offset, "offset"),
        ...(kv.size !== undefined ? { size: parseSize(kv.size, "size") } : {}),
      }));
    }
    default:
      throw usage(spec, `unknown kind '${kind}'`);
  }
}

/** Opens the device a spec (string or parsed) names. */
export async function openDevice(spec: string | DeviceSpec, opts: { timeoutMs?: number } = {}): Promise<OpenedDevice> {
  const s = typeof spec === "string" ? parseDeviceSpec(spec) : spec;
  switch (s.kind) {
    case "sim":
      // Loaded on demand: the simulated device is not needed for the other kinds.
      return (await import("./sim/open.js")).openSimDevice(s.options);
    case "vfio-user":
      return openVfioUser(s.path, {
        timeoutMs: s.timeoutMs ?? opts.timeoutMs,
        fixedAccess: s.fixedAccess,
        restartsAtStopCopy: s.restartsAtStopCopy,
        writeErrorsApplied: s.writeErrorsApplied,
      });
    case "fd":
      return FdRegion.open({ kind: "fd", fd: s.fd }, { offset: s.offset, size: s.size });
    case "data-fd":
      return HandedOverDataFd.open(s.fd, { restartsAtStopCopy: s.restartsAtStopCopy });
    case "file":
      return FdRegion.open({ kind: "file", path: s.path }, { offset: s.offset, size: s.size });
  }
}
