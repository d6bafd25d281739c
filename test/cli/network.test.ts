// save --to / restore --listen as separate processes over 127.0.0.1, between
// two `sim serve` processes: keyed and unkeyed, a wrong key, garbage and busy
// connections, a source killed mid-stream, a byte flipped on the way.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { digest, ensureCli, releaseCli, listeningPort, proxy, rawConnection, run, type Sim, sim, start, tempDir } from "./helpers.js";

const STATE = ["--state-size", "4MiB", "--transaction-size", "256KiB"];
const KEY_A = "a1".repeat(32);
const KEY_B = "b2".repeat(32);

let tmp: ReturnType<typeof tempDir>;
let src: Sim;
let dst: Sim;
let keyA: string;
let keyB: string;

beforeAll(async () => {
  ensureCli();
  tmp = tempDir();
  keyA = join(tmp.dir, "a.key");
  keyB = join(tmp.dir, "b.key");
  writeFileSync(keyA, `${KEY_A}\n`);
  writeFileSync(keyB, KEY_B);
  [src, dst] = await Promise.all([sim(tmp.dir, "src", [...STATE, "--seed", "7", "--dirty-rate", "8"]), sim(tmp.dir, "dst", [...STATE, "--empty"])]);
});

afterAll(async () => {
  await Promise.all([src?.stop(), dst?.stop()]);
  tmp?.cleanup();
  releaseCli();
});

/**
 * After a failed restore the destination holds none of the partial state: the
 * restore leaves it reset and in STOP, and `sim serve` keeps a device stopped
 * after a restore when its client leaves.
 */
async function notRunningWithData() {
  const d = await digest(dst);
  expect(d.digest).toBe(dst.initialDigest); // dst started empty: the reset state's digest
  expect(d.deviceState).toBe("STOP");
}

/** Starts `restore --listen` on a free loopback port. */
async function listen(extra: string[] = []) {
  const p = start(["restore", "--device", `vfio-user:${dst.socket}`, "--listen", "tcp://127.0.0.1:0", ...extra]);
  return { p, port: await listeningPort(p) };
}

describe("save --to / restore --listen (separate processes, 127.0.0.1)", () => {
  it("migrates unkeyed (lz4), then keyed (auto); digests equal; both report JSON", async () => {
    for (const [key, codec] of [[[], "lz4"], [["--key-file", keyA], "auto"]] as const) {
      const { p, port } = await listen([...key, "--json"]);
      const s = await run(["save", "--device", `vfio-user:${src.socket}`, "--to", `tcp://127.0.0.1:${port}`, "--json", "--codec", codec, ...key]);
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
    }
  });

  it("a wrong key: the source gets MAC and stays RUNNING; the destination is untouched and keeps listening", async () => {
    const dstBefore = await digest(dst);
    const { p, port } = await listen(["--key-file", keyA]);
    const s = await run(["save", "--device", `vfio-user:${src.socket}`, "--to", `tcp://127.0.0.1:${port}`, "--key-file", keyB]);
    expect(s.code).toBe(2);
    expect(s.stderr).toMatch(/^migstream: MAC .*the destination failed/m);
    await p.waitFor(/MAC .*nothing reached the device; still listening/);
    expect(p.child.exitCode).toBeNull();
    // An unkeyed source against a keyed listener fails the same way.
    const u = await run(["save", "--device", `vfio-user:${src.socket}`, "--to", `tcp://127.0.0.1:${port}`]);
    expect(u.code).toBe(2);
    expect(u.stderr).toMatch(/^migstream: MAC /m);
    p.child.kill("SIGTERM");
    const r = await p.done;
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/not touched/);
    expect((await digest(src)).deviceState).toBe("RUNNING"); // its state moved on: it ran (and dirtied) through pre-copy
    expect(await digest(dst)).toEqual(dstBefore); // RUNNING, never entered RESUMING
  });

  it("drops garbage and refuses a second connection while one is served; nothing reaches the device", async () => {
    const dstBefore = await digest(dst);
    const { p, port } = await listen();
    const garbage = rawConnection(port, new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(4)));
    const ack = JSON.parse((await garbage.reply).trim());
    expect(ack).toMatchObject({ migstream: "ack", ok: false, code: "BAD_MAGIC" });
    await p.waitFor(/BAD_MAGIC at byte 0.*dropped, nothing reached the device; still listening/);
    // A silent connection holds the listener; a second one is refused.
    const hold = rawConnection(port);
    await p.waitFor(/source connected from .*\n.*source connected from/s);
    const busy = rawConnection(port, new Uint8Array(0));
    expect(JSON.parse((await busy.reply).trim())).toMatchObject({ ok: false, code: "TRANSPORT", message: expect.stringMatching(/busy/) });
    hold.socket.end(); // ends before a header: dropped too
    await p.waitFor(/TRUNCATED.*still listening/);
    p.child.kill("SIGTERM");
    expect((await p.done).code).not.toBe(0);
    expect(await digest(dst)).toEqual(dstBefore);
  });

  it("a source killed mid-stream: the destination fails cleanly and is not RUNNING; the source device runs on", async () => {
    const srcBefore = await digest(src);
    const { p, port } = await listen();
    let source: ReturnType<typeof start> | undefined;
    const px = await proxy(port, { cutAt: 600_000, onCut: () => source?.child.kill("SIGKILL") });
    // No pre-copy: the source does not change its state, so its digest must come back unchanged.
    source = start(["save", "--device", `vfio-user:${src.socket}`, "--to", `tcp://127.0.0.1:${px.port}`, "--codec", "raw", "--no-precopy"]);
    const [s, r] = await Promise.all([source.done, p.done]);
    await px.close();
    expect(s.signal).toBe("SIGKILL");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^migstream: TRUNCATED .*device reset \(partial state dropped\); device left in STOP/m);
    await notRunningWithData();
    // The source lost its client mid-save: the server put it back in RUNNING with its state.
    expect(await digest(src)).toEqual(srcBefore);
  });

  it("a byte flipped on the way: the destination rejects it as a stream error before the device sees it", async () => {
    for (const key of [[], ["--key-file", keyA]]) {
      const srcBefore = await digest(src);
      const { p, port } = await listen(key);
      const px = await proxy(port, { flipAt: 300_000 });
      const s = await run(["save", "--device", `vfio-user:${src.socket}`, "--to", `tcp://127.0.0.1:${px.port}`, "--codec", "raw", "--no-precopy", ...key]);
      const r = await p.done;
      await px.close();
      // A stream error (2), not the device refusing bad data (3): the decoder caught it first.
      expect(r.code).toBe(2);
      // Keyed too: the frame's payload check fails before its MAC is even computed.
      expect(r.stderr).toMatch(/^migstream: CHECKSUM at byte \d+ \(frame \d+, device 0, field payload_check\)/m);
      expect(r.stderr).toMatch(/device reset/);
      expect(s.code).toBe(2);
      expect(s.stderr).toMatch(/the destination failed: ".*device left in STOP"; (source )?device back in RUNNING/);
      await notRunningWithData();
      expect(await digest(src)).toEqual(srcBefore);
    }
  });

  it("Ctrl-C on a source stuck on a destination that never answers: the source device runs on", async () => {
    const srcBefore = await digest(src);
    // A "destination" that accepts and then neither reads nor answers.
    const held: import("node:net").Socket[] = [];
    const { createServer } = await import("node:net");
    const silent = createServer((c) => (held.push(c), c.pause()));
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
    const port = (silent.address() as import("node:net").AddressInfo).port;
    const p = start(["save", "--device", `vfio-user:${src.socket}`, "--to", `tcp://127.0.0.1:${port}`, "--no-precopy", "--codec", "raw"]);
    await new Promise((r) => setTimeout(r, 1000));
    expect(p.child.exitCode).toBeNull(); // still waiting
    p.child.kill("SIGINT");
    const r = await p.done;
    for (const c of held) c.destroy();
    silent.close();
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(r.stderr).toMatch(/^migstream: (ABORTED|TRANSPORT)[^\n]*(source )?device back in RUNNING/m);
    expect(await digest(src)).toEqual(srcBefore);
  });

  it("a source that never half-closes: the restore completes at STREAM_END and the ack comes on the same connection", async () => {
    const saved = join(tmp.dir, "whole.mig");
    expect((await run(["save", "--device", `vfio-user:${src.socket}`, "-o", saved, "--no-precopy", "--codec", "lz4"])).code).toBe(0);
    const want = await digest(src);
    const stream = readFileSync(saved);
    for (const trailing of [0, 100]) {
      const { p, port } = await listen(["--timeout", "3000"]);
      // A raw source: the whole stream (and `trailing` bytes of garbage in the same write), then it waits, never ending.
      const c = rawConnection(port);
      c.socket.write(Buffer.concat([stream, Buffer.alloc(trailing, 0x5a)]));
      const ackLine = await new Promise<string>((resolve) => {
        let got = "";
        c.socket.on("data", (d: string) => {
          got += d;
          if (got.includes("\n")) resolve(got.slice(got.indexOf("{"), got.indexOf("\n")));
        });
      });
      const ack = JSON.parse(ackLine);
      expect(ack).toMatchObject({ migstream: "ack", ok: true, started: true });
      if (trailing) expect(ack.trailingBytes).toBe(trailing);
      else expect(ack.trailingBytes).toBeUndefined();
      const r = await p.done;
      c.socket.destroy();
      expect(r.code, r.stderr).toBe(0);
      if (trailing) expect(r.stderr).toMatch(new RegExp(`^migstream: warning: ${trailing} bytes followed the end of the stream \\(at byte ${stream.length}\\)`, "m"));
      else expect(r.stderr).not.toMatch(/warning/);
      const d = await digest(dst);
      expect(d).toEqual({ ...want, deviceState: "RUNNING" });
    }
  });

  it("a proxy that swallows the source's FIN: the migration completes", async () => {
    const { p, port } = await listen(["--timeout", "3000"]);
    const px = await proxy(port, { swallowFin: true });
    const s = await run(["save", "--device", `vfio-user:${src.socket}`, "--to", `tcp://127.0.0.1:${px.port}`, "--no-precopy", "--timeout", "3000"]);
    const r = await p.done;
    await px.close();
    expect(s.code, s.stderr).toBe(0);
    expect(r.code, r.stderr).toBe(0);
    const [a, b] = await Promise.all([digest(src), digest(dst)]);
    expect(b.deviceState).toBe("RUNNING");
    expect(b.digest).toBe(a.digest);
  });

  it("refuses a non-loopback listener or target without a key, unless --insecure", async () => {
    const r = await run(["restore", "--device", `vfio-user:${dst.socket}`, "--listen", "tcp://0.0.0.0:0"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^migstream: USAGE: restore: tcp:\/\/0\.0\.0\.0:0 is not a loopback address: give --key-file/m);
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
