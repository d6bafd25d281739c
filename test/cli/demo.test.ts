// `migstream demo` (= npm start) as a user runs it, and its progress line on a
// terminal (util-linux `script` provides the pty).
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, ensureCli, releaseCli, run } from "./helpers.js";

beforeAll(() => ensureCli());
afterAll(() => releaseCli());

describe("migstream demo", () => {
  it("migrates with the default sizes, prints the report and exits 0", async () => {
    const r = await run(["demo"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(""); // not a terminal: no progress line
    const out = r.stdout;
    expect(out).toMatch(/^migration sim source \(64MiB/);
    expect(out).toMatch(/^ {2}pre-copy #0 +\d+ +[\d.]+ MiB /m);
    expect(out).toMatch(/^ {2}pre-copy #1 /m); // the source kept dirtying: a second pass
    expect(out).toMatch(/^ {2}stop-and-copy /m);
    expect(out).toMatch(/^bytes +raw [\d.]+ MiB in \d+ buffers; on the wire [\d.]+ MiB \([\d.]+x\); QEMU raw layout/m);
    expect(out).toMatch(/^savings +zero chunks .*dedup/m);
    expect(out).toMatch(/^downtime +[\d.]+ m?s \(stop-and-copy → destination RUNNING/m);
    const d = /^digests +source ([0-9a-f]{16}), destination ([0-9a-f]{16}): match$/m.exec(out);
    expect(d).not.toBeNull();
    expect(d![1]).toBe(d![2]);
    expect(out).toMatch(/^verified: /m);
  });

  it("--json: the report parses and its numbers hold together", async () => {
    const r = await run(["demo", "--state-size", "8MiB", "--json", "--dedup", "--codec", "lz4"]);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.ok).toBe(true);
    expect(rep.digests.match).toBe(true);
    expect(rep.destinationState).toBe("RUNNING");
    expect(rep.iterations).toBeGreaterThanOrEqual(2); // the source dirtied during pre-copy
    expect(rep.rawBytes).toBeGreaterThan(8 << 20); // pages were resent
    expect(rep.phases.map((p: { phase: string }) => p.phase)).toEqual([
      "setup",
      ...Array.from({ length: rep.iterations }, (_, i) => `pre-copy #${i}`),
      "stop-and-copy",
    ]);
    expect(rep.phases.reduce((n: number, p: { rawBytes: number }) => n + p.rawBytes, 0)).toBe(rep.rawBytes);
    expect(rep.phases.reduce((n: number, p: { transactions: number }) => n + p.transactions, 0)).toBe(rep.transactions);
    expect(rep.qemuBytes).toBe(rep.rawBytes + 24 * rep.transactions);
    expect(rep.wireBytes).toBeLessThan(rep.rawBytes);
    expect(rep.restored).toEqual({ started: true, transactions: rep.transactions, bytes: rep.rawBytes });
    expect(rep.downtimeMs).toBeGreaterThan(0);
    expect(rep.downtimeMs).toBeLessThan(rep.totalMs + 1000);
  });

  it("--protocol v2: two libvfio-user-style v2 devices, the same verified migration", async () => {
    const r = await run(["demo", "--protocol", "v2", "--state-size", "8MiB", "--dirty-rate", "64", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.ok).toBe(true);
    expect(rep.digests.match).toBe(true);
    expect(rep.destinationState).toBe("RUNNING");
    expect(rep.rawBytes).toBeGreaterThan(8 << 20); // the state plus the pages dirtied meanwhile
    expect(rep.phases.at(-1).phase).toBe("stop-and-copy");
  });
});

/** Runs `cmd` under `script` (a pty); resolves with everything the terminal got and the exit code. */
function onTerminal(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const cmd = [process.execPath, CLI, ...args].map((a) => `'${a}'`).join(" ");
  return new Promise((resolve) => {
    const child = spawn("script", ["-qefc", cmd, "/dev/null"], {
      env: { ...process.env, TERM: "xterm", ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (out += c));
    child.stdin.end();
    child.once("close", (code) => resolve({ code, out }));
  });
}

describe("progress on a terminal", () => {
  const ERASE = "\r\x1b[K";
  it("draws a throttled line with phase, bytes, rate, ratio and pending, then erases it before the report", async () => {
    const { code, out } = await onTerminal(["demo", "--state-size", "16MiB", "--codec", "lz4"], { NO_COLOR: "" });
    expect(code, out).toBe(0);
    const frames = out.split(ERASE).slice(1);
    expect(frames.length).toBeGreaterThanOrEqual(3);
    // Every frame but the last is a progress line; the last is what follows the final erase.
    const lines = frames.slice(0, -1).map((f) => f.replace(/\x1b\[[0-9;]*m/g, ""));
    for (const l of lines) expect(l).toMatch(/^demo {2}\S/);
    // A phase change is drawn at once, however short the phase (a fast machine ends pre-copy #0 within one interval).
    expect(lines.some((f) => /^demo {2}pre-copy #0 {2}/.test(f))).toBe(true);
    const full =
      /^demo {2}(pre-copy #\d+|stop-and-copy) {2}[\d.]+ [KM]iB {2}[\d.]+ (B|KiB|MiB)\/s {2}ratio [\d.]+x {2}pending [\d.]+ [KM]?i?B$/;
    expect(lines.filter((f) => /stop-and-copy/.test(f)).at(-1)).toMatch(full);
    expect(out).toMatch(/\x1b\[1m/); // colour on a terminal
    // The line never reaches the report: the report begins right after an erase, on its own line.
    const last = frames.at(-1)!.replace(/\x1b\[[0-9;]*m/g, "");
    expect(last).toMatch(/^migration sim source/);
    expect(last).toMatch(/verified: .*\r?\n$/);
    expect(last).not.toMatch(/\r(?!\n)/); // no stray carriage returns: nothing redrawn over the report
  });

  it("NO_COLOR: no colour sequences; --quiet: no progress at all", async () => {
    const plain = await onTerminal(["demo", "--state-size", "2MiB"], { NO_COLOR: "1" });
    expect(plain.code, plain.out).toBe(0);
    expect(plain.out).toContain("\r\x1b[K");
    expect(plain.out).not.toMatch(/\x1b\[[0-9;]*m/);
    const quiet = await onTerminal(["demo", "--state-size", "2MiB", "--quiet"], {});
    expect(quiet.code, quiet.out).toBe(0);
    expect(quiet.out).not.toContain("\x1b[");
    expect(quiet.out.trim()).toBe("");
  });
});
