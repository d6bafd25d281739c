// The fault matrix: a fault at every access of a save and of a resume — an
// errno, a short read, a failed transition that stays put or enters ERROR.
// A clean run's access trace lists the steps; each case re-runs with one fault
// armed at one step. After every failed save the source is RUNNING with its
// state (ERROR faults: reset, which loses it, as on real hardware) and can be
// saved again; after every failed resume the destination is STOP with none of
// the partial state, and can be resumed again. The error always names the step,
// and the errno when there is one.
import { describe, expect, it } from "vitest";
import type { FaultPoint } from "../../src/device/faults.js";
import { ERRNO, errnoName } from "../../src/protocol/region-io.js";
import { resume } from "../../src/protocol/resume.js";
import { type SaveOptions, save } from "../../src/protocol/save.js";
import type { ResumeItem } from "../../src/protocol/types.js";
import {
  type FaultCase as Case,
  destinationFor,
  expectClean,
  failure,
  faultCases,
  ItemSink,
  KiB,
  low,
  sim,
} from "./helpers.js";

const SRC = { stateSize: 24 * KiB, txnSize: 8 * KiB, seed: 11 };
/** Two data accesses per 8 KiB buffer: faults can strike mid-buffer. */
const MAX_ACCESS = 4 * KiB;

/** Pre-copy ends after its first buffer, so both phases carry data. */
function saveOptions(): SaveOptions {
  const stop = { aborted: false };
  return {
    stopCopy: stop,
    onProgress: (p) => {
      if (p.phase === "precopy" && p.transactions >= 1) stop.aborted = true;
    },
  };
}

/** The step a fault at `at` must be reported under. */
function stepFor(dir: "save" | "resume", at: FaultPoint): RegExp {
  const field = at.replace(/^(read|write) /, "");
  if (field === "device_state") return new RegExp(`^${dir}: `); // any state step (check, enter ..., re-read)
  return new RegExp(`^${dir}: ${at.split(" ")[0]} ${field}$`);
}

function checkError(e: Awaited<ReturnType<typeof failure>>, c: Case, dir: "save" | "resume"): void {
  expect(e.step).toMatch(stepFor(dir, c.fault.at));
  if (c.fault.short !== undefined) {
    expect(e.code).toBe("TRANSPORT");
    expect(e.message).toMatch(/short read/);
  } else {
    expect(e.code).toBe("DEVICE");
    expect(e.errno).toBe(errnoName(c.fault.errno!));
  }
}

// The clean runs that give the traces and the items to resume from.
const clean = await (async () => {
  const s = sim(SRC, MAX_ACCESS);
  const sink = new ItemSink();
  await save(s.io, sink, saveOptions());
  const d = sim(destinationFor(s.dev), MAX_ACCESS);
  await resume(d.io, sink.verified());
  expect(d.dev.digest()).toBe(s.dev.digest());
  expectClean(s.dev, d.dev);
  return { saveTrace: s.trace, resumeTrace: d.trace, items: sink.verified(), digest: s.dev.digest() };
})();

describe("fault at every step of a save", () => {
  const list = faultCases(clean.saveTrace);

  it("covers both phases, mid-buffer data reads and every transition", () => {
    const points = new Set(list.map((c) => c.fault.at));
    expect([...points].sort()).toEqual([
      "read data",
      "read data_offset",
      "read data_size",
      "read device_state",
      "read pending_bytes",
      "write device_state",
    ]);
    expect(list.filter((c) => c.fault.at === "write device_state").length).toBe(2 * 3); // 1→3, 3→2, 2→0
    expect(clean.saveTrace.filter((a) => a.point === "read data").length).toBeGreaterThanOrEqual(8);
  });

  for (const c of list) {
    it(c.name, async () => {
      const s = sim(SRC, MAX_ACCESS);
      const before = s.dev.digest();
      s.dev.inject(c.fault);
      const e = await failure(save(s.io, new ItemSink(), saveOptions()));
      expect(s.dev.faults.fired).toEqual([c.fault]);
      checkError(e, c, "save");
      expect(low(s.dev.state)).toBe(1);
      if (c.fault.then === "error") {
        expect(s.dev.resets).toBe(1); // the only way out of ERROR; the state is gone with it
        expect(e.message).toMatch(/device reset/);
      } else {
        expect(s.dev.resets).toBe(0);
        expect(s.dev.digest()).toBe(before);
      }
      // Before the first transition nothing needs putting back; after it the error says what recovery did.
      if (c.name.startsWith("#0 ")) expect(e.message).not.toMatch(/device back/);
      else expect(e.message).toMatch(/device back in RUNNING/);
      expectClean(s.dev);
      // The source works on: a second save starts a fresh session and restores exactly.
      const sink = new ItemSink();
      await save(s.io, sink, saveOptions());
      const d = sim(destinationFor(s.dev), MAX_ACCESS);
      await resume(d.io, sink.verified());
      expect(d.dev.digest()).toBe(s.dev.digest());
      expect(d.dev.received).toEqual(s.dev.sent);
      expectClean(s.dev, d.dev);
    });
  }
});

describe("fault at every step of a resume", () => {
  const list = faultCases(clean.resumeTrace);

  it("covers every access kind of the resume path", () => {
    const points = new Set(list.map((c) => c.fault.at));
    expect([...points].sort()).toEqual([
      "read data_offset",
      "read device_state",
      "write data",
      "write data_size",
      "write device_state",
    ]);
    expect(list.filter((c) => c.fault.at === "write device_state").length).toBe(2 * 2); // 1→4, 4→1
  });

  for (const c of list) {
    it(c.name, async () => {
      const d = sim({ ...SRC, empty: true }, MAX_ACCESS);
      d.dev.inject(c.fault);
      const e = await failure(resume(d.io, clean.items));
      expect(d.dev.faults.fired).toEqual([c.fault]);
      checkError(e, c, "resume");
      expect(low(d.dev.state)).toBe(0); // never RUNNING
      expect(d.dev.image.pristine).toBe(true); // none of the partial state
      expect(e.message).toMatch(/device left in STOP/);
      expectClean(d.dev);
      // The destination can take the stream again.
      await resume(d.io, clean.items);
      expect(d.dev.digest()).toBe(clean.digest);
      expectClean(d.dev);
    });
  }
});

describe("double faults", () => {
  it("save: ERROR and a failing reset — recovery retries the reset and the source ends RUNNING", async () => {
    const s = sim(SRC);
    s.dev.inject({ at: "write device_state", to: 2, then: "error" }).inject({ at: "reset", errno: ERRNO.EIO });
    const e = await failure(save(s.io, new ItemSink(), saveOptions()));
    expect(e.step).toBe("save: enter stop-and-copy");
    expect(e.message).toMatch(/device reset failed too.*EIO.*device back in RUNNING/);
    expect(s.dev.resets).toBe(1);
    expect(low(s.dev.state)).toBe(1);
    expectClean(s.dev);
  });

  it("save: a transient errno on the recovery's own state read is ridden out", async () => {
    const s = sim(SRC);
    const before = s.dev.digest();
    // Reads of device_state: 1 check, 2 before 1→3, 3 before 3→2, 4 the recovery's.
    s.dev
      .inject({ at: "read data_size", nth: 2, errno: ERRNO.EIO })
      .inject({ at: "read device_state", nth: 4, errno: ERRNO.EBUSY });
    const e = await failure(save(s.io, new ItemSink(), saveOptions()));
    expect(e.step).toBe("save: read data_size");
    expect(s.dev.faults.fired.length).toBe(2);
    expect(low(s.dev.state)).toBe(1);
    expect(s.dev.digest()).toBe(before);
    expectClean(s.dev);
  });

  it("resume: ERROR on 4 → 1 and a failing reset — the destination still ends in STOP, not RUNNING", async () => {
    const d = sim({ ...SRC, empty: true });
    d.dev.inject({ at: "write device_state", to: 1, then: "error" }).inject({ at: "reset", errno: ERRNO.EIO });
    const e = await failure(resume(d.io, clean.items));
    expect(e.step).toBe("resume: enter RUNNING");
    expect(e.message).toMatch(/device reset failed too/);
    expect(d.dev.resets).toBe(1);
    expect(low(d.dev.state)).toBe(0);
    expect(d.dev.image.pristine).toBe(true);
    expectClean(d.dev);
  });

  it("resume: a reset that never succeeds leaves the device out of RUNNING and says so", async () => {
    const d = sim({ ...SRC, empty: true });
    d.dev.inject({ at: "write data_size", errno: ERRNO.EIO });
    for (let i = 0; i < 10; i++) d.dev.inject({ at: "reset", errno: ERRNO.EIO });
    const e = await failure(resume(d.io, clean.items));
    expect(e.errno).toBe("EIO");
    expect(e.message).toMatch(/could not bring the device to STOP/);
    expect(low(d.dev.state)).toBe(4); // RESUMING: stopped, never started on partial state
    expectClean(d.dev);
  });
});

describe("stream failures on the resume side", () => {
  it("an item source that throws mid-stream leaves the destination in STOP without the partial state", async () => {
    const d = sim({ ...SRC, empty: true });
    async function* items(): AsyncGenerator<ResumeItem> {
      let n = 0;
      for (const i of clean.items) {
        if (i.kind === "transaction" && ++n === 3) throw new Error("checksum mismatch in frame 9");
        yield i;
      }
    }
    const e = await failure(resume(d.io, items()));
    expect(e.step).toBe("resume: read stream");
    expect(e.message).toMatch(/checksum mismatch in frame 9/);
    expect(low(d.dev.state)).toBe(0);
    expect(d.dev.image.pristine).toBe(true);
    expect(d.dev.received.length).toBe(2);
    expectClean(d.dev);
  });

  it("a MigstreamError from the stream keeps its code", async () => {
    const { MigstreamError } = await import("../../src/errors.js");
    const d = sim({ ...SRC, empty: true });
    function* items(): Generator<ResumeItem> {
      yield clean.items[0]; // the protocol record
      yield clean.items[1]; // the first phase: the device is in RESUMING by now
      throw new MigstreamError("CHECKSUM", "frame 2: checksum mismatch", { frame: 2 });
    }
    const e = await failure(resume(d.io, items()));
    expect(e.code).toBe("CHECKSUM");
    expect(low(d.dev.state)).toBe(0);
    expectClean(d.dev);
  });
});
