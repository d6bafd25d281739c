// The vfio-user server's idle deadline: a client that sends no whole VERSION
// message, or stops inside a message, is dropped after the deadline and the
// next client is served; a client idle between messages, or streaming large
// messages that cross socket reads, is never dropped. In process (a raw
// socket against VfioUserServer) and as a user runs it (`sim serve
// --idle-timeout` against raw clients, then `sim digest`).
import * as net from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { connectVfioUser } from "../../src/transport/vfio-user/client.js";
import { CMD, HEADER_SIZE, REGION_ACCESS_SIZE } from "../../src/transport/vfio-user/constants.js";
import { VfioUserServer } from "../../src/transport/vfio-user/server.js";
import { encodeVersion, newMessage, writeAccess } from "../../src/transport/vfio-user/wire.js";
import { MemoryVendor, tempSocket } from "./helpers.js";
import { digestCli, ensureCli, type ServerProc, startServer } from "./sim-process.js";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const versionMessage = (id = 1) => {
  const body = encodeVersion(0, 2, { capabilities: { migration: { pgsize: 4096 } } });
  const m = newMessage(id, CMD.VERSION, 0, body.length);
  m.set(body, HEADER_SIZE);
  return m;
};

/** A raw connection: resolves `closed` with the ms it stayed open. */
async function rawClient(path: string): Promise<{ sock: net.Socket; closed: Promise<number>; got: () => number }> {
  const sock = net.createConnection({ path });
  await new Promise((r) => sock.once("connect", r));
  const t0 = Date.now();
  let got = 0;
  sock.on("data", (c) => (got += c.length));
  sock.on("error", () => {});
  cleanups.push(() => void sock.destroy());
  return { sock, closed: new Promise((r) => sock.once("close", () => r(Date.now() - t0))), got: () => got };
}

async function server(idleTimeoutMs: number, clientWaitMs?: number) {
  const t = tempSocket();
  const logs: string[] = [];
  const vendor = new MemoryVendor(1 << 20);
  const s = await VfioUserServer.listen(t.path, vendor, { idleTimeoutMs, clientWaitMs, log: (l) => logs.push(l) });
  cleanups.push(t.cleanup, () => s.close());
  return { path: t.path, logs, vendor, s };
}

describe("vfio-user server idle deadline (in process)", () => {
  it("drops a silent client after the deadline; a client that arrived meanwhile is served, though its own wait was shorter", async () => {
    const { path, logs } = await server(400, 100);
    const silent = await rawClient(path);
    const t0 = Date.now();
    const next = connectVfioUser(path, { timeoutMs: 5000 });
    const held = await silent.closed;
    expect(held).toBeGreaterThanOrEqual(350);
    expect(held).toBeLessThan(2000);
    const dev = await next; // waited past its 100 ms client wait, until the silent one was dropped
    cleanups.push(() => dev.close());
    expect(Date.now() - t0).toBeLessThan(3000);
    expect((await dev.read(0, 4)).length).toBe(4);
    expect(logs.some((l) => /dropping the client: no whole VERSION message within 400 ms of connecting$/.test(l))).toBe(
      true,
    );
  });

  it("drops a client that sent part of VERSION, and one that stops inside a later message", async () => {
    const { path, logs } = await server(300);
    const partial = await rawClient(path);
    partial.sock.write(versionMessage().subarray(0, 20));
    expect(await partial.closed).toBeLessThan(2000);
    expect(logs.some((l) => /no whole VERSION message within 300 ms of connecting \(20 bytes of one\)/.test(l))).toBe(
      true,
    );

    const half = await rawClient(path);
    half.sock.write(versionMessage());
    while (half.got() === 0) await new Promise((r) => setTimeout(r, 10)); // the VERSION reply
    const w = newMessage(2, CMD.REGION_WRITE, 0, REGION_ACCESS_SIZE + 64);
    writeAccess(w, HEADER_SIZE, { offset: 4096, region: 9, count: 64 });
    half.sock.write(w.subarray(0, 40)); // header and access, 8 of the 64 data bytes
    const t = Date.now();
    await half.closed;
    expect(Date.now() - t).toBeGreaterThanOrEqual(250);
    expect(logs.some((l) => /stalled for 300 ms inside a message \(40 bytes of it received\)/.test(l))).toBe(true);
    // The next client is served.
    const dev = await connectVfioUser(path, { timeoutMs: 5000 });
    cleanups.push(() => dev.close());
    expect((await dev.read(0, 4)).length).toBe(4);
  });

  it("never drops a client idle between messages, nor one streaming messages larger than a socket read", async () => {
    const { path, logs, vendor } = await server(200);
    const dev = await connectVfioUser(path, { timeoutMs: 5000 });
    cleanups.push(() => dev.close());
    await new Promise((r) => setTimeout(r, 700)); // idle between messages: 3.5 deadlines
    expect((await dev.read(0, 4)).length).toBe(4);
    // 1 MiB writes back to back (not awaited one by one) for longer than several deadlines:
    // the socket delivers them in pieces, so a message is nearly always half received.
    const block = new Uint8Array((1 << 20) - 4096).fill(7);
    const until = Date.now() + 1200;
    let n = 0;
    while (Date.now() < until) {
      await Promise.all([
        dev.write(4096, block),
        dev.write(4096, block),
        dev.write(4096, block),
        dev.write(4096, block),
      ]);
      n += 4;
    }
    expect(n).toBeGreaterThan(8);
    expect(vendor.mem[4096 + 5]).toBe(7);
    expect(logs.filter((l) => /dropping/.test(l))).toEqual([]);
  });
});

describe("sim serve --idle-timeout (processes)", () => {
  const dir = tempSocket();
  const procs: ServerProc[] = [];
  beforeAll(() => ensureCli());
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop("SIGKILL")));
    dir.cleanup();
  });

  it("a silent and a half-message client are dropped and `sim digest` is served next", async () => {
    const s = await startServer(join(dir.dir, "idle.sock"), [
      "--state-size",
      "64KiB",
      "--idle-timeout",
      "500",
      "--verbose",
    ]);
    procs.push(s);
    for (const send of [null, versionMessage().subarray(0, 10)]) {
      const c = await rawClient(s.path);
      if (send) c.sock.write(send);
      const t0 = Date.now();
      const d = await digestCli(s.path); // waits for the stuck client to be dropped
      expect(d.digest).toBe(s.initialDigest);
      const took = Date.now() - t0;
      expect(took).toBeLessThan(5000);
      expect(await c.closed).toBeLessThan(3000);
    }
    expect(s.stderr()).toMatch(/dropping the client: no whole VERSION message within 500 ms of connecting\n/);
    expect(s.stderr()).toMatch(
      /dropping the client: no whole VERSION message within 500 ms of connecting \(10 bytes of one\)/,
    );
  });
});
