// The group fault matrix: three devices that migrate together (two v1 of
// different vendors and sizes, one v2), and a fault at every step of each
// device, on each side — every device access of a clean run, with an errno,
// a short read, or a transition that fails into ERROR. After any failed save
// every source is RUNNING with its state (ERROR: that device reset) and the
// set saves again; after any failed resume no destination is RUNNING (one
// the fault struck before any access stays as it was), and the set resumes
// again. The error names the device that failed.
import { describe, expect, it } from "vitest";
import type { Fault } from "../../src/device/faults.js";
import type { MigrationFault, MigrationSimDevice } from "../../src/device/migration-sim.js";
import type { SimDevice } from "../../src/device/simulated.js";
import type { MigstreamError } from "../../src/errors.js";
import { resumeGroup, saveGroup } from "../../src/protocol/group.js";
import { errnoName } from "../../src/protocol/region-io.js";
import type { ResumeItem } from "../../src/protocol/types.js";
import { MIG_STATE } from "../../src/protocol/v2/constants.js";
import { SIM_VARIANTS } from "../../src/transport/sim/options.js";
import { type Access, destinationFor, failure, faultCases, ItemSink, KiB, low, sim } from "./helpers.js";
import { destinationOf, faultCasesV2, simV2, type TraceDevice } from "./v2/helpers.js";

/** The three sources' settings: none runs on during pre-copy, so a source's digest after a failed save equals the one before. */
const A = { stateSize: 24 * KiB, txnSize: 8 * KiB, seed: 21 };
const B = { stateSize: 20 * KiB, seed: 22 };
const C = { stateSize: 12 * KiB, txnSize: 4 * KiB, seed: 23, ...SIM_VARIANTS.mlx5 };
const MAX_ACCESS = 4 * KiB;

interface Member {
  name: string;
  gen: 1 | 2;
  /** The device (for faults, state, digest). */
  dev: SimDevice | MigrationSimDevice;
  io: Parameters<typeof saveGroup>[0][number]["device"];
  trace(): { v1?: Access[]; v2?: TraceDevice };
}

function sources(): Member[] {
  const a = sim(A, MAX_ACCESS);
  const b = simV2(B, { maxAccess: 8 * KiB });
  const c = sim(C);
  return [
    { name: "A", gen: 1, dev: a.dev, io: a.io, trace: () => ({ v1: a.trace }) },
    { name: "B", gen: 2, dev: b.dev, io: b.io, trace: () => ({ v2: b.io }) },
    { name: "C", gen: 1, dev: c.dev, io: c.io, trace: () => ({ v1: c.trace }) },
  ];
}

function destinations(src: Member[]): Member[] {
  const a = sim(destinationFor(src[0].dev as SimDevice), MAX_ACCESS);
  const b = simV2(destinationOf(src[1].dev as MigrationSimDevice), { maxAccess: 8 * KiB });
  const c = sim(destinationFor(src[2].dev as SimDevice, { ack: "data_size" }));
  return [
    { name: "A", gen: 1, dev: a.dev, io: a.io, trace: () => ({ v1: a.trace }) },
    { name: "B", gen: 2, dev: b.dev, io: b.io, trace: () => ({ v2: b.io }) },
    { name: "C", gen: 1, dev: c.dev, io: c.io, trace: () => ({ v1: c.trace }) },
  ];
}

const running = (m: Member) =>
  m.gen === 2 ? (m.dev as MigrationSimDevice).state === MIG_STATE.RUNNING : low((m.dev as SimDevice).state) === 1;

/** The group save: pre-copy ends once every device sent one pre-copy buffer, so both phases carry data for each. */
function saveAll(members: Member[], sinks: ItemSink[]) {
  const stop = { aborted: false };
  const seen = new Set<number>();
  return saveGroup(
    members.map((m, i) => ({ device: m.io, sink: sinks[i], label: m.name })),
    {
      stopCopy: stop,
      onProgress: (i, p) => {
        if (p.phase === "precopy" && p.transactions >= 1) seen.add(i);
        if (seen.size === members.length) stop.aborted = true;
      },
    },
  );
}

const resumeAll = (members: Member[], items: ResumeItem[][]) =>
  resumeGroup(members.map((m, i) => ({ device: m.io, items: items[i], label: m.name })));

type AnyFault = { kind: 1; fault: Fault } | { kind: 2; fault: MigrationFault };
interface Case {
  name: string;
  device: number;
  f: AnyFault;
}

/** Device `device`'s cases: every access (v1) or call and arc (v2) of its clean run. */
function v1Cases(device: number, trace: Access[]): Case[] {
  return faultCases(trace).map((c) => ({ name: c.name, device, f: { kind: 1, fault: c.fault } }));
}

function v2Cases(device: number, trace: TraceDevice, arcs: string[]): Case[] {
  return faultCasesV2(trace, arcs).map((c) => ({ name: c.name, device, f: { kind: 2, fault: c.fault } }));
}

function casesOf(members: Member[]): Case[] {
  return members.flatMap((m, i) => {
    const t = m.trace();
    return m.gen === 1 ? v1Cases(i, t.v1!) : v2Cases(i, t.v2!, (m.dev as MigrationSimDevice).arcs);
  });
}

function inject(m: Member, f: AnyFault): void {
  if (f.kind === 1) (m.dev as SimDevice).inject(f.fault);
  else (m.dev as MigrationSimDevice).inject(f.fault);
}

function fired(m: Member): unknown[] {
  return m.dev.faults.fired;
}

/** The error names the failing device first, then says what became of every other. */
function checkError(e: MigstreamError, c: Case, members: Member[]): void {
  expect(e.device).toBe(c.device);
  expect(e.message.startsWith(`device ${c.device} (${members[c.device].name}): `)).toBe(true);
  for (const [i, m] of members.entries()) if (i !== c.device) expect(e.message).toContain(`device ${i} (${m.name}): `);
  if (c.f.fault.short === undefined && c.f.fault.errno !== undefined) expect(e.errno).toBe(errnoName(c.f.fault.errno));
}

// A clean run gives every device's save and resume traces, and the items to resume from.
const clean = await (async () => {
  const src = sources();
  const sinks = src.map(() => new ItemSink());
  await saveAll(src, sinks);
  const items = sinks.map((s) => s.verified());
  const dst = destinations(src);
  await resumeAll(dst, items);
  for (const [i, m] of src.entries()) expect(dst[i].dev.digest()).toBe(m.dev.digest());
  for (const m of [...src, ...dst]) expect(m.dev.violations).toEqual([]);
  for (const s of sinks) expect(s.phases.filter((p) => p.startsWith("precopy")).length).toBeGreaterThan(0);
  return { src, dst, items, digests: src.map((m) => m.dev.digest()) };
})();

describe("group save: a fault at every step of each device", () => {
  const list = casesOf(clean.src);

  it("covers every device and both phases of each", () => {
    for (const d of [0, 1, 2]) expect(list.filter((c) => c.device === d).length).toBeGreaterThan(8);
    for (const s of [0, 2])
      expect(clean.src[s].trace().v1!.filter((a) => a.point === "write device_state").length).toBe(3); // 1→3, 3→2, 2→0
    expect((clean.src[1].dev as MigrationSimDevice).arcs).toEqual([
      "RUNNING>PRE_COPY",
      "PRE_COPY>STOP_COPY",
      "STOP_COPY>STOP",
    ]);
  });

  for (const c of list) {
    it(`device ${c.device} (${clean.src[c.device].name}) ${c.name}`, async () => {
      const src = sources();
      const before = src.map((m) => m.dev.digest());
      inject(src[c.device], c.f);
      const e = await failure(
        saveAll(
          src,
          src.map(() => new ItemSink()),
        ),
      );
      expect(fired(src[c.device]).length).toBe(1);
      checkError(e, c, src);
      src.forEach((m, i) => {
        expect(running(m), `source ${m.name} RUNNING`).toBe(true);
        if (!(i === c.device && c.f.fault.then === "error"))
          expect(m.dev.digest(), `source ${m.name} keeps its state`).toBe(before[i]);
        expect(m.dev.violations).toEqual([]);
      });
      // The set works on: saved again together, it restores exactly.
      const sinks = src.map(() => new ItemSink());
      await saveAll(src, sinks);
      const dst = destinations(src);
      await resumeAll(
        dst,
        sinks.map((s) => s.verified()),
      );
      for (const [i, m] of src.entries()) expect(dst[i].dev.digest()).toBe(m.dev.digest());
    });
  }
});

describe("group resume: a fault at every step of each device", () => {
  const list = casesOf(clean.dst);

  it("covers every device, every transition and the start of each", () => {
    for (const d of [0, 1, 2]) expect(list.filter((c) => c.device === d).length).toBeGreaterThan(5);
    for (const s of [0, 2])
      expect(clean.dst[s].trace().v1!.filter((a) => a.point === "write device_state").length).toBe(2); // 1→4, 4→1
    expect((clean.dst[1].dev as MigrationSimDevice).arcs).toEqual([
      "RUNNING>STOP",
      "STOP>RESUMING",
      "RESUMING>STOP",
      "STOP>RUNNING",
    ]);
  });

  for (const c of list) {
    it(`device ${c.device} (${clean.dst[c.device].name}) ${c.name}`, async () => {
      const dst = destinations(clean.src);
      inject(dst[c.device], c.f);
      const e = await failure(resumeAll(dst, clean.items));
      expect(fired(dst[c.device]).length).toBe(1);
      checkError(e, c, dst);
      dst.forEach((m) => {
        // Never RUNNING — except a v2 device the failure left untouched (no SET): it stays as it was.
        const untouched = m.gen === 2 && !m.trace().v2!.calls.some((x) => x.op === "set state");
        expect(running(m), `destination ${m.name} not RUNNING`).toBe(untouched);
        expect(m.dev.violations).toEqual([]);
      });
      // The set takes the stream again.
      await resumeAll(dst, clean.items);
      dst.forEach((m, i) => {
        expect(m.dev.digest()).toBe(clean.digests[i]);
        expect(running(m)).toBe(true);
      });
    });
  }
});
