// The resume path beyond the conformance cases: RUNNING only after
// `verified`, staying in RESUMING, cancel, and where a resume may start.
import { describe, expect, it } from "vitest";
import type { Progress } from "../../src/protocol/progress.js";
import { resume, startResumed } from "../../src/protocol/resume.js";
import { save } from "../../src/protocol/save.js";
import type { ResumeItem } from "../../src/protocol/types.js";
import { expectClean, failure, ItemSink, KiB, low, sim } from "./helpers.js";
import { setState } from "./raw.js";

const small = { stateSize: 32 * KiB, txnSize: 8 * KiB, seed: 13 };

/** Items of one saved `small` device, and its digest at stop time. */
async function saved(): Promise<{ items: ResumeItem[]; digest: bigint }> {
  const s = sim(small);
  const sink = new ItemSink();
  await save(s.io, sink);
  return { items: sink.verified(), digest: s.dev.digest() };
}

const dest = () => sim({ ...small, empty: true });
const writes = (dev: { stateWrites: Array<{ value: number; ok: boolean }> }) =>
  dev.stateWrites.filter((w) => w.ok).map((w) => low(w.value));

describe("RUNNING only after the stream verified", () => {
  it("the device stays in RESUMING until `verified` arrives, then starts", async () => {
    const { items, digest } = await saved();
    const d = dest();
    let checked = 0;
    async function* gated(): AsyncGenerator<ResumeItem> {
      for (const i of items) {
        if (i.kind === "verified") {
          expect(low(d.dev.state)).toBe(4); // every transaction applied, not started
          checked++;
        }
        yield i;
      }
    }
    const summary = await resume(d.io, gated());
    expect(checked).toBe(1);
    expect(summary.started).toBe(true);
    expect(low(d.dev.state)).toBe(1);
    expect(d.dev.digest()).toBe(digest);
    const last = d.trace.map((a) => a.point).lastIndexOf("write data_size");
    expect(d.trace.slice(last + 1).map((a) => a.point)).toEqual(["read device_state", "write device_state"]);
    expectClean(d.dev);
  });

  it("items that end without `verified` fail as TRUNCATED; the device never ran", async () => {
    const { items } = await saved();
    const d = dest();
    const e = await failure(resume(d.io, items.slice(0, -1)));
    expect(e.code).toBe("TRUNCATED");
    expect(e.step).toBe("resume: wait verified");
    expect(writes(d.dev)).toEqual([4, 0]); // 1→4, then (after reset) 1→0; never 4→1
    expect(low(d.dev.state)).toBe(0);
    expect(d.dev.image.pristine).toBe(true);
    expectClean(d.dev);
  });

  it("nothing after `verified` is written", async () => {
    const { items, digest } = await saved();
    const d = dest();
    const extra: ResumeItem = { kind: "transaction", data: new Uint8Array(64).fill(7) };
    const summary = await resume(d.io, [...items, extra]);
    expect(summary.transactions).toBe(
      items.length - 1 - items.filter((i) => i.kind === "phase" || i.kind === "protocol").length,
    );
    expect(d.dev.digest()).toBe(digest);
    expectClean(d.dev);
  });

  it("an unknown item kind is a USAGE error; the destination is stopped", async () => {
    const d = dest();
    const e = await failure(resume(d.io, [{ kind: "bogus" } as unknown as ResumeItem]));
    expect(e.code).toBe("USAGE");
    expect(low(d.dev.state)).toBe(0);
  });
});

describe("staying in RESUMING", () => {
  it("start: false leaves RESUMING; startResumed starts it later", async () => {
    const { items, digest } = await saved();
    const d = dest();
    const summary = await resume(d.io, items, { start: false });
    expect(summary.started).toBe(false);
    expect(low(d.dev.state)).toBe(4);
    await startResumed(d.io);
    expect(low(d.dev.state)).toBe(1);
    expect(d.dev.digest()).toBe(digest);
    expectClean(d.dev);
  });

  it("startResumed refuses a device not in RESUMING without touching it", async () => {
    const d = dest();
    const e = await failure(startResumed(d.io));
    expect(e.code).toBe("USAGE");
    expect(d.trace.map((a) => a.point)).toEqual(["read device_state"]);
    expect(low(d.dev.state)).toBe(1);
  });

  it("a failing startResumed resets and stops the device", async () => {
    const { items } = await saved();
    const d = dest();
    await resume(d.io, items, { start: false });
    d.dev.inject({ at: "write device_state", to: 1, errno: 5 });
    const e = await failure(startResumed(d.io));
    expect(e.errno).toBe("EIO");
    expect(e.step).toBe("resume: enter RUNNING");
    expect(low(d.dev.state)).toBe(0);
    expect(d.dev.image.pristine).toBe(true);
    expectClean(d.dev);
  });
});

describe("cancel and start states", () => {
  it("an abort mid-resume resets and stops the destination", async () => {
    const { items } = await saved();
    const d = dest();
    const ac = new AbortController();
    const e = await failure(
      resume(d.io, items, {
        signal: ac.signal,
        onProgress: (p) => {
          if (p.transactions === 2) ac.abort();
        },
      }),
    );
    expect(e.code).toBe("ABORTED");
    expect(low(d.dev.state)).toBe(0);
    expect(d.dev.image.pristine).toBe(true);
    expectClean(d.dev);
  });

  it("resumes into a stopped device (0 → 4) where the vendor allows it", async () => {
    const { items, digest } = await saved();
    const d = dest();
    await setState(d.dev, 0);
    await resume(d.io, items);
    expect(writes(d.dev)).toEqual([0, 4, 1]);
    expect(d.dev.digest()).toBe(digest);
    expectClean(d.dev);
  });

  it("refuses a device already in RESUMING or in ERROR, leaving it alone", async () => {
    const d = dest();
    await setState(d.dev, 4);
    const e = await failure(resume(d.io, []));
    expect(e.code).toBe("USAGE");
    expect(low(d.dev.state)).toBe(4);
    const broken = dest();
    broken.dev.inject({ at: "write device_state", then: "error" });
    await setState(broken.dev, 4).catch(() => undefined);
    expect(low(broken.dev.state)).toBe(6);
    const e2 = await failure(resume(broken.io, []));
    expect(e2.message).toMatch(/device_state is ERROR/);
    expect(low(broken.dev.state)).toBe(6);
    expect(d.dev.resets + broken.dev.resets).toBe(0);
  });

  it("reports progress per transaction and phase", async () => {
    const { items } = await saved();
    const d = dest();
    const events: Progress[] = [];
    const summary = await resume(d.io, items, { onProgress: (p) => events.push({ ...p }) });
    expect(events.every((e) => e.direction === "resume")).toBe(true);
    expect(events.at(-1)!.bytes).toBe(summary.bytes);
    expect(new Set(events.map((e) => e.phase))).toEqual(new Set(["setup", "precopy", "stopcopy", "end"]));
  });
});
