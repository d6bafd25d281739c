// Exit codes as documented (0 ok, 1 usage, 2 stream, 3 device, 4 I/O), the
// one-line error, --json on failure, --debug stacks, --help with an example.
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureCli, releaseCli, run, sim, tempDir } from "./helpers.js";

let tmp: ReturnType<typeof tempDir>;
const file = (name: string) => join(tmp.dir, name);

beforeAll(() => {
  ensureCli();
  tmp = tempDir();
  writeFileSync(file("in.raw"), randomBytes(200_000));
});
afterAll(() => {
  tmp?.cleanup();
  releaseCli();
});

const ONE_LINE = /^migstream: [A-Z_]+( at byte \d+)?( \([^)]*\))?: [^\n]+\n$/;

describe("exit codes", () => {
  it("0 ok, 1 usage", async () => {
    expect((await run(["encode", file("in.raw"), "-o", file("ok.mig")])).code).toBe(0);
    expect((await run(["verify", file("ok.mig"), "-q"])).code).toBe(0);
    for (const args of [[], ["nope"], ["verify"], ["verify", "a", "b"], ["encode", file("in.raw")], ["encode", file("in.raw"), "-o", "x", "--codec", "gzip"], ["save", "--device", "sim:"], ["verify", "--bogus", "x"], ["restore", "--device", "bad-spec", "x"]]) {
      const r = await run(args);
      expect(r.code, args.join(" ")).toBe(1);
      if (args.length > 1) expect(r.stderr, args.join(" ")).toMatch(/^migstream: USAGE/m);
    }
  });

  it("2 for a damaged or foreign stream, with byte and frame", async () => {
    const good = readFileSync(file("ok.mig"));
    const bad = Buffer.from(good);
    bad[good.length - 40] ^= 1;
    writeFileSync(file("bad.mig"), bad);
    const r = await run(["verify", file("bad.mig")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(ONE_LINE);
    expect(r.stderr).toMatch(/at byte \d+ \(frame \d+/);
    writeFileSync(file("text.mig"), "just some text\n");
    const t = await run(["verify", file("text.mig")]);
    expect(t.code).toBe(2);
    expect(t.stderr).toMatch(/^migstream: BAD_MAGIC/);
    // A keyed stream without the key.
    writeFileSync(file("k"), "00112233445566778899aabbccddeeff");
    expect((await run(["encode", file("in.raw"), "-o", file("keyed.mig"), "--key-file", file("k")])).code).toBe(0);
    const m = await run(["verify", file("keyed.mig")]);
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/^migstream: MAC/);
  });

  it("3 for a device that refuses the state", async () => {
    // The destination is smaller than the saved state: the device rejects it (EINVAL).
    const [a, b] = await Promise.all([
      sim(tmp.dir, "a", ["--state-size", "1MiB", "--transaction-size", "64KiB"]),
      sim(tmp.dir, "b", ["--state-size", "512KiB", "--transaction-size", "64KiB", "--empty"]),
    ]);
    try {
      expect((await run(["save", "--device", `vfio-user:${a.socket}`, "-o", file("a.mig"), "--no-precopy"])).code).toBe(0);
      const r = await run(["restore", "--device", `vfio-user:${b.socket}`, file("a.mig")]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/^migstream: DEVICE /m);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it("4 for I/O: missing files, unreachable devices and destinations", async () => {
    const r = await run(["verify", file("missing.mig")]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^migstream: IO \(ENOENT\): cannot open .*missing\.mig\n$/);
    const d = await run(["restore", "--device", `vfio-user:${file("none.sock")}`, file("ok.mig")]);
    expect(d.code).toBe(4);
    expect(d.stderr).toMatch(/^migstream: TRANSPORT/);
    const s = await run(["save", "--device", `vfio-user:${file("none.sock")}`, "--to", "tcp://127.0.0.1:1", "--connect-timeout", "0"]);
    expect(s.code).toBe(4);
    expect(s.stderr).toMatch(/^migstream: TRANSPORT .*ECONNREFUSED/);
  });
});

describe("--json, --debug, --help", () => {
  it("--json prints parseable results, and a parseable error on failure", async () => {
    const ok = await run(["verify", file("ok.mig"), "--json"]);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, complete: true, rawBytes: 200_000 });
    const ins = await run(["inspect", file("ok.mig"), "--json"]);
    expect(JSON.parse(ins.stdout).devices[0].phases[0].phase).toBe("stopcopy");
    const bad = await run(["verify", file("bad.mig"), "--json"]);
    expect(bad.code).toBe(2);
    const e = JSON.parse(bad.stdout);
    expect(e).toMatchObject({ ok: false, exitCode: 2 });
    expect(typeof e.error.offset).toBe("number");
    expect(e.error.code).toMatch(/^[A-Z_]+$/);
  });

  it("--debug adds a stack; without it the error is one line", async () => {
    const plain = await run(["verify", file("bad.mig")]);
    expect(plain.stderr).toMatch(ONE_LINE);
    const dbg = await run(["verify", file("bad.mig"), "--debug"]);
    expect(dbg.code).toBe(2);
    expect(dbg.stderr).toMatch(/\n\s+at /);
  });

  it("every command has --help with an example", async () => {
    const top = await run(["--help"]);
    expect(top.code).toBe(0);
    const names = [...top.stdout.matchAll(/^ {2}([a-z-]+) {2,}/gm)].map((m) => m[1]);
    expect(names).toEqual(expect.arrayContaining(["demo", "save", "restore", "encode", "decode", "verify", "inspect", "sim", "bench"]));
    for (const n of names) {
      const h = await run([n, "--help"]);
      expect(h.code, n).toBe(0);
      expect(h.stdout, n).toMatch(/^usage: migstream /);
      expect(h.stdout, n).toMatch(/\nexamples?:\n {2}migstream /);
    }
  });

  it("bench --list names the npm bench suites", async () => {
    const r = await run(["bench", "--list", "--json"]);
    expect(r.code).toBe(0);
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
    const expected = Object.keys(pkg.scripts).filter((s: string) => s.startsWith("bench:")).map((s: string) => s.slice(6));
    expect(JSON.parse(r.stdout)).toEqual(expected);
    const u = await run(["bench", "no-such-suite"]);
    expect(u.code).toBe(1);
  });
});
