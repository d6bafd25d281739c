// encode --to / decode --listen as separate processes over 127.0.0.1: any byte
// stream (here a file with zero, text and random parts) crosses byte-exact,
// keyed; a wrong key or garbage is dropped and the listener keeps waiting; a
// byte flipped on the way fails both ends and leaves no output file; the
// key-off-loopback rule. QEMU's exec: use of the same commands is
// test/cli/qemu.test.ts.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// @ts-expect-error plain JS module shared with scripts/make-vectors.mjs
import { noise } from "../vectors/cases.mjs";
import { ensureCli, listeningPort, proxy, rawSource, releaseCli, run, start, tempDir } from "./helpers.js";

let tmp: ReturnType<typeof tempDir>;
let input: string;
let keyA: string;
let keyB: string;

beforeAll(() => {
  ensureCli();
  tmp = tempDir();
  input = join(tmp.dir, "in.raw");
  keyA = join(tmp.dir, "a.key");
  keyB = join(tmp.dir, "b.key");
  writeFileSync(keyA, `${"a1".repeat(32)}\n`);
  writeFileSync(keyB, "b2".repeat(32));
  const data = Buffer.alloc(3 * (1 << 20) + 12345);
  data.fill("migration stream text ", 1 << 20, 2 << 20);
  data.set(noise(data.length - (2 << 20), 0x9e3779b9), 2 << 20);
  writeFileSync(input, data);
});

afterAll(() => {
  tmp?.cleanup();
  releaseCli();
});

/** `decode --listen` on a free loopback port, writing to `out`. */
async function listen(out: string, extra: string[] = []) {
  const p = start(["decode", "--listen", "tcp://127.0.0.1:0", "-o", out, ...extra]);
  return { p, port: await listeningPort(p) };
}

describe("encode --to / decode --listen (separate processes, 127.0.0.1)", () => {
  it("carries a file byte-exact with a key; the source reports what the destination verified", async () => {
    const out = join(tmp.dir, "keyed.raw");
    const { p, port } = await listen(out, ["--key-file", keyA, "--json"]);
    const s = await run([
      "encode",
      input,
      "--to",
      `tcp://127.0.0.1:${port}`,
      "--codec",
      "lz4",
      "--key-file",
      keyA,
      "--json",
    ]);
    const r = await p.done;
    expect(s.code).toBe(0);
    expect(r.code).toBe(0);
    const size = readFileSync(input).length;
    expect(readFileSync(out).equals(readFileSync(input))).toBe(true);
    const sent = JSON.parse(s.stdout);
    const got = JSON.parse(r.stdout.trim().split("\n").pop()!);
    expect(sent).toMatchObject({
      ok: true,
      rawBytes: size,
      destination: `tcp://127.0.0.1:${port}`,
      confirmed: { bytes: size, transactions: 4 },
    });
    expect(sent.wireBytes).toBeLessThan(size); // the zero and text parts compress
    expect(got).toMatchObject({
      ok: true,
      device: 0,
      bytes: size,
      from: expect.stringMatching(/^tcp:\/\/127\.0\.0\.1:\d+$/),
    });
  });

  it("drops a wrong key and garbage with nothing written, keeps listening, then serves the right source", async () => {
    const out = join(tmp.dir, "after-drops.raw");
    const { p, port } = await listen(out, ["--key-file", keyA]);
    const wrong = await run(["encode", input, "--to", `tcp://127.0.0.1:${port}`, "--key-file", keyB]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/^migstream: MAC .*the destination failed/m);
    await p.waitFor(/MAC .*nothing reached the output; connection from .* dropped; still listening/);
    // No key at all: the hello says the destination wants one; the source stops before sending anything.
    const unkeyed = await run(["encode", input, "--to", `tcp://127.0.0.1:${port}`]);
    expect(unkeyed.code).toBe(2);
    expect(unkeyed.stderr).toMatch(/^migstream: MAC: .* takes only authenticated streams: .*; nothing was sent$/m);
    const garbage = rawSource(port);
    expect(await garbage.hello).not.toBeNull(); // greeted first
    garbage.socket.end(new TextEncoder().encode("not a stream\n".repeat(8)));
    expect(await garbage.ack).toMatchObject({ migstream: "ack", ok: false, code: "BAD_MAGIC" });
    await p.waitFor(/BAD_MAGIC at byte 0.*still listening/);
    expect(existsSync(out)).toBe(false);
    const right = await run(["encode", input, "--to", `tcp://127.0.0.1:${port}`, "--key-file", keyA, "-q"]);
    expect(right.code).toBe(0);
    expect((await p.done).code).toBe(0);
    expect(readFileSync(out).equals(readFileSync(input))).toBe(true);
  });

  it("a byte flipped on the way: both ends fail with CHECKSUM and no output file appears", async () => {
    const out = join(tmp.dir, "flipped.raw");
    const { p, port } = await listen(out);
    const px = await proxy(port, { flipAt: 1_500_000 });
    const s = await run(["encode", input, "--to", `tcp://127.0.0.1:${px.port}`, "--codec", "raw"]);
    const r = await p.done;
    await px.close();
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^migstream: CHECKSUM at byte \d+ \(frame \d+, device 0, field payload_check\)/m);
    expect(s.code).toBe(2);
    expect(s.stderr).toMatch(/^migstream: CHECKSUM .*the destination failed/m);
    expect(readdirSync(tmp.dir).filter((f) => f.includes("flipped"))).toEqual([]); // neither the file nor its temporary
  });

  it("refuses a non-loopback address without a key, unless --insecure; -o and --to exclude each other", async () => {
    const d = await run(["decode", "--listen", "tcp://0.0.0.0:0", "-o", "-"]);
    expect(d.code).toBe(1);
    expect(d.stderr).toMatch(
      /^migstream: USAGE: decode: tcp:\/\/0\.0\.0\.0:0 is not a loopback address: give --key-file/m,
    );
    const e = await run(["encode", input, "--to", "tcp://192.0.2.1:7000"]);
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/^migstream: USAGE: encode: tcp:\/\/192\.0\.2\.1:7000 is not a loopback address/m);
    const both = await run(["encode", input, "-o", "-", "--to", "tcp://127.0.0.1:1"]);
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/give exactly one of -o OUT and --to/);
    const p = start(["decode", "--listen", "tcp://0.0.0.0:0", "--insecure", "-o", "-"]);
    await p.waitFor(/listening on tcp:\/\/0\.0\.0\.0:\d+/);
    p.child.kill("SIGTERM");
    await p.done;
  });
});
