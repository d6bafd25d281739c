// The coordinated pre-copy policy on its own: members report what their
// drivers report, and the group alone ends pre-copy — on the total pending
// estimate, the time budget from the first device, every device's iterations,
// or the stop signal — and lets no device stop before all have arrived.
import { describe, expect, it } from "vitest";
import { MigstreamError } from "../../src/errors.js";
import { PrecopyGroup } from "../../src/protocol/precopy-group.js";

/** Settles within a few turns of the event loop? (`undefined` when still pending.) */
async function peek<T>(p: Promise<T>): Promise<{ value: T } | { error: unknown } | undefined> {
  let out: { value: T } | { error: unknown } | undefined;
  p.then(
    (value) => (out = { value }),
    (error: unknown) => (out = { error }),
  );
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return out;
}

describe("PrecopyGroup", () => {
  it("converges on the total: each device under the threshold is not enough", async () => {
    const g = new PrecopyGroup(2, { pendingThreshold: 100 });
    const [a, b] = [g.member(0), g.member(1)];
    expect(await a.beforeIteration(0, 80, 0)).toBeUndefined(); // b has not reported: unknown total
    expect(await b.beforeIteration(0, 80, 0)).toBeUndefined(); // 160 > 100
    expect(a.interrupt(0, 60)).toBeUndefined(); // 140
    expect(b.interrupt(0, 30)).toBe("converged"); // 90
    expect(a.interrupt(0, 60)).toBe("converged"); // the decision holds for every member
    expect(await a.beforeIteration(1, 500, 0)).toBe("converged");
    expect(g.end).toBe("converged");
  });

  it("a device with nothing to read waits for the others' decision without iterating", async () => {
    const g = new PrecopyGroup(2, { pendingThreshold: 10 });
    const [a, b] = [g.member(0), g.member(1)];
    const idle = Promise.resolve(a.beforeIteration(0, 0, 0));
    expect(await b.beforeIteration(0, 50, 0)).toBeUndefined();
    expect(await peek(idle)).toBeUndefined(); // a waits: 50 pending in b
    expect(b.interrupt(0, 5)).toBe("converged");
    expect(await idle).toBe("converged");
  });

  it("ends with 'iterations' once every device has run its iterations", async () => {
    const g = new PrecopyGroup(2, { maxIterations: 2, pendingThreshold: 0 });
    const [a, b] = [g.member(0), g.member(1)];
    expect(await a.beforeIteration(1, 100, 0)).toBeUndefined();
    const done = Promise.resolve(a.beforeIteration(2, 100, 0)); // a used its iterations
    expect(await peek(done)).toBeUndefined();
    expect(await b.beforeIteration(1, 100, 0)).toBeUndefined(); // b still has one
    expect(await b.beforeIteration(2, 100, 0)).toBe("iterations");
    expect(await done).toBe("iterations");
  });

  it("ends on the time budget, counted from the first device's pre-copy, waking the waiting ones", async () => {
    const g = new PrecopyGroup(2, { timeBudgetMs: 30 });
    const [a, b] = [g.member(0), g.member(1)];
    const t0 = performance.now();
    const idle = Promise.resolve(a.beforeIteration(0, 0, 0));
    expect(await b.beforeIteration(0, 1 << 20, 0)).toBeUndefined();
    expect(await idle).toBe("time");
    expect(performance.now() - t0).toBeGreaterThanOrEqual(29);
    expect(b.interrupt(0, 1 << 20)).toBe("time");
  });

  it("ends on the VMM's stop signal (a flag or a promise)", async () => {
    const flag = { aborted: false };
    const g = new PrecopyGroup(2, {}, flag);
    const idle = Promise.resolve(g.member(0).beforeIteration(0, 0, 0));
    expect(await g.member(1).beforeIteration(0, 1 << 20, 0)).toBeUndefined();
    flag.aborted = true;
    expect(await idle).toBe("stop-signal");

    let fire!: () => void;
    const g2 = new PrecopyGroup(1, {}, new Promise<void>((r) => (fire = r)));
    expect(await g2.member(0).beforeIteration(0, 1 << 20, 0)).toBeUndefined();
    fire();
    await Promise.resolve();
    expect(g2.member(0).interrupt(0)).toBe("stop-signal");
  });

  it("a device that never reported (still in setup) keeps the group from converging", async () => {
    const g = new PrecopyGroup(3, { pendingThreshold: 1000 });
    expect(await g.member(0).beforeIteration(0, 1, 0)).toBeUndefined();
    expect(await g.member(1).beforeIteration(0, 1, 0)).toBeUndefined();
    expect(g.totalPending).toBe(Infinity);
    expect(await g.member(2).beforeIteration(0, 1, 0)).toBe("converged");
  });

  it("no device stops before every device arrived; a device without pre-copy arrives at once and counts nothing", async () => {
    const g = new PrecopyGroup(2, { pendingThreshold: 0 });
    const [a, b] = [g.member(0), g.member(1)];
    const aStops = a.stopCopy!(); // a has no pre-copy (suspend, or a v2 device without PRE_COPY)
    expect(await peek(aStops)).toBeUndefined();
    expect(g.totalPending).toBe(Infinity); // b unknown
    expect(await b.beforeIteration(0, 0, 0)).toBe("converged");
    expect(await peek(aStops)).toBeUndefined(); // b has not arrived yet
    await b.stopCopy!();
    expect(await peek(aStops)).toEqual({ value: undefined });
  });

  it("a cancel rejects every wait with ABORTED naming the step", async () => {
    const ac = new AbortController();
    const g = new PrecopyGroup(2, {}, undefined, ac.signal);
    const idle = Promise.resolve(g.member(0).beforeIteration(0, 0, 0));
    const stops = g.member(0).stopCopy!();
    ac.abort(new Error("device 1 failed"));
    const [e1, e2] = await Promise.allSettled([idle, stops]);
    for (const r of [e1, e2]) {
      expect(r.status).toBe("rejected");
      const e = (r as PromiseRejectedResult).reason as MigstreamError;
      expect(e).toBeInstanceOf(MigstreamError);
      expect(e.code).toBe("ABORTED");
      expect(e.step).toMatch(/^save: wait for the other devices/);
    }
  });

  it("refuses a size below 1 and a member it does not have", () => {
    expect(() => new PrecopyGroup(0)).toThrow(/size/);
    expect(() => new PrecopyGroup(2).member(2)).toThrow(/no member 2/);
  });
});
