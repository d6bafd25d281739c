// Shared pieces of the v2 driver tests: simulated v2 devices behind the
// in-process transport (kernel semantics), a call trace, and the round trip
// with the checks every correct run must pass.
import { expect } from "vitest";
import {
  type MigrationFault,
  MigrationSimDevice,
  type MigrationSimOptions,
} from "../../../src/device/migration-sim.js";
import { errnoName } from "../../../src/protocol/region-io.js";
import type { ResumeOptions } from "../../../src/protocol/resume.js";
import type { MigState } from "../../../src/protocol/v2/constants.js";
import { MIG_STATE, parseMigState } from "../../../src/protocol/v2/constants.js";
import type { DataChannel, MigrationDevice } from "../../../src/protocol/v2/device-io.js";
import { resumeV2 } from "../../../src/protocol/v2/resume.js";
import { type SaveV2Options, saveV2 } from "../../../src/protocol/v2/save.js";
import { InProcessMigration, type InProcessMigrationOptions } from "../../../src/transport/in-process-v2.js";
import { FAULT_ERRNOS, ItemSink } from "../helpers.js";

export const KiB = 1024;

/** One call the driver made on the device or a channel. */
export interface Call {
  op:
    | "get migration"
    | "get state"
    | "set state"
    | "read data"
    | "write data"
    | "precopy info"
    | "data size"
    | "reset"
    | "close";
  to?: MigState;
  size?: number;
  /** For reads: bytes returned. */
  got?: number;
}

/** A MigrationDevice that records every call before passing it on. */
export class TraceDevice implements MigrationDevice {
  readonly generation = 2 as const;
  readonly calls: Call[] = [];
  stopCopySize?: () => Promise<number>;
  constructor(readonly inner: MigrationDevice) {
    if (inner.stopCopySize) {
      this.stopCopySize = () => {
        this.calls.push({ op: "data size" });
        return inner.stopCopySize!();
      };
    }
  }
  get maxAccess() {
    return this.inner.maxAccess;
  }
  get fixedAccess() {
    return this.inner.fixedAccess;
  }
  get restartsAtStopCopy() {
    return this.inner.restartsAtStopCopy;
  }
  get writeErrorsApplied() {
    return this.inner.writeErrorsApplied;
  }
  migrationFlags() {
    this.calls.push({ op: "get migration" });
    return this.inner.migrationFlags();
  }
  getState() {
    this.calls.push({ op: "get state" });
    return this.inner.getState();
  }
  async setState(to: MigState) {
    this.calls.push({ op: "set state", to });
    const ch = await this.inner.setState(to);
    return ch && this.wrap(ch);
  }
  wrap(ch: DataChannel): DataChannel {
    const calls = this.calls;
    return {
      async read(into) {
        const c: Call = { op: "read data", size: into.length };
        calls.push(c);
        c.got = await ch.read(into);
        return c.got;
      },
      write(d) {
        calls.push({ op: "write data", size: d.length });
        return ch.write(d);
      },
      ...(ch.precopyInfo
        ? {
            precopyInfo() {
              calls.push({ op: "precopy info" });
              return ch.precopyInfo!();
            },
          }
        : {}),
      close() {
        calls.push({ op: "close" });
        return ch.close();
      },
    };
  }
  reset() {
    this.calls.push({ op: "reset" });
    return this.inner.reset();
  }
  close() {
    return this.inner.close();
  }
}

/** A simulated v2 device and a traced in-process transport over it. */
export function simV2(
  options: MigrationSimOptions = {},
  transport: InProcessMigrationOptions = {},
): { dev: MigrationSimDevice; io: TraceDevice } {
  const dev = new MigrationSimDevice(options);
  return { dev, io: new TraceDevice(new InProcessMigration(dev, transport)) };
}

/** Options for a destination matching a source. */
export function destinationOf(src: MigrationSimDevice, extra: MigrationSimOptions = {}): MigrationSimOptions {
  return {
    stateSize: src.image.size,
    empty: true,
    restarts: src.restarts,
    fixedAccess: src.fixedAccess || undefined,
    ...extra,
  };
}

export function expectCleanV2(...devs: MigrationSimDevice[]): void {
  for (const d of devs) expect(d.violations).toEqual([]);
}

/** save → items → resume, then: equal digests, source STOP, destination RUNNING, clean logs. */
export async function roundTripV2(
  srcOptions: MigrationSimOptions,
  dstOptions: MigrationSimOptions = {},
  saveOptions: SaveV2Options = {},
  resumeOptions: ResumeOptions = {},
  transport: InProcessMigrationOptions = {},
) {
  const s = simV2(srcOptions, transport);
  const d = simV2(destinationOf(s.dev, dstOptions), transport);
  const sink = new ItemSink();
  const summary = await saveV2(s.io, sink, saveOptions);
  const digest = s.dev.digest();
  expect(s.dev.state).toBe(MIG_STATE.STOP);
  const restored = await resumeV2(d.io, sink.verified(), resumeOptions);
  expect(d.dev.digest()).toBe(digest);
  expect(d.dev.state).toBe(resumeOptions.start === false ? MIG_STATE.STOP : MIG_STATE.RUNNING);
  expectCleanV2(s.dev, d.dev);
  return { src: s, dst: d, sink, summary, restored, digest };
}

/** One v2 fault to arm, and its test name. */
export interface FaultCaseV2 {
  name: string;
  fault: MigrationFault;
}

/** One case per device call of a clean run (per arc for SETs), plus ERROR arcs and writes that take nothing. */
export function faultCasesV2(trace: TraceDevice, arcs: string[]): FaultCaseV2[] {
  const out: FaultCaseV2[] = [];
  const seen = new Map<string, number>();
  const nth = (k: string) => {
    const n = (seen.get(k) ?? 0) + 1;
    seen.set(k, n);
    return n;
  };
  trace.calls.forEach((c, i) => {
    const errno = FAULT_ERRNOS[i % FAULT_ERRNOS.length];
    // MIG_DATA_SIZE is an estimate: its failure is no failure of the save (case 15, conformance.test.ts).
    if (c.op === "set state" || c.op === "close" || c.op === "reset" || c.op === "data size") return;
    const at = c.op as MigrationFault["at"];
    const n = nth(at);
    out.push({ name: `#${i} ${at} (${n}): ${errnoName(errno)}`, fault: { at, nth: n, errno } });
    if (at === "write data")
      out.push({ name: `#${i} ${at} (${n}): takes nothing`, fault: { at, nth: n, short: c.size! } });
  });
  arcs.forEach((a, i) => {
    const [from, to] = a.split(">").map((x) => parseMigState(x)!);
    const n = nth(`arc ${a}`);
    const errno = FAULT_ERRNOS[i % FAULT_ERRNOS.length];
    out.push({
      name: `arc ${a} (${n}): ${errnoName(errno)}, stays`,
      fault: { at: "set state", from, to, nth: n, errno },
    });
    out.push({
      name: `arc ${a} (${n}): enters ERROR`,
      fault: { at: "set state", from, to, nth: n, errno, then: "error" },
    });
  });
  return out;
}
