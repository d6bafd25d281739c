// The v2 fault matrix: a fault at every step of a save and of a resume — an
// errno at every device call (GET MIGRATION, GET state, every arc of every
// SET, every data read and write, PRECOPY_INFO, MIG_DATA_SIZE), arcs that
// fail into ERROR, short reads and writes that take nothing. After every
// failed save the source is RUNNING with its state (ERROR: reset, which loses
// it) and saves again; after every failed resume the destination is not
// RUNNING, holds none of the partial state, and resumes again.
import { describe, expect, it } from "vitest";
import { errnoName } from "../../../src/protocol/region-io.js";
import { MIG_STATE } from "../../../src/protocol/v2/constants.js";
import { resumeV2 } from "../../../src/protocol/v2/resume.js";
import { type SaveV2Options, saveV2 } from "../../../src/protocol/v2/save.js";
import { failure, ItemSink } from "../helpers.js";
import { destinationOf, expectCleanV2, faultCasesV2, KiB, simV2 } from "./helpers.js";

/** A device that does not run on during pre-copy, so its digest after a failed save must equal the one before. */
const SRC = { stateSize: 24 * KiB, seed: 11 };
/** Buffers from MIG_DATA_SIZE (24 KiB + the stream's framing); reads of at most 8 KiB, so faults strike mid-buffer. */
const OPTS: SaveV2Options = {};
const MAX_ACCESS = 8 * KiB;

const clean = await (async () => {
  const s = simV2(SRC, { maxAccess: MAX_ACCESS });
  const sink = new ItemSink();
  await saveV2(s.io, sink, OPTS);
  const d = simV2(destinationOf(s.dev), { maxAccess: MAX_ACCESS });
  await resumeV2(d.io, sink.verified());
  expect(d.dev.digest()).toBe(s.dev.digest());
  expectCleanV2(s.dev, d.dev);
  return { save: s, resume: d, items: sink.verified() };
})();

describe("v2: a fault at every step of a save", () => {
  const list = faultCasesV2(clean.save.io, clean.save.dev.arcs);

  it("covers every kind of call and every arc of both phases", () => {
    const kinds = new Set(list.map((c) => c.fault.at));
    expect([...kinds].sort()).toEqual(["get migration", "get state", "precopy info", "read data", "set state"]);
    expect(clean.save.dev.arcs).toEqual(["RUNNING>PRE_COPY", "PRE_COPY>STOP_COPY", "STOP_COPY>STOP"]);
    expect(list.filter((c) => c.fault.at === "read data").length).toBeGreaterThanOrEqual(6);
  });

  for (const c of list) {
    it(c.name, async () => {
      const s = simV2(SRC, { maxAccess: MAX_ACCESS });
      const before = s.dev.digest();
      s.dev.inject(c.fault);
      const e = await failure(saveV2(s.io, new ItemSink(), OPTS));
      expect(s.dev.faults.fired).toEqual([c.fault]);
      expect(e.step).toMatch(/^save: /);
      if (c.fault.short === undefined) expect(e.errno).toBe(errnoName(c.fault.errno!));
      expect(s.dev.state).toBe(MIG_STATE.RUNNING);
      if (c.fault.then === "error") {
        expect(s.dev.resets).toBe(1);
        expect(e.message).toMatch(/device entered ERROR; device reset/);
      } else {
        expect(s.dev.resets).toBe(0);
        expect(s.dev.digest()).toBe(before);
      }
      expectCleanV2(s.dev);
      // The source works on: a second save restores exactly.
      const again = new ItemSink();
      await saveV2(s.io, again, OPTS);
      const d = simV2(destinationOf(s.dev), { maxAccess: MAX_ACCESS });
      await resumeV2(d.io, again.verified());
      expect(d.dev.digest()).toBe(s.dev.digest());
    });
  }

  it("a short read that gives nothing in STOP_COPY is taken as the end: the destination refuses the incomplete state", async () => {
    // 0 is the end of the stream (case 11): a device that lies so truncates its own state; RESUMING → STOP catches it.
    const s = simV2(SRC, { maxAccess: MAX_ACCESS });
    s.dev.inject({ at: "read data", nth: 2, short: MAX_ACCESS });
    const sink = new ItemSink();
    await saveV2(s.io, sink, { ...OPTS, precopy: false });
    const d = simV2(destinationOf(s.dev), { maxAccess: MAX_ACCESS });
    const e = await failure(resumeV2(d.io, sink.verified()));
    expect(e.step).toBe("resume: enter STOP");
    expect(d.dev.state).toBe(MIG_STATE.STOP);
    expect(d.dev.image.pristine).toBe(true);
  });
});

describe("v2: a fault at every step of a resume", () => {
  const list = faultCasesV2(clean.resume.io, clean.resume.dev.arcs);

  it("covers every kind of call and every arc", () => {
    const kinds = new Set(list.map((c) => c.fault.at));
    expect([...kinds].sort()).toEqual(["get migration", "get state", "set state", "write data"]);
    expect(clean.resume.dev.arcs).toEqual(["RUNNING>STOP", "STOP>RESUMING", "RESUMING>STOP", "STOP>RUNNING"]);
  });

  for (const c of list) {
    it(c.name, async () => {
      const d = simV2(destinationOf(clean.save.dev), { maxAccess: MAX_ACCESS });
      d.dev.inject(c.fault);
      const e = await failure(resumeV2(d.io, clean.items));
      expect(d.dev.faults.fired).toEqual([c.fault]);
      expect(e.step).toMatch(/^resume: /);
      // Never RUNNING on a partial state: the destination is STOP, or RUNNING only when the fault struck before any SET.
      const untouched = !d.io.calls.some((x) => x.op === "set state");
      if (untouched) expect(d.dev.state).toBe(MIG_STATE.RUNNING);
      else if (
        c.fault.to === MIG_STATE.RUNNING &&
        c.fault.from === MIG_STATE.STOP &&
        d.dev.arcs.includes("RESUMING>STOP")
      ) {
        // The last arc (STOP → RUNNING) failed after the state was validated: the device stays in STOP with the state.
        expect(d.dev.state).toBe(MIG_STATE.STOP);
      } else {
        expect(d.dev.state).toBe(MIG_STATE.STOP);
        expect(d.dev.image.pristine).toBe(true);
      }
      expectCleanV2(d.dev);
      // The destination takes the stream again.
      const again = simV2(destinationOf(clean.save.dev), { maxAccess: MAX_ACCESS });
      await resumeV2(again.io, clean.items);
      await resumeV2(d.io, clean.items);
      expect(d.dev.digest()).toBe(again.dev.digest());
      expect(d.dev.state).toBe(MIG_STATE.RUNNING);
    });
  }
});
