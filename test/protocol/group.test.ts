// Devices that migrate together (saveGroup / resumeGroup) against simulated
// v1 and v2 devices in process: every pair restores exactly; the policy is
// one for the group (total pending, time budget from the first device, stop
// signal); pre-copy runs concurrently, so a device blocked in a read does not
// stall the others; no device stops before every device ended its pre-copy,
// and no destination starts before every destination loaded.
import { describe, expect, it } from "vitest";
import { MigrationSimDevice } from "../../src/device/migration-sim.js";
import { SimDevice, type SimDeviceOptions } from "../../src/device/simulated.js";
import { MigstreamError } from "../../src/errors.js";
import type { MigratableDevice } from "../../src/protocol/generation.js";
import { resumeGroup, saveGroup } from "../../src/protocol/group.js";
import type { Progress } from "../../src/protocol/progress.js";
import type { RegionIO } from "../../src/protocol/region-io.js";
import { save } from "../../src/protocol/save.js";
import type { ResumeItem } from "../../src/protocol/types.js";
import { MIG_STATE } from "../../src/protocol/v2/constants.js";
import { InProcessRegion } from "../../src/transport/in-process.js";
import { InProcessMigration } from "../../src/transport/in-process-v2.js";
import { SIM_V2_VARIANTS, SIM_VARIANTS } from "../../src/transport/sim/options.js";
import { destinationFor, expectClean, ItemSink, KiB, low } from "./helpers.js";
import { destinationOf } from "./v2/helpers.js";

type Sim = SimDevice | MigrationSimDevice;

/** A source device of either generation, its transport, and a destination to match. */
interface Pair {
  src: Sim;
  io: MigratableDevice;
  dst: Sim;
  dstIO: MigratableDevice;
}

function v1(options: SimDeviceOptions, maxAccess?: number): Pair {
  const src = new SimDevice(options);
  const dst = new SimDevice(destinationFor(src, { wholeBufferOnly: options.wholeBufferOnly, ack: options.ack }));
  return { src, io: new InProcessRegion(src, { maxAccess }), dst, dstIO: new InProcessRegion(dst, { maxAccess }) };
}

function v2(options: ConstructorParameters<typeof MigrationSimDevice>[0]): Pair {
  const src = new MigrationSimDevice(options);
  const dst = new MigrationSimDevice(destinationOf(src, { writeEinval: options?.writeEinval }));
  return { src, io: new InProcessMigration(src), dst, dstIO: new InProcessMigration(dst) };
}

const isV2 = (d: Sim): d is MigrationSimDevice => d instanceof MigrationSimDevice;
const running = (d: Sim) => (isV2(d) ? d.state === MIG_STATE.RUNNING : low(d.state) === 1);
const stopped = (d: Sim) => (isV2(d) ? d.state === MIG_STATE.STOP : low(d.state) === 0);

/** The set the issue asks for: sizes, transaction sizes, dirty rates and vendor variants differ; v1 and v2 mixed. */
function mixedSet(): Pair[] {
  return [
    v1({ stateSize: 192 * KiB, txnSize: 16 * KiB, dirtyPerTxn: 2, seed: 1 }),
    v1(
      {
        stateSize: 64 * KiB,
        txnSize: [4 * KiB, 12 * KiB],
        dirtyPerTxn: 1,
        seed: 2,
        ...SIM_VARIANTS.mlx5,
        ...SIM_VARIANTS["reserved-bits"],
      },
      4 * KiB,
    ),
    v2({ stateSize: 320 * KiB, dirtyPerMiB: 64, seed: 3 }),
    v2({ stateSize: 96 * KiB, dirtyPerMiB: 16, seed: 4, ...SIM_V2_VARIANTS.restarts }),
    v2({ stateSize: 32 * KiB, seed: 5, ...SIM_V2_VARIANTS.gpio }),
    v1({ stateSize: 48 * KiB, txnSize: 8 * KiB, seed: 6, ...SIM_VARIANTS["libvfio-user"] }),
  ];
}

/** Saves `pairs` together into item sinks; resumes them together. */
async function migrate(pairs: Pair[], saveOpts: Parameters<typeof saveGroup>[1] = {}) {
  const sinks = pairs.map(() => new ItemSink());
  const events: { i: number; p: Progress }[] = [];
  const saved = await saveGroup(
    pairs.map((p, i) => ({ device: p.io, sink: sinks[i], label: `pair ${i}` })),
    { ...saveOpts, onProgress: (i, p) => void events.push({ i, p }) },
  );
  const digests = pairs.map((p) => p.src.digest());
  const restored = await resumeGroup(pairs.map((p, i) => ({ device: p.dstIO, items: sinks[i].verified() })));
  return { saved, restored, digests, events, sinks };
}

/** Polls `cond` every few ms until it holds (fails the test after `ms`). */
async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A v1 region whose data reads wait at a gate once armed (a device that blocks while it prepares a buffer). */
class GatedRegion implements RegionIO {
  armAfter = Infinity;
  dataReads = 0;
  blocked = false;
  #open: (() => void) | null = null;
  #gate: Promise<void> | null = null;
  constructor(
    readonly inner: RegionIO,
    readonly dataOffset: number,
  ) {}
  get size() {
    return this.inner.size;
  }
  get maxAccess() {
    return this.inner.maxAccess;
  }
  async read(offset: number, count: number, into?: Uint8Array) {
    if (offset >= this.dataOffset && ++this.dataReads > this.armAfter) {
      this.#gate ??= new Promise<void>((r) => (this.#open = r));
      this.blocked = true;
      await this.#gate;
      this.blocked = false;
    }
    return this.inner.read(offset, count, into);
  }
  write(offset: number, data: Uint8Array) {
    return this.inner.write(offset, data);
  }
  reset() {
    return this.inner.reset();
  }
  close() {
    return this.inner.close();
  }
  release() {
    this.armAfter = Infinity;
    this.#open?.();
  }
}

describe("a group of devices saved and restored together", () => {
  it("v1 and v2 devices of different sizes, transaction sizes, dirty rates and variants restore exactly", async () => {
    const pairs = mixedSet();
    const r = await migrate(pairs, { policy: { pendingThreshold: 16 * KiB } });
    pairs.forEach((p, i) => {
      expect(p.dst.digest(), `pair ${i}`).toBe(r.digests[i]);
      expect(stopped(p.src), `pair ${i} source STOP`).toBe(true);
      expect(running(p.dst), `pair ${i} destination RUNNING`).toBe(true);
      expect(r.restored.devices[i].started).toBe(true);
      expect(r.restored.startedAt[i]).toBeGreaterThan(0);
      expect(r.saved.stoppedAt[i]).toBeGreaterThan(0);
      expect(p.src.violations).toEqual([]);
      expect(p.dst.violations).toEqual([]);
    });
    // Every device's summary carries the group's reason.
    expect(new Set(r.saved.devices.map((d) => d.precopyEnd))).toEqual(new Set([r.saved.precopyEnd]));
    expect(r.saved.devices.every((d) => d.precopy.bytes > 0)).toBe(true);
  });

  it("one stop window: no device enters stop-and-copy before every device ended its pre-copy", async () => {
    const pairs = mixedSet();
    const { events } = await migrate(pairs, { policy: { pendingThreshold: 0, maxIterations: 3 } });
    const lastPrecopy = Math.max(...events.flatMap((e, k) => (e.p.phase === "precopy" ? [k] : [])));
    const firstStop = Math.min(...events.flatMap((e, k) => (e.p.phase === "stopcopy" ? [k] : [])));
    expect(lastPrecopy).toBeLessThan(firstStop);
    // Every device reached stop-and-copy, each once.
    expect(new Set(events.filter((e) => e.p.phase === "stopcopy").map((e) => e.i)).size).toBe(pairs.length);
  });

  it("pre-copy ends when the TOTAL pending is at most the threshold, where each device alone would have stopped sooner", async () => {
    // What is left at the end of pre-copy is what stop-and-copy carries.
    const T = 32 * KiB;
    const opts: SimDeviceOptions = { stateSize: 256 * KiB, txnSize: 16 * KiB, dirtyPerTxn: 2, seed: 1 };
    const alone = [];
    for (let k = 0; k < 2; k++)
      alone.push(
        await save(new InProcessRegion(new SimDevice(opts)), new ItemSink(), { policy: { pendingThreshold: T } }),
      );
    expect(alone.map((s) => s.precopyEnd)).toEqual(["converged", "converged"]);
    expect(alone.every((s) => s.stopcopy.bytes <= T)).toBe(true);
    expect(alone[0].stopcopy.bytes + alone[1].stopcopy.bytes).toBeGreaterThan(T); // two such stops exceed the threshold

    const pairs = [v1(opts), v1(opts)];
    const { saved } = await migrate(pairs, { policy: { pendingThreshold: T } });
    expect(saved.precopyEnd).toBe("converged");
    expect(saved.devices[0].stopcopy.bytes + saved.devices[1].stopcopy.bytes).toBeLessThanOrEqual(T);
    expect(saved.devices[0].iterations + saved.devices[1].iterations).toBeGreaterThan(
      alone[0].iterations + alone[1].iterations,
    );
  });

  it("a device blocked in a read does not stall the others' pre-copy, and none stops before it is back", async () => {
    const slow = new SimDevice({ stateSize: 64 * KiB, txnSize: 8 * KiB, seed: 7 });
    const gated = new GatedRegion(new InProcessRegion(slow), slow.dataOffset);
    gated.armAfter = 2; // the third data read blocks (pre-copy)
    const fast = v2({ stateSize: 512 * KiB, seed: 8 });
    const stop = { aborted: false };
    const progress: { i: number; p: Progress }[] = [];
    const sinks = [new ItemSink(), new ItemSink()];
    const saving = saveGroup(
      [
        { device: gated, sink: sinks[0] },
        { device: fast.io, sink: sinks[1] },
      ],
      { stopCopy: stop, onProgress: (i, p) => void progress.push({ i, p }) },
    );
    await until(() => gated.blocked, "the slow device to block");
    // Meanwhile the fast device reads its whole state in pre-copy.
    await until(
      () => progress.some((e) => e.i === 1 && e.p.phase === "precopy" && e.p.bytes >= 512 * KiB),
      "the fast device's pre-copy",
    );
    expect(gated.blocked).toBe(true);
    stop.aborted = true; // the VMM stops the VM: pre-copy ends for all...
    await new Promise((r) => setTimeout(r, 30));
    // ...but the fast device does not stop while the slow one is still in its pre-copy read.
    expect(progress.some((e) => e.p.phase === "stopcopy")).toBe(false);
    expect(running(fast.src)).toBe(false); // PRE_COPY: still running, not stopped
    expect(fast.src.state).toBe(MIG_STATE.PRE_COPY);
    gated.release();
    const saved = await saving;
    expect(saved.precopyEnd).toBe("stop-signal");
    const dstSlow = new SimDevice(destinationFor(slow));
    await resumeGroup([
      { device: new InProcessRegion(dstSlow), items: sinks[0].verified() },
      { device: fast.dstIO, items: sinks[1].verified() },
    ]);
    expect(dstSlow.digest()).toBe(slow.digest());
    expect(fast.dst.digest()).toBe(fast.src.digest());
  });

  it("the time budget runs from the first device's pre-copy and ends every device's", async () => {
    // Devices that dirty as fast as they are read never converge; only the clock ends them.
    const pairs = [
      v2({ stateSize: 64 * KiB, dirtyPerMiB: 256, seed: 9 }),
      v1({
        stateSize: 64 * KiB,
        txnSize: 4 * KiB,
        dirtyPerTxn: 1,
        seed: 10,
        mix: { zero: 0, code: 0, heap: 0, random: 1 },
      }),
    ];
    const t0 = performance.now();
    const { saved } = await migrate(pairs, { policy: { timeBudgetMs: 60, maxIterations: 1e6 } });
    expect(saved.precopyEnd).toBe("time");
    expect(performance.now() - t0).toBeGreaterThanOrEqual(55);
    for (const p of pairs) expect(p.dst.digest()).toBe(p.src.digest());
  });

  it("without pre-copy every device stops at once and restores", async () => {
    const pairs = [v1({ stateSize: 32 * KiB, txnSize: 8 * KiB, seed: 11 }), v2({ stateSize: 40 * KiB, seed: 12 })];
    const { saved } = await migrate(pairs, { precopy: false });
    expect(saved.precopyEnd).toBe("none");
    expect(saved.devices.map((d) => d.precopy.bytes)).toEqual([0, 0]);
    for (const p of pairs) expect(p.dst.digest()).toBe(p.src.digest());
  });

  it("no destination starts before every destination loaded its verified state", async () => {
    const pairs = [v1({ stateSize: 32 * KiB, txnSize: 8 * KiB, seed: 13 }), v2({ stateSize: 48 * KiB, seed: 14 })];
    const sinks = pairs.map(() => new ItemSink());
    await saveGroup(pairs.map((p, i) => ({ device: p.io, sink: sinks[i] })));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    async function* late(items: ResumeItem[]): AsyncGenerator<ResumeItem> {
      for (const it of items) {
        if (it.kind === "verified") await gate;
        yield it;
      }
    }
    const resuming = resumeGroup([
      { device: pairs[0].dstIO, items: sinks[0].verified() },
      { device: pairs[1].dstIO, items: late(sinks[1].items.concat({ kind: "verified" })) },
    ]);
    await until(
      () => pairs[0].dst.digest() === pairs[0].src.digest() || low((pairs[0].dst as SimDevice).state) === 4,
      "device 0 to load",
    );
    await new Promise((r) => setTimeout(r, 20));
    expect(running(pairs[0].dst)).toBe(false); // loaded, verified, and still waiting for device 1
    release();
    const r = await resuming;
    expect(r.devices.map((d) => d.started)).toEqual([true, true]);
    pairs.forEach((p) => {
      expect(running(p.dst)).toBe(true);
      expect(p.dst.digest()).toBe(p.src.digest());
    });
  });

  it("start: false leaves every destination loaded and stopped (v1 RESUMING, v2 STOP)", async () => {
    const pairs = [v1({ stateSize: 16 * KiB, txnSize: 8 * KiB, seed: 15 }), v2({ stateSize: 16 * KiB, seed: 16 })];
    const sinks = pairs.map(() => new ItemSink());
    await saveGroup(pairs.map((p, i) => ({ device: p.io, sink: sinks[i] })));
    const r = await resumeGroup(
      pairs.map((p, i) => ({ device: p.dstIO, items: sinks[i].verified() })),
      { start: false },
    );
    expect(r.devices.map((d) => d.started)).toEqual([false, false]);
    expect(low((pairs[0].dst as SimDevice).state)).toBe(4);
    expect((pairs[1].dst as MigrationSimDevice).state).toBe(MIG_STATE.STOP);
  });

  it("a cancel puts every source back in RUNNING with its state", async () => {
    const pairs = [v1({ stateSize: 64 * KiB, txnSize: 8 * KiB, seed: 17 }), v2({ stateSize: 64 * KiB, seed: 18 })];
    const before = pairs.map((p) => p.src.digest());
    const ac = new AbortController();
    const e = await saveGroup(
      pairs.map((p) => ({ device: p.io, sink: new ItemSink() })),
      {
        signal: ac.signal,
        onProgress: (i, p) => {
          if (i === 1 && p.phase === "precopy" && p.transactions >= 1) ac.abort();
        },
      },
    ).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(MigstreamError);
    expect((e as MigstreamError).code).toBe("ABORTED");
    expect((e as MigstreamError).message).toMatch(/^save: cancelled; device 0: .*device 1: /);
    pairs.forEach((p, i) => {
      expect(running(p.src), `source ${i}`).toBe(true);
      expect(p.src.digest()).toBe(before[i]);
    });
  });

  it("refuses an empty group", async () => {
    await expect(saveGroup([])).rejects.toMatchObject({ code: "USAGE" });
    await expect(resumeGroup([])).rejects.toMatchObject({ code: "USAGE" });
  });
});

void expectClean;
