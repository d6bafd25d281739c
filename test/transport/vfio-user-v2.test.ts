// vfio-user v2 migration over a real UNIX socket: our v2 server (the
// libvfio-user behaviours of notes §3) and our client, the v1/v2 detection,
// and the vfio-user conformance cases of §4 (1, 8, 26–33). The server's wire
// behaviour is checked with raw messages, not only through our own client.
import * as net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { MigrationSimOptions } from "../../src/device/migration-sim.js";
import { MigstreamError } from "../../src/errors.js";
import { ERRNO } from "../../src/protocol/region-io.js";
import {
  FEATURE,
  FEATURE_GET,
  FEATURE_PROBE,
  FEATURE_SET,
  MIG_STATE,
  type MigState,
} from "../../src/protocol/v2/constants.js";
import { resumeV2 } from "../../src/protocol/v2/resume.js";
import { saveV2 } from "../../src/protocol/v2/save.js";
import { serveSimV2 } from "../../src/transport/sim/serve.js";
import { VfioUserRegion } from "../../src/transport/vfio-user/client.js";
import { CMD, FLAG_ERROR, HEADER_SIZE, TYPE_COMMAND } from "../../src/transport/vfio-user/constants.js";
import { Framer } from "../../src/transport/vfio-user/framer.js";
import { openVfioUser, VfioUserMigration } from "../../src/transport/vfio-user/migration.js";
import { VfioUserServer } from "../../src/transport/vfio-user/server.js";
import { encodeVersion, type Header, newMessage } from "../../src/transport/vfio-user/wire.js";
import { ItemSink } from "../protocol/helpers.js";
import { MemoryVendor, tempSocket } from "./helpers.js";

const KiB = 1024;
const S = MIG_STATE;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function v2Server(device: MigrationSimOptions = {}, extra: { resetKeepsState?: boolean } = {}) {
  const t = tempSocket();
  const served = await serveSimV2(t.path, { device: { stateSize: 64 * KiB, seed: 5, ...device }, ...extra });
  cleanups.push(
    () => t.cleanup(),
    () => served.server.close(),
  );
  return { path: t.path, ...served };
}

async function v2Client(path: string, opts: Parameters<typeof openVfioUser>[1] = {}): Promise<VfioUserMigration> {
  const d = await openVfioUser(path, { timeoutMs: 5000, ...opts });
  cleanups.push(() => d.close());
  expect(d).toBeInstanceOf(VfioUserMigration);
  return d as VfioUserMigration;
}

/** A raw client: sends messages built by hand and collects whole replies (header + payload). */
async function rawClient(path: string) {
  const sock = net.createConnection({ path });
  await new Promise<void>((r) => sock.once("connect", () => r()));
  cleanups.push(() => void sock.destroy());
  const replies: Array<{ h: Header; p: Uint8Array }> = [];
  const waiters: Array<() => void> = [];
  const framer = new Framer((h, p) => {
    replies.push({ h, p: p.slice() });
    waiters.shift()?.();
  }, 1 << 24);
  sock.on("data", (c) => framer.push(new Uint8Array(c.buffer, c.byteOffset, c.byteLength)));
  let id = 1;
  const send = async (cmd: number, payload: Uint8Array) => {
    const m = newMessage(id++, cmd, TYPE_COMMAND, payload.length);
    m.set(payload, HEADER_SIZE);
    const got = new Promise<void>((r) => waiters.push(r));
    sock.write(m);
    await got;
    return replies.at(-1)!;
  };
  await send(CMD.VERSION, encodeVersion(0, 2, { capabilities: { max_data_xfer_size: 64 * KiB } }));
  const close = async () => {
    sock.destroy();
    await new Promise((r) => setTimeout(r, 20)); // the server sees the close before the next client
  };
  return { send, close };
}

function feature(flags: number, argsz: number, extra?: (dv: DataView) => void, size = 8): Uint8Array {
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, argsz, true);
  dv.setUint32(4, flags, true);
  extra?.(dv);
  return b;
}

function setState(s: number): Uint8Array {
  return feature(
    FEATURE_SET | FEATURE.MIG_DEVICE_STATE,
    16,
    (dv) => {
      dv.setUint32(8, s, true);
      dv.setInt32(12, -1, true);
    },
    16,
  );
}

function migData(size: number, data?: Uint8Array): Uint8Array {
  const b = new Uint8Array(8 + (data?.length ?? 0));
  const dv = new DataView(b.buffer);
  dv.setUint32(0, 8 + size, true);
  dv.setUint32(4, size, true);
  if (data) b.set(data, 8);
  return b;
}

describe("telling v1 from v2 (§3.1)", () => {
  it("C31: a v2 server (9 PCI regions + no type-3/1 region) is driven as v2; a v1 server as v1; never both", async () => {
    const v2 = await v2Server();
    const d = await v2Client(v2.path);
    expect(d.flags).toBe(5);
    expect(v2.handler.features).toEqual([FEATURE_GET | FEATURE.MIGRATION]); // one probe, no region discovery mixed in
    const t = tempSocket();
    cleanups.push(() => t.cleanup());
    const v1 = await VfioUserServer.listen(t.path, new MemoryVendor(8192));
    cleanups.push(() => v1.close());
    const r = await openVfioUser(t.path, { timeoutMs: 5000 });
    cleanups.push(() => r.close());
    expect(r).toBeInstanceOf(VfioUserRegion);
    expect((r as VfioUserRegion).index).toBe(9);
  });

  it("C1 (vfio-user): DEVICE_FEATURE refused and no migration region: the server has no migration, said plainly", async () => {
    const t = tempSocket();
    cleanups.push(() => t.cleanup());
    const vendor = Object.assign(new MemoryVendor(8192), {});
    const server = await VfioUserServer.listen(t.path, vendor, { extension: { noMigrationRegion: true } });
    cleanups.push(() => server.close());
    const e = (await openVfioUser(t.path, { timeoutMs: 5000 }).catch((x) => x)) as MigstreamError;
    expect(e).toBeInstanceOf(MigstreamError);
    expect(e.message).toMatch(
      /no migration region .* nor v2 migration \(DEVICE_FEATURE GET MIGRATION: ENOTSUP\): the server has no migration/,
    );
  });
});

describe("the v2 server, message by message (§3.2–§3.6)", () => {
  it("GET MIGRATION, GET and SET MIG_DEVICE_STATE, PROBE: sizes and echoes as libvfio-user sends them", async () => {
    const { path } = await v2Server();
    const c = await rawClient(path);
    const mig = await c.send(CMD.DEVICE_FEATURE, feature(FEATURE_GET | FEATURE.MIGRATION, 16));
    expect(mig.p.length).toBe(16);
    expect(new DataView(mig.p.buffer).getBigUint64(8, true)).toBe(5n);
    const st = await c.send(CMD.DEVICE_FEATURE, feature(FEATURE_GET | FEATURE.MIG_DEVICE_STATE, 16));
    expect([...st.p.subarray(8)]).toEqual([2, 0, 0, 0, 0, 0, 0, 0]); // RUNNING, data_fd 0
    const set = setState(S.STOP);
    const r = await c.send(CMD.DEVICE_FEATURE, set);
    expect(r.p).toEqual(set); // the request echoed
    const probe = feature(FEATURE_PROBE | FEATURE_GET | FEATURE_SET | FEATURE.MIG_DEVICE_STATE, 16);
    expect((await c.send(CMD.DEVICE_FEATURE, probe)).p).toEqual(probe);
    for (const bad of [
      FEATURE_GET | FEATURE_SET | FEATURE.MIG_DEVICE_STATE,
      FEATURE.MIG_DEVICE_STATE,
      FEATURE_GET | FEATURE.MIG_DATA_SIZE,
      0x80000 | FEATURE_GET | FEATURE.MIGRATION,
    ]) {
      const e = await c.send(CMD.DEVICE_FEATURE, feature(bad, 16));
      expect(e.h.flags & FLAG_ERROR).toBeTruthy();
      expect(e.h.errno).toBe(ERRNO.EINVAL);
    }
  });

  it("C27: a failed SET answers errno with the 16-byte echo as body (msg_size 32); the client reads it and takes errno from the header", async () => {
    const { path } = await v2Server();
    const c = await rawClient(path);
    const e = await c.send(CMD.DEVICE_FEATURE, setState(S.RUNNING_P2P));
    expect(e.h.flags & FLAG_ERROR).toBeTruthy();
    expect(e.h.errno).toBe(ERRNO.EINVAL);
    expect(e.h.size).toBe(32);
    // The client stays in step after such a reply: the next request works.
    const d = await v2Client((await v2Server()).path);
    const err = (await d.setState(S.RUNNING_P2P).catch((x) => x)) as MigstreamError;
    expect(err.errno).toBe("EINVAL");
    expect(await d.getState()).toBe(S.RUNNING);
  });

  it("C26: a MIG_DATA_READ reply is 8 + size asked bytes, zero-padded; the count is in `size`", async () => {
    const { path } = await v2Server({ stateSize: 8 * KiB });
    const c = await rawClient(path);
    await c.send(CMD.DEVICE_FEATURE, setState(S.STOP_COPY));
    let total = 0;
    for (;;) {
      const r = await c.send(CMD.MIG_DATA_READ, migData(60 * KiB));
      expect(r.h.size).toBe(HEADER_SIZE + 8 + 60 * KiB);
      const n = new DataView(r.p.buffer).getUint32(4, true);
      expect(r.p.subarray(8 + n).every((b) => b === 0)).toBe(true);
      total += n;
      if (n === 0) break;
      expect(n).toBeLessThan(60 * KiB); // the whole 8 KiB state fits: short replies, then 0
    }
    expect(total).toBeGreaterThan(8 * KiB);
    // Our client counts by `size`, not by msg_size.
    const { path: p2 } = await v2Server({ stateSize: 8 * KiB });
    const d = await v2Client(p2);
    const ch = (await d.setState(S.STOP_COPY))!;
    const buf = new Uint8Array(32 * KiB);
    const n = await ch.read(buf);
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThan(buf.length);
  });

  it("C30: MIG_DATA_WRITE outside RESUMING and MIG_DATA_READ outside PRE_COPY/STOP_COPY are EINVAL, the state unchanged", async () => {
    const { path, device } = await v2Server();
    const c = await rawClient(path);
    for (const [cmd, p] of [
      [CMD.MIG_DATA_READ, migData(64)],
      [CMD.MIG_DATA_WRITE, migData(4, new Uint8Array(4))],
    ] as const) {
      const e = await c.send(cmd, p);
      expect(e.h.errno).toBe(ERRNO.EINVAL);
    }
    expect(device.state).toBe(S.RUNNING);
    await c.send(CMD.DEVICE_FEATURE, setState(S.RESUMING));
    expect((await c.send(CMD.MIG_DATA_READ, migData(64))).h.errno).toBe(ERRNO.EINVAL);
    expect(device.state).toBe(S.RESUMING);
  });

  it("C29: size above the client's max_data_xfer_size is EINVAL; our client never asks above min(its max, 1 MiB)", async () => {
    const { path } = await v2Server();
    const c = await rawClient(path); // offered 64 KiB
    await c.send(CMD.DEVICE_FEATURE, setState(S.STOP_COPY));
    expect((await c.send(CMD.MIG_DATA_READ, migData(64 * KiB + 1))).h.errno).toBe(ERRNO.EINVAL);
    await c.close();
    const d = await v2Client(path, { maxDataXfer: 16 * KiB });
    expect(d.maxAccess).toBe(16 * KiB);
    const big = await v2Client((await v2Server()).path, { maxDataXfer: 4 << 20 });
    expect(big.maxAccess).toBe(1 << 20);
  });

  it("C32: SET to the current state succeeds with no arc run; 0, 5, 7 and ≥ 8 are EINVAL", async () => {
    const { path, device } = await v2Server();
    const d = await v2Client(path);
    expect(await d.setState(S.RUNNING)).toBeNull();
    expect(device.arcs).toEqual([]);
    for (const s of [0, 5, 7, 8, 200])
      expect(((await d.setState(s as MigState).catch((x) => x)) as MigstreamError).errno).toBe("EINVAL");
    expect(device.arcs).toEqual([]);
    expect(device.state).toBe(S.RUNNING);
  });

  it("C28: a reconnect finds the state the last client left; in STOP the server refuses DEVICE_RESET, so the client SETs RUNNING first", async () => {
    const { path, device } = await v2Server();
    const first = await v2Client(path);
    await first.setState(S.STOP);
    await first.close();
    const c = await rawClient(path);
    expect((await c.send(CMD.DEVICE_RESET, new Uint8Array(0))).h.errno).toBe(ERRNO.EINVAL); // refused while stopped
    expect(
      (
        await c.send(
          CMD.DEVICE_GET_INFO,
          new Uint8Array(16).fill(0).map((_, i) => (i === 0 ? 16 : 0)),
        )
      ).h.errno,
    ).toBe(ERRNO.EINVAL);
    await c.close();
    const again = await v2Client(path);
    expect(await again.getState()).toBe(S.STOP);
    await again.reset();
    expect(device.resets).toBe(1);
    expect(device.state).toBe(S.RUNNING); // SET RUNNING, then the reset (which keeps the state)
  });

  it("C8 (vfio-user): GET MIG_DEVICE_STATE carries data_fd 0, which the client never uses", async () => {
    const { path } = await v2Server();
    const d = await v2Client(path);
    expect(await d.getState()).toBe(S.RUNNING);
    const ch = await d.setState(S.PRE_COPY);
    expect(ch).not.toBeNull(); // the channel comes from the SET whose path opened the session
    expect(await d.getState()).toBe(S.PRE_COPY);
  });

  it("C33: no DMA-logging feature is ever SET or GET by a save or a restore (PROBE may succeed)", async () => {
    const src = await v2Server({ dirtyPerMiB: 64 });
    const dst = await v2Server({ empty: true });
    const sink = new ItemSink();
    const sc = await v2Client(src.path);
    await saveV2(sc, sink);
    await sc.close();
    await resumeV2(await v2Client(dst.path), sink.verified());
    expect(dst.device.digest()).toBe(src.device.digest());
    for (const f of [...src.handler.features, ...dst.handler.features])
      expect([FEATURE.MIGRATION, FEATURE.MIG_DEVICE_STATE]).toContain(f & 0xffff);
    const c = await rawClient(src.path);
    const probe = feature(FEATURE_PROBE | FEATURE_SET | FEATURE.DMA_LOGGING_START, 16);
    expect((await c.send(CMD.DEVICE_FEATURE, probe)).h.errno).toBe(0);
  });
});

describe("saving and restoring over vfio-user v2, every simulated behaviour", () => {
  const cases: Array<[string, MigrationSimOptions, Parameters<typeof openVfioUser>[1]]> = [
    ["spec, with pre-copy dirtying", { dirtyPerMiB: 64 }, {}],
    ["no PRE_COPY", { precopy: false }, {}],
    ["P2P", { p2p: true }, {}],
    ["restarts at STOP_COPY (declared)", { restarts: true, dirtyPerMiB: 64 }, { restartsAtStopCopy: true }],
    [
      "fixed 64-byte access + EINVAL on applied writes (the gpio sample, declared)",
      { stateSize: 4 * KiB, fixedAccess: 64, writeEinval: true },
      { fixedAccess: 64, writeErrorsApplied: true },
    ],
    ["short reads", { shortReads: true }, {}],
    ["ENOMSG for nothing now", { enomsg: true, dirtyPerMiB: 64 }, {}],
  ];
  for (const [name, dev, declared] of cases) {
    it(name, async () => {
      const src = await v2Server(dev);
      const dst = await v2Server({ ...dev, empty: true });
      const sink = new ItemSink();
      const s = await saveV2(await v2Client(src.path, declared), sink);
      expect(src.device.state).toBe(S.STOP);
      const r = await resumeV2(await v2Client(dst.path, declared), sink.verified());
      expect(dst.device.digest()).toBe(src.device.digest());
      expect(dst.device.state).toBe(S.RUNNING);
      expect(src.device.violations).toEqual([]);
      expect(dst.device.violations).toEqual([]);
      if (dev.restarts) expect(r.skipped).toBe(s.precopy.transactions);
    });
  }

  it("a device that restarts at STOP_COPY, undeclared: the destination refuses the pre-copy + stop-copy bytes and is not RUNNING", async () => {
    const src = await v2Server({ restarts: true });
    const dst = await v2Server({ restarts: true, empty: true });
    const sink = new ItemSink();
    await saveV2(await v2Client(src.path), sink);
    const e = (await resumeV2(await v2Client(dst.path), sink.verified()).catch((x) => x)) as MigstreamError;
    expect(e.code).toBe("DEVICE");
    expect(dst.device.state).not.toBe(S.RUNNING);
  });
});
