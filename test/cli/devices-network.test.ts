// Several devices through one stream over the network leg, as separate
// processes over 127.0.0.1, held to the same rules as one device: the restore
// completes at the stream's verified STREAM_END whatever the connection does
// after (bytes after it reported, the restore kept), a connection that has not
// proved its stream is dropped at the handshake deadline with every
// destination keeping its state, a stop signal is reported truthfully to both
// ends, and a keyed stream must be bound to its connection (or sealed, with
// --encrypt). The `sim serve` devices keep whatever state their client leaves
// (--on-disconnect stay): every "back in RUNNING" and "reset" is the driver's.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { encodeHello } from "../../src/network/hello.js";
import { cliSuite, digest, listeningPort, proxy, rawSource, run, type Sim, sim, start, until } from "./helpers.js";

/** Two v1 devices of different sizes and transaction sizes. */
const KINDS = [
  ["--state-size", "2MiB", "--transaction-size", "128KiB"],
  ["--state-size", "1MiB", "--transaction-size", "64KiB", "--variant", "mlx5"],
];
const STAY = ["--on-disconnect", "stay"];
const KEY = "c3".repeat(32);

const suite = cliSuite();
const sims: Sim[] = [];
let n = 0;

afterAll(async () => {
  await Promise.all(sims.map((s) => s.stop()));
});

/** Sources (seeded, still) and destinations (`dst` flags: empty by default), and their --device arguments. */
async function set(o: { dst?: string[]; kinds?: string[][] } = {}) {
  const k = n++;
  const kinds = o.kinds ?? KINDS;
  const [src, dst] = await Promise.all([
    Promise.all(
      kinds.map((a, i) =>
        sim(suite.dir(), `ms${k}-${i}`, [...a, ...STAY, "--seed", String(20 + i), "--dirty-rate", "0"]),
      ),
    ),
    Promise.all(kinds.map((a, i) => sim(suite.dir(), `md${k}-${i}`, [...a, ...STAY, ...(o.dst ?? ["--empty"])]))),
  ]);
  sims.push(...src, ...dst);
  const args = (list: Sim[]) => list.flatMap((s) => ["--device", `vfio-user:${s.socket}`]);
  return { src, dst, srcArgs: args(src), dstArgs: args(dst) };
}

/** Starts `restore --listen` with several devices on a free loopback port. */
async function listen(dstArgs: string[], extra: string[] = []) {
  const p = start(["restore", ...dstArgs, "--listen", "tcp://127.0.0.1:0", ...extra]);
  return { p, port: await listeningPort(p) };
}

/** `bytes` sent byte for byte, by a process that holds no key, to a `restore --listen --attempts 1`: its answer and its end. */
async function replay(dstArgs: string[], bytes: Uint8Array, extra: string[]) {
  const { p, port } = await listen(dstArgs, ["--attempts", "1", ...extra]);
  const c = rawSource(port);
  await c.hello;
  c.socket.write(bytes);
  const ack = await c.ack;
  c.socket.destroy();
  return { ack, r: await p.done };
}

/** Every destination RUNNING with its source's state. */
async function expectMigrated(src: Sim[], dst: Sim[]) {
  for (const [i, s] of src.entries())
    expect(await digest(dst[i]), `device ${i}`).toMatchObject({ digest: s.initialDigest, deviceState: "RUNNING" });
}

describe("several devices over the network leg (separate processes, 127.0.0.1)", () => {
  it("a source that never half-closes: the restore completes at STREAM_END; the ack (each device) comes on the same connection; bytes after the end are reported, the restore kept", async () => {
    const { src, srcArgs } = await set();
    const saved = join(suite.dir(), "never-closes.mig");
    expect((await run(["save", ...srcArgs, "-o", saved, "--no-precopy", "--codec", "lz4"])).code).toBe(0);
    const stream = readFileSync(saved);
    for (const trailing of [0, 100]) {
      const { dst, dstArgs } = await set();
      const { p, port } = await listen(dstArgs, ["--timeout", "3000", "--json"]);
      // A raw source: the whole stream (and `trailing` bytes of garbage in the same write), then it waits, never ending.
      const c = rawSource(port);
      await c.hello;
      c.socket.write(Buffer.concat([stream, Buffer.alloc(trailing, 0x5a)]));
      const ack = await c.ack;
      expect(ack).toMatchObject({ migstream: "ack", ok: true, started: true });
      expect((ack.devices as unknown[]).length).toBe(2);
      expect(ack.trailingBytes).toBe(trailing || undefined);
      const r = await p.done;
      c.socket.destroy();
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({
        ok: true,
        started: true,
        ...(trailing ? { trailingBytes: trailing } : {}),
      });
      if (trailing)
        expect(r.stderr).toMatch(
          new RegExp(
            `^migstream: warning: ${trailing} bytes followed the end of the stream \\(at byte ${stream.length}\\)`,
            "m",
          ),
        );
      else expect(r.stderr).not.toMatch(/warning/);
      await expectMigrated(src, dst);
    }
    // From a file: the bytes after the stream are reported, and the restore stands.
    const { dst, dstArgs } = await set();
    const longer = join(suite.dir(), "longer.mig");
    writeFileSync(longer, Buffer.concat([stream, Buffer.from("7 bytes")]));
    const f = await run(["restore", ...dstArgs, longer, "--json"]);
    expect(f.code, f.stderr).toBe(0);
    expect(f.stderr).toMatch(
      new RegExp(`^migstream: warning: 7 bytes followed the end of the stream \\(at byte ${stream.length}\\)`, "m"),
    );
    expect(JSON.parse(f.stdout)).toMatchObject({ ok: true, trailingBytes: 7 });
    await expectMigrated(src, dst);
  });

  it("a proxy that swallows the source's FIN: several devices migrate", async () => {
    const { src, dst, srcArgs, dstArgs } = await set();
    const { p, port } = await listen(dstArgs, ["--timeout", "3000"]);
    const px = await proxy(port, { swallowFin: true });
    const s = await run([
      "save",
      ...srcArgs,
      "--to",
      `tcp://127.0.0.1:${px.port}`,
      "--no-precopy",
      "--timeout",
      "3000",
    ]);
    const r = await p.done;
    await px.close();
    expect(s.code, s.stderr).toBe(0);
    expect(r.code, r.stderr).toBe(0);
    await expectMigrated(src, dst);
  });

  it("a destination that reports bytes after the end: the source exits 2 and keeps every device stopped (the destination has the state)", async () => {
    const { src, srcArgs } = await set();
    const { createServer } = await import("node:net");
    const fake = createServer({ allowHalfOpen: true }, (c) => {
      c.write(encodeHello({ keyed: false, encrypted: false, challenge: new Uint8Array(16) }));
      c.on("data", () => {});
      const devices = [0, 1].map((id) => ({ id, started: true, transactions: 1, bytes: 1, runningMs: 1 }));
      c.on("end", () =>
        c.end(
          `${JSON.stringify({ migstream: "ack", ok: true, started: true, transactions: 2, bytes: 2, devices, trailingBytes: 5 })}\n`,
        ),
      );
    });
    await new Promise<void>((r) => fake.listen(0, "127.0.0.1", () => r()));
    const port = (fake.address() as import("node:net").AddressInfo).port;
    const s = await run(["save", ...srcArgs, "--to", `tcp://127.0.0.1:${port}`, "--no-precopy"]);
    fake.close();
    expect(s.code).toBe(2);
    expect(s.stderr).toMatch(
      /^migstream: FORMAT \(field trailing\): the destination took the state \(its 2 devices RUNNING\), but 5 bytes followed the end of the stream .*; the source devices stay stopped$/m,
    );
    for (const d of src) expect((await digest(d)).deviceState).toBe("STOP");
  });

  it("a connection that delivers the stream's head but not its first transaction, then stalls: dropped at the handshake deadline, every destination keeps its state; then a source migrates", async () => {
    const { srcArgs } = await set();
    const saved = join(suite.dir(), "head.mig");
    // RAW: the first transaction (128 KiB) is verified only once all of its chunks arrived.
    expect((await run(["save", ...srcArgs, "-o", saved, "--no-precopy", "--codec", "raw"])).code).toBe(0);
    const stream = readFileSync(saved);
    const { dst, dstArgs } = await set({ dst: ["--seed", "3"] }); // destinations with a state of their own
    const before = await Promise.all(dst.map(digest));
    // --attempts 1: the listener ends with this failure, so that the devices can be read (they serve one client at a time).
    const { p, port } = await listen(dstArgs, ["--handshake-timeout", "1000", "--timeout", "3000", "--attempts", "1"]);
    const c = rawSource(port);
    await c.hello;
    // The header, every device's DEVICE_BEGIN, its phase, and 8 KiB of the first transaction.
    c.socket.write(stream.subarray(0, 8192));
    const t0 = Date.now();
    expect(await c.ack).toMatchObject({ ok: false, code: "TIMEOUT" });
    expect(Date.now() - t0).toBeLessThan(4000);
    const r = await p.done;
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(
      /^migstream: TIMEOUT .*within the handshake deadline; nothing reached the devices; connection from .*giving up after 1 failed attempt$/m,
    );
    expect(await Promise.all(dst.map(digest))).toEqual(before); // never entered: each state and RUNNING kept
    // A real source then migrates into them (the saved sources are stopped now: fresh ones).
    const live = await set();
    const next = await listen(dstArgs);
    const s = await run(["save", ...live.srcArgs, "--to", `tcp://127.0.0.1:${next.port}`, "--no-precopy"]);
    const rn = await next.p.done;
    expect(s.code, s.stderr).toBe(0);
    expect(rn.code, rn.stderr).toBe(0);
    await expectMigrated(live.src, dst);
  });

  it("SIGHUP during a multi-device network restore: it says how each device was left, the source hears why and puts every device back in RUNNING", async () => {
    // Slow devices: every data_offset read takes 5 ms, 16 KiB buffers.
    const slow = ["--state-size", "8MiB", "--transaction-size", "16KiB", "--variant", "slow-prepare"];
    const { src, dst, srcArgs, dstArgs } = await set({ kinds: [slow, slow] });
    const { p, port } = await listen(dstArgs);
    const px = await proxy(port);
    const s = start(["save", ...srcArgs, "--to", `tcp://127.0.0.1:${px.port}`, "--no-precopy", "--codec", "raw"]);
    // 12 of the 16 MiB went through: the destinations have written some of their buffers, not all.
    expect(await until(() => px.forwarded() >= 12 << 20, 60_000)).toBe(true);
    p.child.kill("SIGHUP");
    const [r, sv] = await Promise.all([p.done, s.done]);
    await px.close();
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^migstream: ABORTED[^\n]*interrupted \(SIGHUP\)/m);
    expect(r.stderr).not.toMatch(/not touched|waiting for a source/);
    expect(sv.code).toBe(3);
    expect(sv.stderr).toMatch(/the destination failed: "[^"]*interrupted \(SIGHUP\)/);
    expect(sv.stderr).toMatch(/device 0 \([^)]*\): [^;]*back in RUNNING; device 1 \([^)]*\): [^;]*back in RUNNING/);
    for (const d of dst) expect((await digest(d)).deviceState).not.toBe("RUNNING");
    for (const d of src) expect(await digest(d)).toMatchObject({ digest: d.initialDigest, deviceState: "RUNNING" });
  });

  it("a saved keyed multi-device stream replayed by a process without the key: refused before any device is touched; --allow-replay takes it", async () => {
    const key = join(suite.dir(), "multi.key");
    writeFileSync(key, KEY);
    const { src, srcArgs } = await set();
    const saved = join(suite.dir(), "old-multi.mig");
    expect((await run(["save", ...srcArgs, "-o", saved, "--no-precopy", "--key-file", key])).code).toBe(0);
    const { dst, dstArgs } = await set({ dst: ["--seed", "3"] });
    const before = await Promise.all(dst.map(digest));
    const a = await replay(dstArgs, readFileSync(saved), ["--key-file", key]);
    expect(a.ack).toMatchObject({
      ok: false,
      code: "MAC",
      message: expect.stringMatching(/not bound to this connection/),
    });
    expect(a.r.code).toBe(2);
    expect(a.r.stderr).toMatch(
      /^migstream: MAC .*not bound to this connection.*--allow-replay; nothing reached the devices; connection from .*giving up after 1 failed attempt$/m,
    );
    expect(await Promise.all(dst.map(digest))).toEqual(before);
    const b = await replay(dstArgs, readFileSync(saved), ["--key-file", key, "--allow-replay"]);
    expect(b.ack).toMatchObject({ ok: true, started: true });
    expect(b.r.code, b.r.stderr).toBe(0);
    await expectMigrated(src, dst);
  });

  it("--encrypt with several devices: bound and sealed, round-trips; a captured copy replayed is refused; a destination requiring encryption refuses an unsealed source before any device is touched", async () => {
    const key = join(suite.dir(), "sealed.key");
    writeFileSync(key, KEY);
    const { src, dst, srcArgs, dstArgs } = await set();
    const capture: Buffer[] = [];
    const { p, port } = await listen(dstArgs, ["--key-file", key, "--require-encryption", "--json"]);
    const px = await proxy(port, { record: capture });
    const saveTo = (extra: string[]) =>
      run(["save", ...srcArgs, "--to", `tcp://127.0.0.1:${px.port}`, "--no-precopy", "--key-file", key, ...extra]);
    const plain = await saveTo([]);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toMatch(/takes only encrypted streams: add --encrypt .*; none of the 2 devices was touched/);
    for (const d of src) expect(await digest(d)).toMatchObject({ digest: d.initialDigest, deviceState: "RUNNING" });
    const s = await saveTo(["--encrypt"]);
    const r = await p.done;
    await px.close();
    expect(s.code, s.stderr).toBe(0);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.devices).toHaveLength(2);
    expect(out.stream.header).toMatchObject({ encrypted: true, bound: true });
    await expectMigrated(src, dst);
    // The live stream, captured and replayed to another listener: bound to the first connection's challenge.
    const other = await set({ dst: ["--seed", "3"] });
    const before = await Promise.all(other.dst.map(digest));
    const c = await replay(other.dstArgs, Buffer.concat(capture), ["--key-file", key]);
    expect(c.ack).toMatchObject({ ok: false, code: "MAC" });
    expect(c.r.code).toBe(2);
    expect(await Promise.all(other.dst.map(digest))).toEqual(before);
  });
});
