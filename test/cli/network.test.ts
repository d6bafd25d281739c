// save --to / restore --listen as separate processes over 127.0.0.1, between
// `sim serve` processes that keep whatever state their client leaves
// (--on-disconnect stay, as real devices do): so every "source back in
// RUNNING" and "destination reset and stopped" below is the driver's doing.
// Keyed and unkeyed migrations, a wrong key, garbage and busy connections, a
// source killed mid-stream, a byte flipped on the way, a listener that goes
// on after a failed attempt, a source that never half-closes, a proxy that
// swallows the FIN.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeHello } from "../../src/network/hello.js";
import {
  digest,
  ensureCli,
  listeningPort,
  proxy,
  rawSource,
  releaseCli,
  run,
  type Sim,
  sim,
  start,
  tempDir,
  until,
  withFlags,
} from "./helpers.js";

const STATE = ["--state-size", "4MiB", "--transaction-size", "256KiB", "--on-disconnect", "stay"];
const KEY_A = "a1".repeat(32);
const KEY_B = "b2".repeat(32);

let tmp: ReturnType<typeof tempDir>;
let keyA: string;
let keyB: string;
const sims: Sim[] = [];
let n = 0;

beforeAll(() => {
  ensureCli();
  tmp = tempDir();
  keyA = join(tmp.dir, "a.key");
  keyB = join(tmp.dir, "b.key");
  writeFileSync(keyA, `${KEY_A}\n`);
  writeFileSync(keyB, KEY_B);
});

afterAll(async () => {
  await Promise.all(sims.map((s) => s.stop()));
  tmp?.cleanup();
  releaseCli();
});

/** A fresh source (seeded, dirtying during pre-copy unless told) and an empty destination. */
async function pair(src: string[] = ["--dirty-rate", "8"], dst: string[] = []): Promise<[Sim, Sim]> {
  const k = n++;
  const p = await Promise.all([
    sim(tmp.dir, `src${k}`, withFlags([...STATE, "--seed", "7"], src)),
    sim(tmp.dir, `dst${k}`, withFlags([...STATE, "--empty"], dst)),
  ]);
  sims.push(...p);
  return p;
}

/** After a failed restore the destination holds none of the partial state: the driver reset it and left it in STOP. */
async function notRunningWithData(dst: Sim) {
  const d = await digest(dst);
  expect(d.digest).toBe(dst.initialDigest); // dst started empty: the reset state's digest
  expect(d.deviceState).toBe("STOP");
}

/** Starts `restore --listen` on a free loopback port. */
async function listen(dst: Sim, extra: string[] = []) {
  const p = start(["restore", "--device", `vfio-user:${dst.socket}`, "--listen", "tcp://127.0.0.1:0", ...extra]);
  return { p, port: await listeningPort(p) };
}

const save = (src: Sim, port: number, extra: string[] = []) => [
  "save",
  "--device",
  `vfio-user:${src.socket}`,
  "--to",
  `tcp://127.0.0.1:${port}`,
  ...extra,
];

describe("save --to / restore --listen (separate processes, 127.0.0.1)", () => {
  it("migrates unkeyed (lz4), and keyed (auto); digests equal; both report JSON; the source is left stopped", async () => {
    for (const [key, codec] of [
      [[], "lz4"],
      [["--key-file", keyA], "auto"],
    ] as const) {
      const [src, dst] = await pair();
      const { p, port } = await listen(dst, [...key, "--json"]);
      const s = await run(save(src, port, ["--json", "--codec", codec, ...key]));
      const r = await p.done;
      expect(s.stderr).toBe("");
      expect(s.code).toBe(0);
      expect(r.code).toBe(0);
      const saved = JSON.parse(s.stdout);
      const restored = JSON.parse(r.stdout);
      expect(saved.ok).toBe(true);
      expect(saved.iterations).toBeGreaterThanOrEqual(1); // the source dirties: pre-copy ran
      expect(saved.restored).toEqual({ started: true, transactions: restored.transactions, bytes: restored.bytes });
      expect(restored.bytes).toBe(saved.rawBytes);
      expect(restored.stream.header.mac).toBe(key.length > 0);
      expect(saved.wireBytes).toBe(restored.stream.wireBytes);
      // lz4 compresses; auto may send RAW to a fast loopback sink, never much larger.
      if (codec === "lz4") expect(saved.wireBytes).toBeLessThan(saved.rawBytes);
      else expect(saved.wireBytes).toBeLessThan(saved.rawBytes * 1.01 + 4096);
      const [a, b] = await Promise.all([digest(src), digest(dst)]);
      expect(b.deviceState).toBe("RUNNING");
      expect(b.digest).toBe(a.digest);
      expect(b.digest).not.toBe(dst.initialDigest);
      expect(a.deviceState).toBe("STOP"); // as `save --help` says: stopped after a successful save
    }
  });

  it("a wrong key: the source gets MAC and its driver puts it back in RUNNING; the destination is untouched and keeps listening", async () => {
    const [src, dst] = await pair(["--dirty-rate", "0"]);
    const dstBefore = await digest(dst);
    const { p, port } = await listen(dst, ["--key-file", keyA]);
    const s = await run(save(src, port, ["--key-file", keyB]));
    expect(s.code).toBe(2);
    // The answer arrives while the source is in pre-copy (its driver puts the device back in RUNNING), or,
    // on a loaded machine, before its first state write (at "phase precopy 0": nothing to put back).
    expect(s.stderr).toMatch(
      /^migstream: MAC .*the destination failed: .*nothing reached the device("|.*; device back in RUNNING)$/m,
    );
    await p.waitFor(/MAC .*nothing reached the device; connection from .* dropped; still listening/);
    expect(p.child.exitCode).toBeNull();
    expect(await digest(src)).toMatchObject({ digest: src.initialDigest, deviceState: "RUNNING" });
    // An unkeyed source against a keyed listener learns it from the hello, before it touches its device.
    const u = await run(save(src, port));
    expect(u.code).toBe(2);
    expect(u.stderr).toMatch(
      /^migstream: MAC: tcp:\/\/127\.0\.0\.1:\d+ takes only authenticated streams: give --key-file .*the device was not touched/m,
    );
    p.child.kill("SIGTERM");
    const r = await p.done;
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /^migstream: ABORTED: restore: interrupted \(SIGTERM\) while waiting for a source; the device was not touched$/m,
    );
    expect(await digest(dst)).toEqual(dstBefore); // RUNNING, never entered RESUMING
  });

  it("drops garbage, refuses a second connection as busy, drops a silent one at the handshake deadline; a real source arriving meanwhile retries and migrates", async () => {
    const [src, dst] = await pair(["--dirty-rate", "0"]);
    const dstBefore = await digest(dst);
    const { p, port } = await listen(dst, ["--handshake-timeout", "3000"]);
    const garbage = rawSource(port);
    expect(await garbage.hello).not.toBeNull(); // greeted first
    garbage.socket.end(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(4)));
    expect(await garbage.ack).toMatchObject({ migstream: "ack", ok: false, code: "BAD_MAGIC" });
    await p.waitFor(/BAD_MAGIC at byte 0.*nothing reached the device; connection from .* dropped; still listening/);
    // A silent connection holds the listener; a second one is told it is busy.
    const hold = rawSource(port);
    await hold.hello;
    const busy = rawSource(port);
    expect(await busy.hello).toBeNull();
    expect(await busy.ack).toMatchObject({
      ok: false,
      code: "TRANSPORT",
      busy: true,
      message: expect.stringMatching(/busy/),
    });
    // A real source now: refused "busy", it retries until the silent one is dropped at the deadline, then migrates.
    const t0 = Date.now();
    const s = await run(save(src, port, ["--connect-timeout", "15000", "--no-precopy"]));
    expect(s.code, s.stderr).toBe(0);
    expect(Date.now() - t0).toBeLessThan(15000);
    const r = await p.done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /TIMEOUT.*within the handshake deadline; nothing reached the device; connection from .* dropped; still listening/,
    );
    expect(await hold.ack).toMatchObject({
      ok: false,
      code: "TIMEOUT",
      message: expect.stringMatching(/handshake deadline/),
    }); // told why
    const d = await digest(dst);
    expect(d).toMatchObject({ digest: src.initialDigest, deviceState: "RUNNING" });
    expect(d.digest).not.toBe(dstBefore.digest);
  });

  it("a connection that sends the first 200 bytes of a valid stream and stalls: dropped at the handshake deadline; the destination keeps its state", async () => {
    const [src, dst] = await pair(["--dirty-rate", "0"], ["--empty", "--seed", "3"]);
    const saved = join(tmp.dir, "prefix.mig");
    expect((await run(["save", "--device", `vfio-user:${src.socket}`, "-o", saved, "--no-precopy"])).code).toBe(0);
    const before = await digest(dst);
    const { p, port } = await listen(dst, ["--handshake-timeout", "1000", "--attempts", "1"]);
    const c = rawSource(port);
    await c.hello;
    c.socket.write(readFileSync(saved).subarray(0, 200));
    const t0 = Date.now();
    const r = await p.done;
    expect(Date.now() - t0).toBeLessThan(4000);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(
      /^migstream: TIMEOUT .*within the handshake deadline; nothing reached the device; connection from .*giving up after 1 failed attempt$/m,
    );
    expect(await c.ack).toMatchObject({ ok: false, code: "TIMEOUT" });
    expect(await digest(dst)).toEqual(before); // never entered: its state and RUNNING kept
  });

  it("a stream whose transactions cannot fit the destination: refused before the device is touched (exit 3); the source told why, back in RUNNING", async () => {
    const [src, dst] = await pair(["--dirty-rate", "0"], ["--transaction-size", "64KiB"]);
    const before = await digest(dst);
    const { p, port } = await listen(dst, ["--attempts", "1"]);
    const s = await run(save(src, port, ["--no-precopy"]));
    const r = await p.done;
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /^migstream: DEVICE .*field max_transaction\): the stream declares transactions of up to \d+ bytes, but the device's migration region \(\d+ bytes\) has room for at most \d+; the device was not touched/m,
    );
    expect(s.code).toBe(3);
    expect(s.stderr).toMatch(
      /the destination failed: "the stream declares transactions .*the device was not touched.*"; device back in RUNNING/,
    );
    expect(await digest(dst)).toEqual(before);
    expect(await digest(src)).toMatchObject({ digest: src.initialDigest, deviceState: "RUNNING" });
  });

  it("a source killed mid-stream: the destination fails cleanly and is not RUNNING (a killed source's device is the VMM's to recover)", async () => {
    const [src, dst] = await pair(["--dirty-rate", "0"]);
    const { p, port } = await listen(dst, ["--attempts", "1"]);
    let source: ReturnType<typeof start> | undefined;
    const px = await proxy(port, { cutAt: 600_000, onCut: () => source?.child.kill("SIGKILL") });
    source = start(save(src, px.port, ["--codec", "raw", "--no-precopy"]));
    const [s, r] = await Promise.all([source.done, p.done]);
    await px.close();
    expect(s.signal).toBe("SIGKILL");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^migstream: TRUNCATED .*device reset \(partial state dropped\); device left in STOP; \d+ transactions \(\d+ bytes\) had been written to it before the failure/m,
    );
    await notRunningWithData(dst);
    // Nobody recovered the source: a real device stays where the dead client left it, and so does ours.
    expect((await digest(src)).deviceState).not.toBe("RUNNING");
  });

  it("a byte flipped on the way: a stream error before the device sees it; the listener goes on and the next source migrates", async () => {
    for (const key of [[], ["--key-file", keyA]]) {
      const [src, dst] = await pair(["--dirty-rate", "0"]);
      const { p, port } = await listen(dst, key);
      const px = await proxy(port, { flipAt: 300_000 });
      const s = await run(save(src, px.port, ["--codec", "raw", "--no-precopy", ...key]));
      await px.close();
      // A stream error (2), not the device refusing bad data (3): the decoder caught it first.
      // Keyed too: the frame's payload check fails before its MAC is even computed.
      await p.waitFor(
        /^migstream: CHECKSUM at byte \d+ \(frame \d+, device 0, field payload_check\).*device reset.*device left in STOP.*; connection from .* dropped; still listening/m,
      );
      expect(s.code).toBe(2);
      expect(s.stderr).toMatch(/the destination failed: ".*device left in STOP.*"; (source )?device back in RUNNING/);
      // (The listener still holds the destination device: its state is read once the run ends.)
      expect(await digest(src)).toMatchObject({ digest: src.initialDigest, deviceState: "RUNNING" });
      // The same listener takes the next attempt, which succeeds.
      const again = await run(save(src, port, ["--no-precopy", ...key]));
      expect(again.code, again.stderr).toBe(0);
      const r = await p.done;
      expect(r.code, r.stderr).toBe(0);
      expect(await digest(dst)).toMatchObject({ digest: src.initialDigest, deviceState: "RUNNING" });
    }
  });

  it("Ctrl-C on a source stuck on a destination that never reads nor answers: its driver puts the device back in RUNNING", async () => {
    const [src] = await pair(["--dirty-rate", "0"]);
    // A "destination" that greets, takes the first 256 KiB, then neither reads nor answers.
    const held: import("node:net").Socket[] = [];
    let got = 0;
    const { createServer } = await import("node:net");
    const silent = createServer((c) => {
      held.push(c);
      c.write(encodeHello({ keyed: false, encrypted: false, challenge: new Uint8Array(16) }));
      c.on("data", (d: Buffer) => {
        got += d.length;
        if (got >= 256 << 10) c.pause();
      });
    });
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
    const port = (silent.address() as import("node:net").AddressInfo).port;
    const p = start(save(src, port, ["--no-precopy", "--codec", "raw"]));
    expect(await until(() => got >= 256 << 10, 20_000)).toBe(true); // the device is being saved
    await new Promise((r) => setTimeout(r, 500));
    expect(p.child.exitCode).toBeNull(); // still waiting
    p.child.kill("SIGINT");
    const r = await p.done;
    for (const c of held) c.destroy();
    silent.close();
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(r.stderr).toMatch(/^migstream: (ABORTED|TRANSPORT)[^\n]*device back in RUNNING/m);
    expect(await digest(src)).toMatchObject({ digest: src.initialDigest, deviceState: "RUNNING" });
  });

  it("a source that never half-closes: the restore completes at STREAM_END; the ack comes on the same connection; bytes after the end are reported, not applied", async () => {
    const [src, dst] = await pair(["--dirty-rate", "0"]);
    const saved = join(tmp.dir, "whole.mig");
    expect(
      (await run(["save", "--device", `vfio-user:${src.socket}`, "-o", saved, "--no-precopy", "--codec", "lz4"])).code,
    ).toBe(0);
    const stream = readFileSync(saved);
    for (const trailing of [0, 100]) {
      const { p, port } = await listen(dst, ["--timeout", "3000"]);
      // A raw source: the whole stream (and `trailing` bytes of garbage in the same write), then it waits, never ending.
      const c = rawSource(port);
      await c.hello;
      c.socket.write(Buffer.concat([stream, Buffer.alloc(trailing, 0x5a)]));
      const ack = await c.ack;
      expect(ack).toMatchObject({ migstream: "ack", ok: true, started: true });
      expect(ack.trailingBytes).toBe(trailing || undefined);
      const r = await p.done;
      c.socket.destroy();
      expect(r.code, r.stderr).toBe(0);
      if (trailing)
        expect(r.stderr).toMatch(
          new RegExp(
            `^migstream: warning: ${trailing} bytes followed the end of the stream \\(at byte ${stream.length}\\)`,
            "m",
          ),
        );
      else expect(r.stderr).not.toMatch(/warning/);
      expect(await digest(dst)).toMatchObject({ digest: src.initialDigest, deviceState: "RUNNING" });
    }
  });

  it("a destination that reports bytes after the end: the source exits 2 and keeps its device stopped (the destination has the state)", async () => {
    const [src] = await pair(["--dirty-rate", "0"]);
    const { createServer } = await import("node:net");
    const fake = createServer({ allowHalfOpen: true }, (c) => {
      c.write(encodeHello({ keyed: false, encrypted: false, challenge: new Uint8Array(16) }));
      c.on("data", () => {});
      c.on("end", () =>
        c.end(
          `${JSON.stringify({ migstream: "ack", ok: true, started: true, transactions: 16, bytes: 4 << 20, trailingBytes: 5 })}\n`,
        ),
      );
    });
    await new Promise<void>((r) => fake.listen(0, "127.0.0.1", () => r()));
    const port = (fake.address() as import("node:net").AddressInfo).port;
    const s = await run(save(src, port, ["--no-precopy"]));
    fake.close();
    expect(s.code).toBe(2);
    expect(s.stderr).toMatch(
      /^migstream: FORMAT \(field trailing\): the destination took the state \(device RUNNING\), but 5 bytes followed the end of the stream .*; the source device stays stopped$/m,
    );
    expect((await digest(src)).deviceState).toBe("STOP");
  });

  it("a proxy that swallows the source's FIN: the migration completes", async () => {
    const [src, dst] = await pair(["--dirty-rate", "0"]);
    const { p, port } = await listen(dst, ["--timeout", "3000"]);
    const px = await proxy(port, { swallowFin: true });
    const s = await run(save(src, px.port, ["--no-precopy", "--timeout", "3000"]));
    const r = await p.done;
    await px.close();
    expect(s.code, s.stderr).toBe(0);
    expect(r.code, r.stderr).toBe(0);
    expect(await digest(dst)).toMatchObject({ digest: src.initialDigest, deviceState: "RUNNING" });
  });

  it("a saved keyed stream sent by a process without the key is refused before the device is touched; so is a captured live one; --allow-replay takes a saved one", async () => {
    const [src, dst] = await pair(["--dirty-rate", "0"], ["--empty", "--seed", "3"]);
    const saved = join(tmp.dir, "old.mig");
    expect(
      (await run(["save", "--device", `vfio-user:${src.socket}`, "-o", saved, "--no-precopy", "--key-file", keyA]))
        .code,
    ).toBe(0);
    const before = await digest(dst);
    const replay = async (bytes: Uint8Array, extra: string[] = []) => {
      const { p, port } = await listen(dst, ["--key-file", keyA, "--attempts", "1", ...extra]);
      const c = rawSource(port);
      await c.hello;
      c.socket.write(bytes); // byte for byte, by a process that does not hold the key
      const ack = await c.ack;
      c.socket.destroy();
      return { ack, r: await p.done };
    };
    // The stream saved earlier: not bound to this connection.
    const a = await replay(readFileSync(saved));
    expect(a.ack).toMatchObject({
      ok: false,
      code: "MAC",
      message: expect.stringMatching(/not bound to this connection/),
    });
    expect(a.r.code).toBe(2);
    expect(a.r.stderr).toMatch(
      /^migstream: MAC .*not bound to this connection: a stream saved or captured earlier \(a replay\) is refused.*--allow-replay; nothing reached the device; connection from .*giving up after 1 failed attempt$/m,
    );
    expect(await digest(dst)).toEqual(before);
    // A live keyed migration, captured on the way, then replayed: bound to another connection's challenge.
    const [src2, dst2] = await pair(["--dirty-rate", "0"]);
    const live = await listen(dst2, ["--key-file", keyA]);
    const capture: Buffer[] = [];
    const px = await proxy(live.port, { record: capture });
    expect((await run(save(src2, px.port, ["--no-precopy", "--key-file", keyA]))).code).toBe(0);
    expect((await live.p.done).code).toBe(0);
    await px.close();
    const b = await replay(Buffer.concat(capture));
    expect(b.ack).toMatchObject({ ok: false, code: "MAC", frame: 0 });
    expect(b.r.code).toBe(2);
    expect(await digest(dst)).toEqual(before);
    // The captured stream cannot be restored from a file either.
    writeFileSync(join(tmp.dir, "captured.mig"), Buffer.concat(capture));
    const f = await run([
      "restore",
      "--device",
      `vfio-user:${dst.socket}`,
      join(tmp.dir, "captured.mig"),
      "--key-file",
      keyA,
    ]);
    expect(f.code).toBe(2);
    expect(f.stderr).toMatch(/bound to a network connection's challenge/);
    expect(await digest(dst)).toEqual(before);
    // Said explicitly, the destination takes the saved stream; and a file restore takes it anyway.
    const c = await replay(readFileSync(saved), ["--allow-replay"]);
    expect(c.ack).toMatchObject({ ok: true, started: true });
    expect(c.r.code, c.r.stderr).toBe(0);
    expect(await digest(dst)).toMatchObject({ digest: src.initialDigest, deviceState: "RUNNING" });
    const [, dst3] = await pair();
    expect((await run(["restore", "--device", `vfio-user:${dst3.socket}`, saved, "--key-file", keyA])).code).toBe(0);
    expect(await digest(dst3)).toMatchObject({ digest: src.initialDigest, deviceState: "RUNNING" });
  });

  it("--encrypt: the migration round-trips sealed; a destination that requires it refuses a source that does not seal, before either device is touched", async () => {
    const [src, dst] = await pair(["--dirty-rate", "0"]);
    const capture: Buffer[] = [];
    const { p, port } = await listen(dst, ["--key-file", keyA, "--require-encryption", "--json"]);
    const px = await proxy(port, { record: capture });
    const plain = await run(save(src, px.port, ["--no-precopy", "--key-file", keyA]));
    expect(plain.code).toBe(2);
    expect(plain.stderr).toMatch(/takes only encrypted streams: add --encrypt .*the device was not touched/);
    expect(await digest(src)).toMatchObject({ digest: src.initialDigest, deviceState: "RUNNING" });
    const s = await run(save(src, px.port, ["--no-precopy", "--key-file", keyA, "--encrypt", "--codec", "raw"]));
    const r = await p.done;
    await px.close();
    expect(s.code, s.stderr).toBe(0);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).stream.header).toMatchObject({ encrypted: true, bound: true, version: "1.1" });
    expect(await digest(dst)).toMatchObject({ digest: src.initialDigest, deviceState: "RUNNING" });
    // What went over the wire shows none of the device's bytes: pieces of the state, as an unsealed
    // save carries them in clear, are nowhere in it. (dst now holds the source's state.)
    const sealed = Buffer.concat(capture);
    const raw = await run(["save", "--device", `vfio-user:${dst.socket}`, "-o", "-", "--no-precopy", "--codec", "raw"]);
    let checked = 0;
    for (let at = 4096; at + 64 < raw.bytes.length && checked < 20; at += 200_000) {
      const piece = raw.bytes.subarray(at, at + 64);
      if (new Set(piece).size < 32) continue; // only pieces no stream could hold by chance
      checked++;
      expect(sealed.includes(piece)).toBe(false);
    }
    expect(checked).toBeGreaterThan(5);
  });

  it("refuses a non-loopback listener or target without a key, unless --insecure", async () => {
    const [src, dst] = await pair();
    const r = await run(["restore", "--device", `vfio-user:${dst.socket}`, "--listen", "tcp://0.0.0.0:0"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^migstream: USAGE: restore: tcp:\/\/0\.0\.0\.0:0 is not a loopback address: give --key-file/m,
    );
    const s = await run(["save", "--device", `vfio-user:${src.socket}`, "--to", "tcp://192.0.2.1:7000"]);
    expect(s.code).toBe(1);
    expect(s.stderr).toMatch(/not a loopback address/);
    for (const extra of [["--insecure"], ["--key-file", keyA]]) {
      const p = start(["restore", "--device", `vfio-user:${dst.socket}`, "--listen", "tcp://0.0.0.0:0", ...extra]);
      await p.waitFor(/listening on tcp:\/\/0\.0\.0\.0:\d+/);
      p.child.kill("SIGTERM");
      await p.done;
    }
  });
});
