// The simulated device's own behaviour: option checks, its strictness log,
// fault plans, buffer sizes, and the in-process transport in front of it.
import { describe, expect, it } from "vitest";
import { FaultPlan } from "../../src/device/faults.js";
import { SimDevice } from "../../src/device/index.js";
import { MIN_TXN } from "../../src/device/records.js";
import { MigstreamError } from "../../src/errors.js";
import { ERRNO } from "../../src/protocol/region-io.js";
import { InProcessRegion } from "../../src/transport/in-process.js";
import { drain, feed, OFF, rd64, saveByHand, setState, takeBuffer } from "../protocol/raw.js";

const KiB = 1024;

async function rejects(p: Promise<unknown> | (() => unknown), code: string): Promise<MigstreamError> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(MigstreamError);
    expect((e as MigstreamError).code).toBe(code);
    return e as MigstreamError;
  }
  throw new Error("expected a rejection");
}

describe("simulated device options", () => {
  it("rejects impossible layouts and sizes as USAGE", async () => {
    const bad = [
      { dataOffset: 16 },
      { txnSize: MIN_TXN - 1 },
      { txnSize: [9000, 100] as const },
      { dataSize: 10 },
      { reservedBits: 3 },
      { stateSize: -1 },
      { dirtyPerTxn: 1.5 },
    ];
    for (const o of bad) await rejects(() => new SimDevice(o), "USAGE");
  });

  it("adopts a given image, and starts empty when asked", () => {
    const img = new Uint8Array(8 * KiB).fill(5);
    const dev = new SimDevice({ image: img });
    expect(dev.image.bytes).toBe(img);
    expect(new SimDevice({ stateSize: 8 * KiB, empty: true }).image.bytes.every((b) => b === 0)).toBe(true);
  });

  it("draws buffer sizes from the configured range", async () => {
    const dev = new SimDevice({ stateSize: 256 * KiB, txnSize: [100, 3000] });
    const txns = await saveByHand(dev);
    expect(txns.length).toBeGreaterThan(80);
    for (const t of txns.slice(0, -1)) {
      expect(t.length).toBeGreaterThanOrEqual(100);
      expect(t.length).toBeLessThanOrEqual(3000);
    }
    expect(new Set(txns.map((t) => t.length)).size).toBeGreaterThan(20);
  });
});

describe("strictness log", () => {
  it("notes a buffer acknowledged before all of it was read", async () => {
    const dev = new SimDevice({ stateSize: 16 * KiB, txnSize: 4 * KiB });
    await setState(dev, 3);
    await rd64(dev, OFF.pending);
    const at = await rd64(dev, OFF.offset);
    await rd64(dev, OFF.size);
    await dev.read(at, 100);
    await rd64(dev, OFF.pending);
    expect(dev.violations.length).toBe(1);
    expect(dev.violations[0].errno).toBe(0);
    expect(dev.violations[0].message).toMatch(/after reading 100 of/);
  });

  it("refuses an access while another is in progress (EBUSY)", async () => {
    const dev = new SimDevice({ stateSize: 16 * KiB, dataOffsetDelayMs: 20 });
    await setState(dev, 2);
    await rd64(dev, OFF.pending);
    const slow = rd64(dev, OFF.offset);
    const clash = dev.read(OFF.state, 4).then(
      () => 0,
      (e: { errno: number }) => e.errno,
    );
    expect(await clash).toBe(ERRNO.EBUSY);
    expect(await slow).toBe(dev.dataOffset);
    expect(dev.violations.map((v) => v.errno)).toEqual([ERRNO.EBUSY]);
  });

  it("rejects a transaction from another save session", async () => {
    const a = new SimDevice({ stateSize: 16 * KiB, txnSize: 4 * KiB, seed: 1 });
    const first = await saveByHand(a);
    await a.reset();
    await setState(a, 1);
    const second = await saveByHand(a);
    const dst = new SimDevice({ stateSize: 16 * KiB, txnSize: 4 * KiB, empty: true });
    await setState(dst, 4);
    await feed(dst, second[0]);
    await expect(feed(dst, first[1])).rejects.toMatchObject({ errno: ERRNO.EINVAL });
    expect(dst.rejected[0]).toMatch(/another save session/);
  });

  it("a save after a full drain leaves pending at 0 and the device clean", async () => {
    const dev = new SimDevice({ stateSize: 16 * KiB, txnSize: 4 * KiB });
    await setState(dev, 2);
    const txns = await drain(dev);
    expect(txns.length).toBeGreaterThan(4);
    expect(await rd64(dev, OFF.pending)).toBe(0);
    expect(dev.violations).toEqual([]);
  });
});

describe("fault plans", () => {
  it("fire once at the nth matching access, filtered by from/to", () => {
    const plan = new FaultPlan();
    plan.arm({ at: "read data", nth: 3 });
    plan.arm({ at: "write device_state", from: 3, to: 2 });
    expect(plan.hit("read data")).toBeUndefined();
    expect(plan.hit("read data")).toBeUndefined();
    expect(plan.hit("read data")?.nth).toBe(3);
    expect(plan.hit("read data")).toBeUndefined();
    expect(plan.hit("write device_state", 1, 3)).toBeUndefined();
    expect(plan.hit("write device_state", 3, 2)?.to).toBe(2);
    expect(plan.fired.length).toBe(2);
    expect(plan.pending).toBe(0);
  });
});

describe("in-process transport", () => {
  it("maps errnos to DEVICE, short reads to TRANSPORT, bad ranges and closed use to USAGE", async () => {
    const dev = new SimDevice({ stateSize: 16 * KiB, txnSize: 4 * KiB });
    const io = new InProcessRegion(dev, { maxAccess: 4096 });
    expect(io.size).toBe(dev.dataOffset + dev.dataSize);
    const e = await rejects(io.write(OFF.pending, new Uint8Array(8)), "DEVICE");
    expect(e.errno).toBe("EINVAL");
    dev.inject({ at: "read device_state", short: 2 });
    await rejects(io.read(0, 4), "TRANSPORT");
    dev.inject({ at: "read device_state", short: 1 });
    await rejects(io.read(0, 4, new Uint8Array(8)), "TRANSPORT"); // the zero-copy path too
    await rejects(io.read(io.size - 4, 8), "USAGE");
    await rejects(io.read(0, 4, new Uint8Array(2)), "USAGE");
    await rejects(() => new InProcessRegion(dev, { maxAccess: 0 }), "USAGE");
    await io.close();
    await rejects(io.read(0, 4), "USAGE");
    await rejects(io.reset(), "USAGE");
  });

  it("reads into the caller's buffer, and plain reads give a copy", async () => {
    const dev = new SimDevice({ stateSize: 16 * KiB, txnSize: 4 * KiB });
    const io = new InProcessRegion(dev);
    await setState(dev, 2);
    await rd64(dev, OFF.pending);
    const at = await rd64(dev, OFF.offset);
    const n = await rd64(dev, OFF.size);
    const into = new Uint8Array(n + 10);
    const got = await io.read(at, n, into);
    expect(got.buffer).toBe(into.buffer);
    const copy = await io.read(at, n);
    expect(Buffer.compare(copy, got)).toBe(0);
    copy.fill(0); // not a view of the device's section
    expect(Buffer.compare(await takeBuffer(dev), got)).toBe(0);
    expect(dev.violations).toEqual([]);
  });
});
