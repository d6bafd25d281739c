// The simulated device as text (sim: specs, serve flags, variants, faults),
// `sim:` devices in-process, and the disconnect policy of a served device.
import { describe, expect, it } from "vitest";
import { SimDevice } from "../../src/device/index.js";
import { isMigstreamError } from "../../src/errors.js";
import { type ResumeItem, resume, STATE_RESUMING, STATE_RUNNING, STATE_STOP, save } from "../../src/protocol/index.js";
import { parseFault } from "../../src/transport/sim/fault-spec.js";
import { SIM_VARIANT_NAMES, SIM_VARIANTS, simDeviceOptions, variantOptions } from "../../src/transport/sim/options.js";
import { recoverSim, serveSim } from "../../src/transport/sim/serve.js";
import { type OpenedDevice, openDevice, parseDeviceSpec } from "../../src/transport/spec.js";
import { connectVfioUser } from "../../src/transport/vfio-user/client.js";
import { tempSocket } from "./helpers.js";

function usageOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(isMigstreamError(e, "USAGE"), String(e)).toBe(true);
    return (e as Error).message;
  }
  throw new Error("expected a USAGE error");
}

/** Saves `region` into resume items (copies), ending with `verified`. */
async function saveItems(region: Parameters<typeof save>[0] | OpenedDevice): Promise<ResumeItem[]> {
  if (!("read" in region)) throw new Error("a v1 device was expected");
  const items: ResumeItem[] = [];
  await save(region, {
    phase: (phase, iteration) => void items.push({ kind: "phase", phase, iteration }),
    transaction: (data) => void items.push({ kind: "transaction", data: data.slice() }),
  });
  items.push({ kind: "verified" });
  return items;
}

describe("sim options", () => {
  it("maps spec keys to device options", () => {
    expect(
      simDeviceOptions({
        state: "64KiB",
        seed: "0x10",
        txn: "4KiB-8KiB",
        dirty: "2",
        empty: "1",
        "data-size": "16KiB",
      }),
    ).toEqual({
      stateSize: 65536,
      seed: 16,
      txnSize: [4096, 8192],
      dirtyPerTxn: 2,
      empty: true,
      dataSize: 16384,
    });
    expect(simDeviceOptions({ variant: "mlx5+whole-buffer" })).toEqual({ ack: "data_size", wholeBufferOnly: true });
    expect(simDeviceOptions({ variant: "libvfio-user" })).toEqual({
      ack: "data_offset",
      stickyZeroPending: true,
      wholeBufferOnly: true,
      reservedEinval: true,
      matrix: "libvfio-user",
      sameStateResets: true,
    });
    expect(variantOptions("mlx5,packed")).toEqual({ ack: "data_size", dataOffset: 32 });
  });

  it("refuses unknown keys, variants and bad values", () => {
    expect(usageOf(() => simDeviceOptions({ colour: "red" }))).toMatch(/unknown option 'colour'.*known: state/);
    expect(usageOf(() => simDeviceOptions({ variant: "acme" }))).toMatch(/unknown variant 'acme'.*mlx5/);
    expect(usageOf(() => simDeviceOptions({ seed: "-1" }))).toMatch(/seed '-1'/);
    expect(usageOf(() => simDeviceOptions({ seed: "0x100000000" }))).toMatch(/above/);
    expect(usageOf(() => simDeviceOptions({ txn: "8KiB-4KiB" }))).toMatch(/runs backwards/);
    expect(usageOf(() => simDeviceOptions({ empty: "maybe" }))).toMatch(/not true or false/);
    expect(usageOf(() => simDeviceOptions({ state: "lots" }))).toMatch(/state size: 'lots'/);
  });

  it("every variant builds a device", () => {
    for (const name of SIM_VARIANT_NAMES) {
      const d = new SimDevice({ stateSize: 8192, ...SIM_VARIANTS[name] });
      expect(d.size).toBeGreaterThan(32);
    }
  });
});

describe("fault specs", () => {
  it("parses points, keys, errno names and states", () => {
    expect(parseFault("read-data,nth=3,errno=EBUSY")).toEqual({ at: "read data", nth: 3, errno: 16 });
    expect(parseFault("write-device_state,to=STOP,from=PRECOPY,then=error,errno=25")).toEqual({
      at: "write device_state",
      to: 0,
      from: 3,
      then: "error",
      errno: 25,
    });
    expect(parseFault("read data_offset")).toEqual({ at: "read data_offset" });
    expect(parseFault("read-pending_bytes,value=0x10")).toEqual({ at: "read pending_bytes", value: 16n });
    expect(parseFault("reset")).toEqual({ at: "reset" });
  });

  it("refuses what cannot be armed", () => {
    expect(usageOf(() => parseFault("read-dta"))).toMatch(/unknown point 'read-dta'.*points: read-device_state/);
    expect(usageOf(() => parseFault("read-data,nth=0"))).toMatch(/nth=0 is outside 1/);
    expect(usageOf(() => parseFault("read-data,errno=EWHAT"))).toMatch(/errno=EWHAT/);
    expect(usageOf(() => parseFault("read-data,then=error"))).toMatch(/write-device_state only/);
    expect(usageOf(() => parseFault("write-data,short=2"))).toMatch(/reads only/);
    expect(usageOf(() => parseFault("write-device_state,to=FLYING"))).toMatch(/not a state/);
    expect(usageOf(() => parseFault("read-data,nth=1,nth=2"))).toMatch(/given twice/);
    expect(usageOf(() => parseFault("read-data,oops"))).toMatch(/not key=value/);
  });
});

describe("sim: device specs (in-process)", () => {
  it("are checked when parsed", () => {
    expect(parseDeviceSpec("sim:state=64KiB,variant=mlx5+packed,empty=1")).toEqual({
      kind: "sim",
      options: { state: "64KiB", variant: "mlx5+packed", empty: "1" },
    });
    expect(usageOf(() => parseDeviceSpec("sim:state=64KiB,variant=acme"))).toMatch(
      /^bad device spec 'sim:state=64KiB,variant=acme'.*unknown variant/,
    );
  });

  it("save from one and resume into another gives the same digest", async () => {
    const src = await openDevice("sim:state=96KiB,seed=4,txn=8KiB,variant=mlx5");
    const dst = await openDevice("sim:state=96KiB,txn=8KiB,variant=mlx5,empty=1");
    const before = await src.stateDigest!();
    expect(await dst.stateDigest!()).not.toBe(before);
    if (!("read" in dst)) throw new Error("a v1 device was expected");
    await resume(dst, await saveItems(src));
    expect(await dst.stateDigest!()).toBe(before);
    expect(src.label).toBe("sim");
  });
});

describe("served sim device: a client going away", () => {
  async function served(opts: Parameters<typeof serveSim>[1] = {}) {
    const t = tempSocket();
    const s = await serveSim(t.path, { device: { stateSize: 64 << 10, txnSize: 8192, seed: 3 }, ...opts });
    return {
      ...s,
      path: t.path,
      async close() {
        await s.server.close();
        t.cleanup();
      },
    };
  }

  it("after a finished save: back to RUNNING with the saved state, at once for the next client", async () => {
    const s = await served();
    try {
      const before = s.device.digest();
      const c = await connectVfioUser(s.path, { timeoutMs: 5000 });
      await saveItems(c);
      expect(s.device.state & 7).toBe(STATE_STOP);
      await c.close();
      // The next client connects right away; its first command waits for the policy to run.
      const c2 = await connectVfioUser(s.path, { timeoutMs: 5000 });
      const st = await c2.read(0, 4);
      expect(st[0] & 7).toBe(STATE_RUNNING);
      expect(await c2.stateDigest()).toBe(before);
      await c2.close();
      expect(s.device.violations).toEqual([]);
      expect(s.device.resets).toBe(0);
    } finally {
      await s.close();
    }
  });

  it("mid-restore (RESUMING): reset and stopped, the partial state dropped, never RUNNING", async () => {
    const src = await openDevice("sim:state=64KiB,txn=8KiB,seed=9");
    const items = await saveItems(src);
    const s = await served({ device: { stateSize: 64 << 10, txnSize: 8192, empty: true } });
    try {
      const c = await connectVfioUser(s.path, { timeoutMs: 5000 });
      // Resume without `verified`... but stop the client after three transactions.
      const partial = items.slice(0, 4).filter((i) => i.kind !== "verified");
      const running = resume(
        c,
        (async function* () {
          yield* partial;
          await c.close(); // the client dies mid-stream
          yield { kind: "verified" } as ResumeItem;
        })(),
      );
      await expect(running).rejects.toThrow();
      expect(s.device.received.length).toBeGreaterThan(0);
      const c2 = await connectVfioUser(s.path, { timeoutMs: 5000 });
      expect((await c2.read(0, 4))[0] & 7).toBe(STATE_STOP);
      await c2.close();
      expect(s.device.resets).toBe(1);
      expect(s.device.image.bytes.every((b) => b === 0)).toBe(true);
      expect(s.device.state & 7).not.toBe(STATE_RESUMING);
    } finally {
      await s.close();
    }
  });

  it("a data read the device cuts short is an EINVAL reply, not a short message", async () => {
    const s = await served({ faults: [parseFault("read-data,short=5")] });
    try {
      const c = await connectVfioUser(s.path, { timeoutMs: 5000 });
      const e = await save(c, { phase() {}, transaction() {} }).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(isMigstreamError(e, "DEVICE")).toBe(true);
      expect((e as { errno?: string }).errno).toBe("EINVAL");
      expect((e as { step?: string }).step).toMatch(/read data/);
      expect(s.device.faults.fired).toHaveLength(1);
      await c.close();
    } finally {
      await s.close();
    }
  });

  it("recoverSim: RUNNING untouched, SAVING back to RUNNING, ERROR reset", async () => {
    const d = new SimDevice({ stateSize: 16384, txnSize: 8192 });
    await recoverSim(d);
    expect(d.stateWrites).toEqual([]);
    await d.write(0, new Uint8Array([3, 0, 0, 0])); // pre-copy
    const digest = d.digest();
    await recoverSim(d);
    expect(d.state & 7).toBe(STATE_RUNNING);
    expect(d.digest()).toBe(digest);
    d.inject({ at: "write device_state", then: "error" });
    await expect(d.write(0, new Uint8Array([2, 0, 0, 0]))).rejects.toThrow();
    expect(d.state & 7).toBe(6);
    await recoverSim(d);
    expect(d.state & 7).toBe(STATE_RUNNING);
    expect(d.resets).toBe(1);
  });
});
