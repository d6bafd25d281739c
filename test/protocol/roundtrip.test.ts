// save → items → resume over the simulated device, in-process, for every vendor
// variant (§7 of the protocol notes) and for pre-copy while the source keeps
// changing its state. The "stream" is the in-memory list of ResumeItems.
import { describe, expect, it } from "vitest";
import type { SimDeviceOptions } from "../../src/device/index.js";
import { resume, startResumed } from "../../src/protocol/resume.js";
import type { SaveOptions } from "../../src/protocol/save.js";
import { save } from "../../src/protocol/save.js";
import { destinationFor, expectClean, ItemSink, KiB, low, roundTrip, sim } from "./helpers.js";

const STATE = 256 * KiB;

/** Vendor variants: each a source option set; the destination gets the same behaviour options. */
const VARIANTS: Record<string, SimDeviceOptions> = {
  "reference (data section at 4096, 64 KiB buffers)": {},
  "data section right after the header (offset 32)": { dataOffset: 32 },
  "ack needs data_size read (mlx5 v1 style)": { ack: "data_size" },
  "ack on the pending read after data_offset (libvfio-user style)": { ack: "data_offset" },
  "sticky zero pending_bytes in pre-copy": { stickyZeroPending: true },
  "reserved field answers EINVAL": { reservedEinval: true },
  "whole-buffer-only data access": { wholeBufferOnly: true },
  "reserved bits 0x100 in device_state": { reservedBits: 0x100 },
  "libvfio-user transition matrix": { matrix: "libvfio-user" },
  "no pre-copy data": { precopyData: false },
  "buffer sizes drawn from 64 B..9 KiB": { txnSize: [64, 9 * KiB] },
  "smallest buffers (pages split across many)": { txnSize: 64, stateSize: 16 * KiB },
  "no checksums, no END digest": { checksums: false, endDigest: false },
};

/** Behaviour options the destination shares with the source. */
function shared(v: SimDeviceOptions): SimDeviceOptions {
  const { stateSize: _s, precopyData: _p, stickyZeroPending: _z, ack: _a, ...rest } = v;
  return rest;
}

const MODES: Record<string, { src: SimDeviceOptions; save: SaveOptions }> = {
  "pre-copy": { src: {}, save: {} },
  "pre-copy with dirtying": { src: { dirtyPerTxn: 3 }, save: { policy: { maxIterations: 4 } } },
  "suspend (no pre-copy)": { src: {}, save: { precopy: false } },
};

describe("round trips over every vendor variant", () => {
  for (const [name, variant] of Object.entries(VARIANTS)) {
    for (const [mode, m] of Object.entries(MODES)) {
      it(`${name} — ${mode}`, async () => {
        const r = await roundTrip({ stateSize: STATE, seed: 7, ...variant, ...m.src }, shared(variant), m.save);
        if (mode === "suspend (no pre-copy)") {
          expect(r.summary.iterations).toBe(0);
          expect(r.summary.precopy.transactions).toBe(0);
        }
        if (mode === "pre-copy" && variant.precopyData !== false) {
          expect(r.summary.precopy.bytes).toBeGreaterThanOrEqual(r.src.image.size);
        }
        if (variant.precopyData === false) expect(r.summary.precopy.transactions).toBe(0);
      });
    }
  }

  it("round-trips through a transport that splits data accesses (8 B, 1000 B and 4 KiB pieces)", async () => {
    for (const maxAccess of [8, 1000, 4096]) {
      await roundTrip(
        { stateSize: 32 * KiB, txnSize: 8 * KiB, seed: maxAccess },
        {},
        { policy: { maxIterations: 2 } },
        {},
        maxAccess,
      );
    }
  });
});

describe("pre-copy with a source that keeps changing its state", () => {
  it("sends what the running device dirtied; the destination ends with the state at stop time", async () => {
    const s = sim({ stateSize: STATE, seed: 3, txnSize: 16 * KiB, dirtyPerTxn: 2 });
    const d = sim(destinationFor(s.dev));
    const before = s.dev.digest();
    const sink = new ItemSink();
    let touched = 0;
    // The VM keeps running too: more pages change between transactions.
    const summary = await save(s.io, sink, {
      policy: { maxIterations: 6 },
      onProgress: (p) => {
        if (p.phase === "precopy") touched += s.dev.run(5);
      },
    });
    const atStop = s.dev.digest();
    expect(touched).toBeGreaterThan(0);
    expect(atStop).not.toBe(before); // the state really changed while pre-copy ran
    expect(summary.iterations).toBe(6);
    expect(summary.precopyEnd).toBe("iterations");
    expect(summary.precopy.bytes).toBeGreaterThan(STATE); // dirtied pages went again
    expect(s.dev.run(5)).toBe(0); // stopped: no more changes
    await resume(d.io, sink.verified());
    expect(d.dev.digest()).toBe(atStop);
    expect(d.dev.received).toEqual(s.dev.sent);
    expectClean(s.dev, d.dev);
  });

  it("converges when the device stops dirtying (pending reaches 0 before stop-and-copy)", async () => {
    const r = await roundTrip(
      { stateSize: 64 * KiB, txnSize: 8 * KiB, dirtyPerTxn: 1 },
      {},
      { policy: { maxIterations: 100, pendingThreshold: 4 * KiB } },
    );
    expect(r.summary.precopyEnd).toBe("converged");
    expect(r.summary.stopcopy.transactions).toBeGreaterThanOrEqual(1); // at least the END record
  });
});

describe("the destination can stay in RESUMING", () => {
  it("start: false leaves RESUMING; startResumed then validates and starts it", async () => {
    const r = await roundTrip({ stateSize: 64 * KiB }, {}, {}, { start: false });
    expect(low(r.dst.state)).toBe(4);
    expect(r.dst.run(3)).toBe(0); // not running
    const { InProcessRegion } = await import("../../src/transport/in-process.js");
    await startResumed(new InProcessRegion(r.dst));
    expect(low(r.dst.state)).toBe(1);
    expect(r.dst.digest()).toBe(r.digest);
    expectClean(r.dst);
  });
});
