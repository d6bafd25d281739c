// The rules a vfio-user client must follow (reference notes vfio-user.md and
// vfio-migration-v1.md; table in docs/TRANSPORTS.md), each proved against the
// strict server that behaves as the reference does (variant "libvfio-user",
// in process, every handled message recorded): our client's traffic of a whole
// pre-copy save and restore obeys the rule, and the strict server refuses the
// violation (so a client breaking the rule fails against it).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SimDevice } from "../../src/device/index.js";
import { isMigstreamError, type MigstreamError } from "../../src/errors.js";
import { type Phase, type ResumeItem, resume, save } from "../../src/protocol/index.js";
import { InProcessRegion } from "../../src/transport/in-process.js";
import type { SimRegion } from "../../src/transport/sim/open.js";
import { variantOptions } from "../../src/transport/sim/options.js";
import { openDevice } from "../../src/transport/spec.js";
import { connectVfioUser } from "../../src/transport/vfio-user/client.js";
import { CMD, FLAG_ERROR, HEADER_SIZE, REGION_FLAG_CAPS, TYPE_REPLY } from "../../src/transport/vfio-user/constants.js";
import { serverMaxMessage } from "../../src/transport/vfio-user/reference.js";
import {
  decodeRegionInfo,
  decodeVersion,
  encodeRegionInfoRequest,
  encodeVersion,
  newMessage,
  writeAccess,
} from "../../src/transport/vfio-user/wire.js";
import { type Raw, rawClient, reply } from "./raw-client.js";
import { type Migration, migrateStrict, type Strict, strictServer, type Traced } from "./strict-server.js";

const REGION = 9;
const DATA_OFFSET = 4096;
const EINVAL = 22;

let m: Migration;
/** Every message our client sent to either strict server, in order. */
let all: Traced[];
const extra: Strict[] = [];

beforeAll(async () => {
  m = await migrateStrict();
  all = [...m.src.trace, ...m.dst.trace];
});
afterAll(async () => {
  await Promise.all([m?.src.cleanup(), m?.dst.cleanup(), ...extra.map((s) => s.cleanup())]);
});

/** A fresh strict server and a raw client that has sent a valid VERSION. */
async function rawStrict(): Promise<{ s: Strict; c: Raw }> {
  const s = await strictServer();
  extra.push(s);
  const c = await rawClient(s.path);
  c.send(1, CMD.VERSION, encodeVersion(0, 2, { capabilities: {} }));
  const [h] = await reply(c);
  expect(h.flags & FLAG_ERROR).toBe(0);
  return { s, c };
}

/** Expects an EINVAL error reply (header only) to msg_id `id`. */
async function expectEinval(c: Raw, id: number): Promise<void> {
  const [h, p] = await reply(c);
  expect([h.id, h.flags, h.errno, p.length]).toEqual([id, TYPE_REPLY | FLAG_ERROR, EINVAL, 0]);
}

function regionAccess(offset: number, count: number, data?: Uint8Array): Uint8Array {
  const p = new Uint8Array(16 + (data?.length ?? 0));
  writeAccess(p, 0, { offset, region: REGION, count });
  if (data) p.set(data, 16);
  return p;
}

/** Register/data accesses to the migration region as tokens: R0/W0 device_state, P pending, O data_offset, S data_size read, Z data_size write, D data. */
function tokens(trace: Traced[]): string {
  const names: Record<number, string> = { 0: "0", 8: "P", 16: "O", 24: "S" };
  return trace
    .filter((t) => t.access?.region === REGION)
    .map((t) => {
      const a = t.access!;
      const write = t.h.cmd === CMD.REGION_WRITE;
      if (a.offset >= DATA_OFFSET) return "D";
      if (a.offset === 24 && write) return "Z";
      return a.offset === 0 ? (write ? "W0" : "R0") : names[a.offset];
    })
    .join(" ");
}

describe("vfio-user client rules, against the strict (reference-like) server", () => {
  it("the migration through two strict servers succeeds, state intact, no device violations", () => {
    expect(m.saved.transactions).toBeGreaterThan(10);
    expect(m.saved.iterations).toBeGreaterThanOrEqual(1);
    expect(m.restored.transactions).toBe(m.saved.transactions);
    expect(m.dst.device.digest()).toBe(m.src.device.digest());
    expect(m.src.device.violations).toEqual([]);
    expect(m.dst.device.violations).toEqual([]);
  });

  it("R1 VERSION first: major 0, minor 2, NUL-terminated JSON, pgsize 4096, no twin_socket", async () => {
    for (const t of [m.src.trace, m.dst.trace]) {
      const v = t[0];
      expect(v.h.cmd).toBe(CMD.VERSION);
      expect(t.filter((x) => x.h.cmd === CMD.VERSION)).toHaveLength(1);
      expect(v.payload.at(-1)).toBe(0);
      const d = decodeVersion(v.payload);
      expect([d.major, d.minor]).toEqual([0, 2]);
      expect((d.caps.migration as { pgsize: number }).pgsize).toBe(4096);
      expect(d.caps.twin_socket).toBeUndefined();
    }
    // The strict server: JSON without its NUL → EINVAL and the connection is dropped; so is a first message that is not VERSION.
    const s = await strictServer();
    extra.push(s);
    const c = await rawClient(s.path);
    const noNul = encodeVersion(0, 2, { capabilities: {} }).subarray(0, -1);
    c.send(1, CMD.VERSION, noNul);
    await expectEinval(c, 1);
    expect(await c.next()).toBe("closed");
    const s2 = await strictServer();
    extra.push(s2);
    const c2 = await rawClient(s2.path);
    c2.send(1, CMD.DEVICE_GET_INFO, new Uint8Array(16));
    await expectEinval(c2, 1);
    expect(await c2.next()).toBe("closed");
  });

  it("R2 the server's VERSION reply is taken as the reference words it (spaced JSON, max_msg_fds 8)", async () => {
    const s = await strictServerExtra();
    const raw = await rawClient(s.path);
    raw.send(1, CMD.VERSION, encodeVersion(0, 2));
    const text = new TextDecoder().decode((await reply(raw))[1].subarray(4));
    expect(text).toBe(
      '{ "capabilities": { "max_msg_fds": 8, "max_data_xfer_size": 1048576, "migration": { "pgsize": 4096 } } }\0',
    );
    raw.close();
    const r = await connectVfioUser((await strictServerExtra()).path, { timeoutMs: 5000 });
    await r.close();
    expect(r.info.serverCaps).toEqual({ max_msg_fds: 8, max_data_xfer_size: 1 << 20, migration: { pgsize: 4096 } });
    expect([r.info.protocol.major, r.info.protocol.minor, r.maxAccess]).toEqual([0, 2, 1 << 20]);
  });

  it("R3 every message is a command (type 0); the strict server answers anything else with EINVAL", async () => {
    expect(all.every((t) => (t.h.flags & 0xf) === 0)).toBe(true);
    const { c } = await rawStrict();
    c.send(7, CMD.DEVICE_GET_INFO, new Uint8Array(16), TYPE_REPLY);
    await expectEinval(c, 7);
  });

  it("R4 msg_size 16 only for DEVICE_RESET, which never carries a payload", async () => {
    for (const t of all) expect(t.h.size === HEADER_SIZE).toBe(t.h.cmd === CMD.DEVICE_RESET);
    for (const t of all.filter((x) => x.h.cmd === CMD.DEVICE_RESET)) expect(t.h.size).toBe(HEADER_SIZE);
    const { c } = await rawStrict();
    c.send(2, CMD.DEVICE_GET_INFO, new Uint8Array(0));
    await expectEinval(c, 2);
    c.send(3, CMD.DEVICE_RESET, new Uint8Array(4));
    await expectEinval(c, 3);
  });

  it("R5 every access within max_data_xfer_size, every message within what the server accepts", async () => {
    const limit = serverMaxMessage(1 << 20);
    for (const t of all) {
      expect(t.h.size).toBeLessThanOrEqual(limit);
      if (t.access) expect(t.access.count).toBeLessThanOrEqual(1 << 20);
    }
    // With a small limit offered, our client keeps to it (buffers of 16 KiB fit whole).
    const small = await migrateStrict({ maxDataXfer: 16 << 10 });
    extra.push(small.src, small.dst);
    for (const t of [...small.src.trace, ...small.dst.trace])
      if (t.access) expect(t.access.count).toBeLessThanOrEqual(16 << 10);
    expect(small.dst.device.digest()).toBe(small.src.device.digest());
    // The strict server: a count above its limit → EINVAL; a msg_size above a whole REGION_WRITE → EINVAL, then closed.
    const { c } = await rawStrict();
    c.send(4, CMD.REGION_READ, regionAccess(DATA_OFFSET, (1 << 20) + 1));
    await expectEinval(c, 4);
    const big = newMessage(5, CMD.REGION_WRITE, 0, 0);
    new DataView(big.buffer).setUint32(4, limit + 1, true);
    c.raw(big);
    await expectEinval(c, 5);
    expect(await c.next()).toBe("closed");
  });

  it("R6 one socket write per message; the messages of one task go out corked together (one writev)", async () => {
    const s = await strictServer();
    extra.push(s);
    const r = await connectVfioUser(s.path, { timeoutMs: 5000 });
    const sock = r.session.channel.socket as unknown as {
      write: (...a: unknown[]) => boolean;
      cork: () => void;
      uncork: () => void;
    };
    const write = sock.write.bind(sock);
    const cork = sock.cork.bind(sock);
    const uncork = sock.uncork.bind(sock);
    const calls: string[] = [];
    sock.write = (...a: unknown[]) => {
      calls.push(`write ${(a[0] as Uint8Array).length}`);
      return write(...a);
    };
    sock.cork = () => {
      calls.push("cork");
      cork();
    };
    sock.uncork = () => {
      calls.push("uncork");
      uncork();
    };
    const before = s.trace.length;
    await Promise.all([r.read(0, 4), r.read(0, 4), r.read(0, 4)]);
    await r.read(0, 4); // alone in its task: a plain write
    await r.close();
    expect(s.trace.length - before).toBe(4);
    // 32 bytes each: the header and the region access, whole.
    expect(calls).toEqual(["cork", "write 32", "write 32", "write 32", "uncork", "write 32"]);
  });

  it("R7 replies matched by msg_id; msg_ids of outstanding requests are distinct", () => {
    for (const trace of [m.src.trace, m.dst.trace]) {
      // The server handles in order and replies at once, so consecutive ids must differ (the client picks a free one).
      for (let i = 1; i < trace.length; i++) expect(trace[i].h.id).not.toBe(trace[i - 1].h.id);
    }
  });

  it("R8 an error reply surfaces as DEVICE with its errno and the step", async () => {
    const s = await strictServer();
    extra.push(s);
    const r = await connectVfioUser(s.path, { timeoutMs: 5000 });
    try {
      const e = (await r.read(4, 4).then(
        () => undefined,
        (x: unknown) => x,
      )) as MigstreamError; // `reserved`: this server answers EINVAL
      expect(isMigstreamError(e, "DEVICE")).toBe(true);
      expect(e.errno).toBe("EINVAL");
      expect(e.step).toMatch(/region read 4@0x4/);
    } finally {
      await r.close();
    }
  });

  it("R9 every wait is bounded: a second client of the one-client server times out at VERSION", async () => {
    const s = await strictServer();
    extra.push(s);
    const first = await connectVfioUser(s.path, { timeoutMs: 5000 });
    try {
      const t0 = performance.now();
      const e = (await connectVfioUser(s.path, { timeoutMs: 300 }).then(
        () => undefined,
        (x: unknown) => x,
      )) as MigstreamError;
      expect(isMigstreamError(e, "TIMEOUT")).toBe(true);
      expect(e.step).toBe("version");
      expect(performance.now() - t0).toBeLessThan(5000);
    } finally {
      await first.close();
    }
  });

  it("R10 DEVICE_GET_INFO with argsz ≥ 16", async () => {
    for (const t of all.filter((x) => x.h.cmd === CMD.DEVICE_GET_INFO)) {
      expect(new DataView(t.payload.buffer).getUint32(0, true)).toBeGreaterThanOrEqual(16);
    }
    const { c } = await rawStrict();
    const info = new Uint8Array(16);
    new DataView(info.buffer).setUint32(0, 8, true);
    c.send(6, CMD.DEVICE_GET_INFO, info);
    await expectEinval(c, 6);
  });

  it("R11 region info asked with argsz 32, again with the reply's argsz whenever larger, whatever the flags", async () => {
    const asked = (t: Traced[]) =>
      t
        .filter((x) => x.h.cmd === CMD.DEVICE_GET_REGION_INFO)
        .map((x) => {
          const dv = new DataView(x.payload.buffer);
          return [dv.getUint32(8, true), dv.getUint32(0, true)];
        });
    const src = asked(m.src.trace);
    // Ten regions asked at 32; the migration region again at 48 (its type cap).
    expect(src.filter(([, a]) => a === 32).map(([i]) => i)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(src.filter(([, a]) => a !== 32)).toEqual([[9, 48]]);
    // The strict server's answer at 32 carries no CAPS flag: only the argsz says to ask again.
    const { c } = await rawStrict();
    c.send(8, CMD.DEVICE_GET_REGION_INFO, encodeRegionInfoRequest(REGION, 32));
    const short = decodeRegionInfo((await reply(c))[1], 32);
    expect([short.argsz, short.flags & REGION_FLAG_CAPS, short.capOffset, short.truncated]).toEqual([48, 0, 0, true]);
    c.send(9, CMD.DEVICE_GET_REGION_INFO, encodeRegionInfoRequest(REGION, 48));
    const full = decodeRegionInfo((await reply(c))[1], 48);
    expect([full.flags & REGION_FLAG_CAPS, full.caps.map((x) => x.id)]).toEqual([REGION_FLAG_CAPS, [2]]);
  });

  it("R12 the migration region found by its type capability (3, 1); only region 9 of 10 has it", async () => {
    const r = await connectVfioUser((await strictServerExtra()).path, { timeoutMs: 5000 });
    try {
      expect(r.index).toBe(REGION);
      expect(r.info.device.numRegions).toBe(10);
      expect(r.info.typedRegions.map((x) => x.index)).toEqual([REGION]);
      expect(r.info.region.sparseAreas).toEqual([]);
    } finally {
      await r.close();
    }
  });

  it("R13 only VERSION, DEVICE_GET_INFO, DEVICE_GET_REGION_INFO, REGION_READ/WRITE (and DEVICE_RESET): no mmap, no fds", () => {
    const used = new Set(all.map((t) => t.h.cmd));
    for (const cmd of used)
      expect([
        CMD.VERSION,
        CMD.DEVICE_GET_INFO,
        CMD.DEVICE_GET_REGION_INFO,
        CMD.REGION_READ,
        CMD.REGION_WRITE,
        CMD.DEVICE_RESET,
      ]).toContain(cmd);
  });

  it("R14 registers at their native width, never `reserved`", async () => {
    const width: Record<number, number> = { 0: 4, 8: 8, 16: 8, 24: 8 };
    for (const t of all) {
      if (t.access?.region !== REGION || t.access.offset >= DATA_OFFSET) continue;
      expect(width[t.access.offset]).toBe(t.access.count);
    }
    // The strict device: device_state at width 8, and `reserved` at all, are EINVAL.
    const { c } = await rawStrict();
    c.send(10, CMD.REGION_READ, regionAccess(0, 8));
    await expectEinval(c, 10);
    c.send(11, CMD.REGION_READ, regionAccess(4, 4));
    await expectEinval(c, 11);
  });

  it("R15 each buffer's data in one access of the whole buffer at data_offset", async () => {
    // Every data access starts at data_offset and is the only one of its buffer; its count is the buffer's size.
    for (const t of all)
      if (t.access?.region === REGION && t.access.offset >= DATA_OFFSET) expect(t.access.offset).toBe(DATA_OFFSET);
    expect(tokens(m.src.trace)).not.toMatch(/D D/);
    expect(tokens(m.dst.trace)).not.toMatch(/D D/);
    const sizes = m.items.flatMap((i) => (i.kind === "transaction" ? [i.data.length] : []));
    expect(
      m.dst.trace
        .filter((t) => t.h.cmd === CMD.REGION_WRITE && t.access!.offset >= DATA_OFFSET)
        .map((t) => t.access!.count),
    ).toEqual(sizes);
    // The strict device refuses half a buffer.
    const dev = new SimDevice({ ...variantOptions("libvfio-user"), stateSize: 64 << 10, txnSize: 16 << 10 });
    const io = new InProcessRegion(dev);
    const u32 = (v: number) => new Uint8Array(new Uint32Array([v]).buffer);
    await io.write(0, u32(3)); // pre-copy
    await io.read(8, 8);
    await io.read(16, 8);
    const size = Number(new DataView((await io.read(24, 8)).buffer).getBigUint64(0, true));
    await expect(io.read(DATA_OFFSET, size / 2)).rejects.toMatchObject({ code: "DEVICE", errno: "EINVAL" });
  });

  it("R16 device_state written read-modify-write, never 5, 6 or 7", () => {
    for (const trace of [m.src.trace, m.dst.trace]) {
      const t = tokens(trace).split(" ");
      t.forEach((x, i) => {
        if (x === "W0") expect(t[i - 1]).toBe("R0");
      });
      for (const w of trace.filter((x) => x.h.cmd === CMD.REGION_WRITE && x.access?.offset === 0)) {
        expect(new DataView(w.payload.buffer).getUint32(16, true) & 7).toBeLessThanOrEqual(4);
      }
    }
  });

  it("R17 only transitions the reference accepts (RUNNING→pre-copy, →RESUMING from RUNNING), no same-state writes", async () => {
    for (const d of [m.src.device, m.dst.device]) {
      expect(d.stateWrites.every((w) => w.ok)).toBe(true);
      expect(d.stateWrites.every((w) => (w.from & 7) !== (w.value & 7))).toBe(true);
    }
    expect(m.src.device.stateWrites.map((w) => `${w.from & 7}>${w.value & 7}`)).toEqual(["1>3", "3>2", "2>0"]);
    expect(m.dst.device.stateWrites.map((w) => `${w.from & 7}>${w.value & 7}`)).toEqual(["1>4", "4>1"]);
    // The strict device refuses 0→2, 0→4 and 3→3.
    const u32 = (v: number) => new Uint8Array(new Uint32Array([v]).buffer);
    for (const [from, to] of [
      [0, 2],
      [0, 4],
      [3, 3],
    ]) {
      const dev = new SimDevice({ ...variantOptions("libvfio-user"), stateSize: 4096, txnSize: 4096 });
      await dev.write(0, u32(from));
      await expect(dev.write(0, u32(to))).rejects.toMatchObject({ errno: EINVAL });
      expect(dev.state & 7).toBe(from);
    }
  });

  it("R18 save loop: pending_bytes, data_offset, data_size, the data, then pending_bytes again", () => {
    const t = tokens(m.src.trace);
    expect(t).toMatch(/O S D P/);
    expect(t).not.toMatch(/O(?! S D P)/);
    // A new iteration after each device_state write starts with pending_bytes.
    expect(t).not.toMatch(/W0(?: R0)* [OSD]/);
  });

  it("R19 resume loop: data_offset, the data, data_size (never 0); one data_size write per source buffer", () => {
    const t = tokens(m.dst.trace);
    expect(t).not.toMatch(/O(?! D Z)/);
    const zs = m.dst.trace.filter((x) => x.h.cmd === CMD.REGION_WRITE && x.access?.offset === 24);
    expect(zs).toHaveLength(m.saved.transactions);
    for (const z of zs) expect(new DataView(z.payload.buffer).getBigUint64(16, true)).toBeGreaterThan(0n);
  });

  it("R20 no DEVICE_RESET (nor discovery) while the device is STOP or stop-and-copy", async () => {
    for (const t of all)
      if (t.h.cmd !== CMD.REGION_READ && t.h.cmd !== CMD.REGION_WRITE) expect([0, 2]).not.toContain(t.state & 7);
    // A failed restore resets the destination while it is RESUMING (accepted), then stops it.
    const dst = await strictServerExtra({ empty: true });
    const bad = m.items.map((i) =>
      i.kind === "transaction" && i === m.items.find((x) => x.kind === "transaction")
        ? { ...i, data: i.data.map((b) => b ^ 1) }
        : i,
    );
    const r = await connectVfioUser(dst.path, { timeoutMs: 5000 });
    const e = (await resume(r, bad).then(
      () => undefined,
      (x: unknown) => x,
    )) as MigstreamError;
    await r.close();
    expect(isMigstreamError(e)).toBe(true);
    expect(e.message).toMatch(/device reset/);
    expect(e.message).toMatch(/left in STOP/);
    const resets = dst.trace.filter((t) => t.h.cmd === CMD.DEVICE_RESET);
    expect(resets.length).toBeGreaterThan(0);
    for (const t of resets) expect(t.state & 7).toBe(4);
    // The strict server refuses DEVICE_RESET, and DEVICE_GET_INFO, while STOP.
    const { c } = await rawStrict();
    c.send(12, CMD.REGION_WRITE, regionAccess(0, 4, new Uint8Array([0, 0, 0, 0]))); // RUNNING → STOP
    expect((await reply(c))[0].flags).toBe(TYPE_REPLY);
    c.send(13, CMD.DEVICE_RESET, new Uint8Array(0));
    await expectEinval(c, 13);
    c.send(14, CMD.DEVICE_GET_INFO, new Uint8Array(16).fill(16, 0, 1));
    await expectEinval(c, 14);
  });

  it("R21 a whole save, and a whole restore, on one connection (the server ends with its one client)", async () => {
    await Promise.all([m.src.server.closed, m.dst.server.closed]);
    for (const t of [m.src.trace, m.dst.trace]) expect(t.filter((x) => x.h.cmd === CMD.VERSION)).toHaveLength(1);
    const e = (await connectVfioUser(m.src.path, { timeoutMs: 1000 }).then(
      () => undefined,
      (x: unknown) => x,
    )) as MigstreamError;
    expect(isMigstreamError(e, "TRANSPORT")).toBe(true);
  });
});

describe("the in-process vendor variant of the same name", () => {
  it("sim:variant=libvfio-user saves and restores with pre-copy, and records no violation", async () => {
    const src = (await openDevice("sim:variant=libvfio-user,state=512KiB,txn=32KiB,seed=4,dirty=3")) as SimRegion;
    const dst = (await openDevice("sim:variant=libvfio-user,state=512KiB,txn=32KiB,empty=1")) as SimRegion;
    const items: ResumeItem[] = [];
    const sink = {
      phase: (phase: Phase, iteration: number) => void items.push({ kind: "phase", phase, iteration }),
      transaction: (d: Uint8Array) => void items.push({ kind: "transaction", data: d.slice() }),
    };
    const saved = await save(src, sink, { policy: { maxIterations: 3 } });
    items.push({ kind: "verified" });
    const restored = await resume(dst, items);
    expect(restored.transactions).toBe(saved.transactions);
    expect(await dst.stateDigest()).toBe(await src.stateDigest());
    expect([src.device.violations, dst.device.violations]).toEqual([[], []]);
    expect(src.device.stateWrites.map((w) => `${w.from & 7}>${w.value & 7}`)).toEqual(["1>3", "3>2", "2>0"]);
  });
});

async function strictServerExtra(device = {}): Promise<Strict> {
  const s = await strictServer(device);
  extra.push(s);
  return s;
}
