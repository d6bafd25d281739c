// Exit codes as documented (0 ok, 1 usage, 2 stream, 3 device, 4 I/O), the
// one-line error, --json on failure, --debug stacks, --help with an example.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, ensureCli, freePort, releaseCli, run, sim, start, tempDir, until } from "./helpers.js";

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
    for (const args of [
      [],
      ["nope"],
      ["verify"],
      ["verify", "a", "b"],
      ["encode", file("in.raw")],
      ["encode", file("in.raw"), "-o", "x", "--codec", "gzip"],
      ["save", "--device", "sim:"],
      ["verify", "--bogus", "x"],
      ["restore", "--device", "bad-spec", "x"],
    ]) {
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
      expect((await run(["save", "--device", `vfio-user:${a.socket}`, "-o", file("a.mig"), "--no-precopy"])).code).toBe(
        0,
      );
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
    const s = await run([
      "save",
      "--device",
      `vfio-user:${file("none.sock")}`,
      "--to",
      "tcp://127.0.0.1:1",
      "--connect-timeout",
      "0",
    ]);
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
    expect(names).toEqual(
      expect.arrayContaining(["demo", "save", "restore", "encode", "decode", "verify", "inspect", "sim", "bench"]),
    );
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
    const expected = Object.keys(pkg.scripts)
      .filter((s: string) => s.startsWith("bench:"))
      .map((s: string) => s.slice(6));
    expect(JSON.parse(r.stdout)).toEqual(expected);
    const u = await run(["bench", "no-such-suite"]);
    expect(u.code).toBe(1);
  });
});

describe("bounds, -q, terminals, digests", () => {
  it("refuses chunks below 4KiB and more threads than the machine can use, saying why", async () => {
    const c = await run(["encode", file("in.raw"), "-o", file("tiny.mig"), "--chunk-size", "1"]);
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/^migstream: USAGE: encode: --chunk-size 1 is below 4KiB: every chunk costs a frame/m);
    expect((await run(["encode", file("in.raw"), "-o", file("page.mig"), "--chunk-size", "4KiB"])).code).toBe(0);
    const cores = availableParallelism();
    const most = Math.min(4 * cores, 64);
    const t = await run(["encode", file("in.raw"), "-o", file("t.mig"), "--threads", String(most + 1)]);
    expect(t.code).toBe(1);
    expect(t.stderr).toMatch(
      new RegExp(`--threads ${most + 1} is more than this machine can use \\(${cores} cores?: at most ${most}`),
    );
    const d = await run(["decode", file("page.mig"), "-o", file("x.raw"), "--threads", "256"]);
    expect(d.code).toBe(1);
    expect(existsSync(file("tiny.mig")) || existsSync(file("t.mig")) || existsSync(file("x.raw"))).toBe(false);
  });

  it("binary output to a terminal is refused unless forced", async () => {
    const tty = (args: string[]) => onTerminal(args);
    const refused = await tty(["encode", file("in.raw"), "-o", "-"]);
    expect(refused.code).toBe(1);
    expect(refused.out).toMatch(
      /USAGE: encode: refusing to write binary stream data to a terminal; redirect stdout, or give -f\/--force/,
    );
    const dec = await tty(["decode", file("ok.mig"), "-o", "-"]);
    expect(dec.code).toBe(1);
    const forced = await tty(["encode", file("in.raw"), "-o", "-", "--force", "--codec", "raw"]);
    expect(forced.code).toBe(0);
    expect(forced.out.length).toBeGreaterThan(200_000);
    // Not a terminal: no question asked.
    const piped = await run(["encode", file("in.raw"), "-o", "-"]);
    expect(piped.code).toBe(0);
    expect(piped.bytes.length).toBeGreaterThan(1000);
  });

  it("every digest printed is 16 hex digits", async () => {
    for (let i = 0; i < 4; i++) {
      writeFileSync(file(`d${i}.raw`), randomBytes(5000 + i));
      const r = await run(["encode", file(`d${i}.raw`), "-o", file(`d${i}.mig`), "--json"]);
      expect(JSON.parse(r.stdout).trailer.framesDigest).toMatch(/^[0-9a-f]{16}$/);
    }
  });

  it("-q prints nothing but errors: sim serve, save, restore --listen", async () => {
    const port = await freePort();
    const s = start(["sim", "serve", "--socket", file("q-src.sock"), "--state-size", "256KiB", "-q"]);
    const d = await sim(tmp.dir, "q-dst", ["--state-size", "256KiB", "--empty"]);
    await until(() => existsSync(file("q-src.sock")), 10_000);
    try {
      const l = start(["restore", "--device", `vfio-user:${d.socket}`, "--listen", `tcp://127.0.0.1:${port}`, "-q"]);
      const sv = await run([
        "save",
        "--device",
        `vfio-user:${file("q-src.sock")}`,
        "--to",
        `tcp://127.0.0.1:${port}`,
        "-q",
        "--connect-timeout",
        "10000",
      ]);
      const r = await l.done;
      expect([sv.code, r.code]).toEqual([0, 0]);
      expect(sv.stdout + sv.stderr + r.stdout + r.stderr).toBe("");
      expect(s.stdout() + s.stderr()).toBe("");
    } finally {
      s.child.kill("SIGTERM");
      await Promise.all([s.done, d.stop()]);
    }
  });
});

/** Runs the CLI under `script` (a pty on stdin/stdout/stderr); resolves with all it printed and the exit code. */
function onTerminal(args: string[]): Promise<{ code: number | null; out: string }> {
  const cmd = [process.execPath, CLI, ...args].map((a) => `'${a}'`).join(" ");
  return new Promise((resolve) => {
    const child = spawn("script", ["-qefc", cmd, "/dev/null"], {
      env: { ...process.env, TERM: "xterm" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.setEncoding("latin1").on("data", (c: string) => (out += c));
    child.stderr.setEncoding("latin1").on("data", (c: string) => (out += c));
    child.stdin.end();
    child.once("close", (code) => resolve({ code, out }));
  });
}
