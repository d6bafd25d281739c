// The server against a raw client: the reference server's checks, argsz
// semantics, NO_REPLY, and misbehaving clients dropped without harm.
import { afterEach, describe, expect, it } from "vitest";
import {
  CMD,
  FLAG_ERROR,
  FLAG_NO_REPLY,
  HEADER_SIZE,
  REGION_FLAG_CAPS,
  TYPE_REPLY,
} from "../../src/transport/vfio-user/constants.js";
import { VfioUserServer } from "../../src/transport/vfio-user/server.js";
import {
  decodeDeviceInfo,
  decodeRegionInfo,
  decodeVersion,
  encodeRegionInfoRequest,
  encodeVersion,
  newMessage,
  writeAccess,
} from "../../src/transport/vfio-user/wire.js";
import { MemoryVendor, tempSocket } from "./helpers.js";
import { rawClient, reply } from "./raw-client.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup(logs: string[] = []) {
  const t = tempSocket();
  const vendor = new MemoryVendor(16384);
  const server = await VfioUserServer.listen(t.path, vendor, { log: (l) => logs.push(l) });
  cleanups.push(t.cleanup, () => server.close());
  const c = await rawClient(t.path);
  cleanups.push(() => c.close());
  return { c, vendor, server, logs };
}

const version = () => encodeVersion(0, 2, { capabilities: { migration: { pgsize: 4096 } } });

describe("vfio-user server checks", () => {
  it("answers VERSION with min(minor, 2), its max_data_xfer_size, and no twin_socket", async () => {
    const { c } = await setup();
    c.send(7, CMD.VERSION, encodeVersion(0, 5, { capabilities: { max_msg_fds: 1 } }));
    const [h, p] = await reply(c);
    expect([h.id, h.cmd, h.flags]).toEqual([7, CMD.VERSION, TYPE_REPLY]);
    const v = decodeVersion(p);
    expect([v.major, v.minor]).toEqual([0, 2]);
    expect(v.caps.max_data_xfer_size).toBe(1 << 20);
    expect(v.caps.twin_socket).toBeUndefined();
    expect(p[p.length - 1]).toBe(0);
  });

  it("drops a client whose first message is not VERSION, with EINVAL", async () => {
    const { c } = await setup();
    c.send(1, CMD.DEVICE_GET_INFO, new Uint8Array(16));
    const [h] = await reply(c);
    expect(h.flags).toBe(TYPE_REPLY | FLAG_ERROR);
    expect(h.errno).toBe(22);
    expect(await c.next()).toBe("closed");
  });

  it("refuses a foreign page size and a bad VERSION JSON, then drops the client", async () => {
    for (const body of [
      encodeVersion(0, 2, { capabilities: { migration: { pgsize: 8192 } } }),
      new Uint8Array([0, 0, 2, 0, 0x7b, 0]),
    ]) {
      const { c } = await setup();
      c.send(1, CMD.VERSION, body);
      const [h] = await reply(c);
      expect(h.errno).toBe(22);
      expect(await c.next()).toBe("closed");
    }
  });

  it("reports ≥ 10 regions, and the migration region's caps only when argsz fits", async () => {
    const { c, vendor } = await setup();
    c.send(1, CMD.VERSION, version());
    await reply(c);
    const info = new Uint8Array(16);
    new DataView(info.buffer).setUint32(0, 16, true);
    c.send(2, CMD.DEVICE_GET_INFO, info);
    const d = decodeDeviceInfo((await reply(c))[1]);
    expect(d).toEqual({ argsz: 16, flags: 3, numRegions: 11, numIrqs: 5 });
    c.send(3, CMD.DEVICE_GET_REGION_INFO, encodeRegionInfoRequest(9, 32));
    const small = (await reply(c))[1];
    expect(small.length).toBe(32);
    const s = decodeRegionInfo(small);
    // As the reference server: the size needed in argsz, no CAPS flag (the caps did not fit), cap_offset 0.
    expect([s.argsz, s.flags & REGION_FLAG_CAPS, s.capOffset, s.size]).toEqual([32 + 16 + 16 + 16, 0, 0, vendor.size]);
    c.send(40, CMD.DEVICE_GET_REGION_INFO, encodeRegionInfoRequest(9, 40));
    const between = (await reply(c))[1];
    expect([between.length, decodeRegionInfo(between).flags & REGION_FLAG_CAPS]).toEqual([40, 0]); // min(needed, argsz) bytes
    c.send(4, CMD.DEVICE_GET_REGION_INFO, encodeRegionInfoRequest(9, s.argsz));
    const full = decodeRegionInfo((await reply(c))[1]);
    expect(full.caps.map((x) => x.id)).toEqual([2, 1]);
    // Every index answers; unused ones are empty; an index past the end is EINVAL.
    for (let i = 0; i < 11; i++) {
      c.send(10 + i, CMD.DEVICE_GET_REGION_INFO, encodeRegionInfoRequest(i, 32));
      const r = decodeRegionInfo((await reply(c))[1]);
      expect(r.size).toBe(i === 9 ? vendor.size : i === 10 ? 8 : i === 7 ? 256 : 0);
    }
    c.send(30, CMD.DEVICE_GET_REGION_INFO, encodeRegionInfoRequest(11, 32));
    expect((await reply(c))[0].errno).toBe(22);
    c.send(31, CMD.DEVICE_GET_REGION_INFO, encodeRegionInfoRequest(9, 16));
    expect((await reply(c))[0].errno).toBe(22);
  });

  it("checks REGION_WRITE counts, read-only regions, and header-only messages", async () => {
    const { c, vendor } = await setup();
    c.send(1, CMD.VERSION, version());
    await reply(c);
    const w = new Uint8Array(16 + 4);
    writeAccess(w, 0, { offset: 100, region: 9, count: 8 }); // says 8, carries 4
    c.send(2, CMD.REGION_WRITE, w);
    expect((await reply(c))[0].errno).toBe(22);
    const d = new Uint8Array(16 + 4);
    writeAccess(d, 0, { offset: 0, region: 10, count: 4 }); // the digest region is read-only
    c.send(3, CMD.REGION_WRITE, d);
    expect((await reply(c))[0].errno).toBe(22);
    c.send(4, CMD.DEVICE_GET_INFO, new Uint8Array(0)); // msg_size 16 for a command that needs a payload
    expect((await reply(c))[0].errno).toBe(22);
    c.send(5, CMD.DEVICE_RESET, new Uint8Array(0)); // ...but DEVICE_RESET has none
    expect((await reply(c))[0].flags).toBe(TYPE_REPLY);
    expect(vendor.resets).toBe(1);
    expect(vendor.log.filter((a) => a.op === "write")).toEqual([]);
  });

  it("answers a read from a vendor's own memory (readView) without a copy, and changes nothing there before the reply left", async () => {
    const t = tempSocket();
    const vendor = new MemoryVendor(16384);
    const SIZE = 64 << 10;
    const big = new Uint8Array(SIZE).fill(0xab);
    const views: Uint8Array[] = [];
    // A vendor whose reads are views of one buffer that its next access overwrites (as a device's data section).
    const viewing = Object.assign(vendor, {
      size: SIZE,
      readView: async (offset: number, count: number) => {
        const v = big.subarray(offset, offset + count);
        views.push(v);
        return v;
      },
      write: async (offset: number, data: Uint8Array) => {
        big.fill(data[0]);
        big.set(data, offset);
      },
    });
    const server = await VfioUserServer.listen(t.path, viewing);
    cleanups.push(t.cleanup, () => server.close());
    const c = await rawClient(t.path);
    cleanups.push(() => c.close());
    c.send(1, CMD.VERSION, version());
    await reply(c);
    const r = new Uint8Array(16);
    writeAccess(r, 0, { offset: 0, region: 9, count: SIZE });
    const w = new Uint8Array(16 + 4).fill(0x11);
    writeAccess(w, 0, { offset: 0, region: 9, count: 4 });
    // Back to back: the write that changes the vendor's memory is already queued behind the read.
    c.send(2, CMD.REGION_READ, r);
    c.send(3, CMD.REGION_WRITE, w);
    const [h, p] = await reply(c);
    expect([h.id, h.flags, h.size]).toEqual([2, TYPE_REPLY, HEADER_SIZE + 16 + SIZE]);
    expect(p.subarray(16).every((b) => b === 0xab)).toBe(true);
    expect((await reply(c))[0].id).toBe(3);
    expect(views).toHaveLength(1);
    expect(big[100]).toBe(0x11);
  });

  it("is as strict as the reference: DEVICE_RESET with a payload, VERSION JSON without its NUL", async () => {
    const { c, vendor } = await setup();
    c.send(1, CMD.VERSION, version());
    await reply(c);
    c.send(2, CMD.DEVICE_RESET, new Uint8Array(8));
    expect((await reply(c))[0].errno).toBe(22);
    expect(vendor.resets).toBe(0);
    const { c: c2 } = await setup();
    c2.send(1, CMD.VERSION, version().subarray(0, -1));
    expect((await reply(c2))[0].errno).toBe(22);
    expect(await c2.next()).toBe("closed");
  });

  it("refuses DEVICE_RESET while the device is STOP or stop-and-copy (other commands still work)", async () => {
    const t = tempSocket();
    const vendor = Object.assign(new MemoryVendor(16384), { state: 1 });
    const server = await VfioUserServer.listen(t.path, vendor);
    cleanups.push(t.cleanup, () => server.close());
    const c = await rawClient(t.path);
    cleanups.push(() => c.close());
    c.send(1, CMD.VERSION, version());
    await reply(c);
    for (const [state, refused] of [
      [0, true],
      [2, true],
      [3, false],
      [4, false],
      [1, false],
    ] as const) {
      vendor.state = state;
      c.send(10 + state, CMD.DEVICE_RESET, new Uint8Array(0));
      expect((await reply(c))[0].errno).toBe(refused ? 22 : 0);
      c.send(20 + state, CMD.DEVICE_GET_REGION_INFO, encodeRegionInfoRequest(9, 32)); // the default server answers discovery in any state
      expect((await reply(c))[0].errno).toBe(0);
    }
    expect(vendor.resets).toBe(3);
  });

  it("sends nothing for NO_REPLY commands, even failing ones; a reply-type message gets EINVAL", async () => {
    const { c, vendor } = await setup();
    c.send(1, CMD.VERSION, version());
    await reply(c);
    const w = new Uint8Array(16 + 4).fill(9, 16);
    writeAccess(w, 0, { offset: 200, region: 9, count: 4 });
    c.send(2, CMD.REGION_WRITE, w, FLAG_NO_REPLY);
    c.send(3, CMD.DEVICE_GET_REGION_INFO, encodeRegionInfoRequest(99, 32), FLAG_NO_REPLY);
    c.send(4, CMD.DMA_READ, new Uint8Array(8), TYPE_REPLY | FLAG_NO_REPLY);
    c.send(5, CMD.DMA_READ, new Uint8Array(8), TYPE_REPLY);
    c.send(6, CMD.DEVICE_RESET, new Uint8Array(0));
    const [e] = await reply(c);
    expect([e.id, e.flags, e.errno]).toEqual([5, TYPE_REPLY | FLAG_ERROR, 22]);
    const [h] = await reply(c);
    expect([h.id, h.flags]).toEqual([6, TYPE_REPLY]);
    expect([...vendor.mem.subarray(200, 204)]).toEqual([9, 9, 9, 9]);
  });

  it("answers a client announcing an oversized message with EINVAL and drops it, then serves the next one", async () => {
    const logs: string[] = [];
    const { c, server } = await setup(logs);
    c.send(1, CMD.VERSION, version());
    await reply(c);
    const m = newMessage(2, CMD.REGION_WRITE, 0, 0);
    new DataView(m.buffer).setUint32(4, 0x7fff_ffff, true);
    c.raw(m);
    const [e] = await reply(c);
    expect([e.id, e.flags, e.errno]).toEqual([2, TYPE_REPLY | FLAG_ERROR, 22]);
    expect(await c.next()).toBe("closed");
    expect(logs.some((l) => /exceeds the limit/.test(l))).toBe(true);
    for (let i = 0; i < 100 && server.connected; i++) await new Promise((r) => setTimeout(r, 10));
    expect(server.connected).toBe(false);
  });

  it("answers unsupported commands with ENOTSUP", async () => {
    const { c } = await setup();
    c.send(1, CMD.VERSION, version());
    await reply(c);
    c.send(2, CMD.DMA_MAP, new Uint8Array(32));
    expect((await reply(c))[0].errno).toBe(95);
  });
});
