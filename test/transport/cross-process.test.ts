// Save and restore across processes: two `migstream sim serve` processes
// (source and destination), the protocol driver saving from one over
// vfio-user into an in-memory item list and resuming into the other, digests
// compared with `migstream sim digest`. For each vendor variant, with pre-copy
// dirtying, with faults in the server at representative steps, and the
// server's clean shutdown on SIGTERM/SIGINT.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isMigstreamError, type MigstreamError } from "../../src/errors.js";
import type { ResumeItem } from "../../src/protocol/index.js";
import { SIM_VARIANT_NAMES } from "../../src/transport/sim/options.js";
import { connectVfioUser } from "../../src/transport/vfio-user/client.js";
import { tempSocket } from "./helpers.js";
import {
  CLI,
  cli,
  digestCli,
  digestOf,
  ensureCli,
  rejection,
  resumeOver,
  type ServerProc,
  saveOver,
  startServer,
} from "./sim-process.js";

/** Small states keep the suite fast; several transactions per save. */
const STATE = "192KiB";
const TXN = "16KiB";

const dir = tempSocket();
const servers: ServerProc[] = [];
let n = 0;

async function serve(args: string[]): Promise<ServerProc> {
  const s = await startServer(join(dir.dir, `s${n++}.sock`), args);
  servers.push(s);
  return s;
}

/** A source (seeded state) and an empty destination of the same size (TXN transactions unless a side names its own: an option given twice is an error). */
function pair(extra: string[] = [], src: string[] = [], dst: string[] = []): Promise<[ServerProc, ServerProc]> {
  const common = ["--state-size", STATE, ...extra];
  const txn = (side: string[]) => (side.includes("--transaction-size") ? [] : ["--transaction-size", TXN]);
  return Promise.all([
    serve([...common, ...txn(src), "--seed", "7", ...src]),
    serve([...common, ...txn(dst), "--empty", ...dst]),
  ]);
}

beforeAll(() => ensureCli());
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop("SIGKILL")));
  dir.cleanup();
});

/**
 * Per variant: extra flags for both servers, the source, the destination, and
 * save options. Some variants also carry a second feature (pre-copy dirtying,
 * split accesses, a transaction size range, another region index), which
 * keeps the number of server processes down.
 */
interface Case {
  both?: string[];
  src?: string[];
  dst?: string[];
  maxIterations?: number;
  /** Read digests with `migstream sim digest` (otherwise the same region, in-process). */
  cli?: boolean;
  /** The server behaves as the reference: it exits with its one client, printing the state and digest (no digest region). */
  reference?: boolean;
  dirty?: boolean;
}
const CASES: Record<string, Case> = {
  spec: { cli: true },
  "libvfio-user": { src: ["--dirty-rate", "3"], maxIterations: 3, dirty: true, reference: true },
  mlx5: { src: ["--dirty-rate", "2"], maxIterations: 2, dirty: true },
  "sticky-zero": { src: ["--dirty-rate", "2"], dirty: true },
  // Every access split at 4 KiB: the region accepts any split of the data section.
  packed: {
    both: ["--max-transfer", "4KiB", "--region-index", "12"],
    src: ["--transaction-size", "6KiB-20KiB"],
    dst: ["--transaction-size", "20KiB"],
  },
};

describe.concurrent("save from one server process, restore into another", () => {
  it.each(SIM_VARIANT_NAMES)("variant %s: destination digest equals source digest", async (variant) => {
    const c = CASES[variant] ?? {};
    const [src, dst] = await pair(["--variant", variant, ...(c.both ?? [])], c.src, c.dst);
    expect(src.initialDigest).not.toBe(dst.initialDigest);
    const { items, summary } = await saveOver(
      src.path,
      c.maxIterations === undefined ? {} : { policy: { maxIterations: c.maxIterations } },
    );
    expect(summary.transactions).toBeGreaterThan(3);
    expect(items.filter((i) => i.kind === "transaction")).toHaveLength(summary.transactions);
    const restored = await resumeOver(dst.path, items);
    expect(restored.transactions).toBe(summary.transactions);
    expect(restored.started).toBe(true);
    const read = c.reference
      ? (p: ServerProc) => p.exitReport()
      : c.cli
        ? (p: ServerProc) => digestCli(p.path)
        : (p: ServerProc) => digestOf(p.path);
    const [s, d] = await Promise.all([read(src), read(dst)]);
    expect(d.digest).toBe(s.digest);
    expect(d.deviceState).toMatch(/^RUNNING/);
    expect(s.deviceState).toMatch(/^RUNNING/); // the finished save's STOP ended when the client left
    if (c.dirty) {
      // The source changed during pre-copy; dirtied pages were sent again.
      expect(s.digest).not.toBe(src.initialDigest);
      expect(summary.bytes).toBeGreaterThan(192 << 10);
      if (variant !== "sticky-zero" && variant !== "libvfio-user") expect(summary.iterations).toBeGreaterThanOrEqual(2);
    } else expect(s.digest).toBe(src.initialDigest);
    if (c.both?.includes("--region-index")) {
      expect((d as { migrationRegion?: number }).migrationRegion).toBe(12);
      const sizes = new Set(items.flatMap((i) => (i.kind === "transaction" ? [i.data.length] : [])));
      expect(sizes.size).toBeGreaterThan(2);
    }
  });
});

/** Expectations on a failed save or resume. */
function expectFailure(e: unknown, errno: string, step: RegExp): MigstreamError {
  expect(isMigstreamError(e), String(e)).toBe(true);
  const err = e as MigstreamError;
  expect(err.code).toBe("DEVICE");
  expect(err.errno).toBe(errno);
  expect(err.step).toMatch(step);
  expect(err.message).toContain(errno);
  return err;
}

// The recovery tests run their devices with --on-disconnect stay: a device keeps the state its
// client left it in, as real hardware does, so the end states below are the driver's doing.
const STAY = ["--on-disconnect", "stay"];

describe.concurrent("a fault in the source server fails the save; the driver puts the source back in RUNNING", () => {
  const cases: Array<[fault: string, errno: string, step: RegExp, keepsState: boolean]> = [
    ["read-pending_bytes,nth=4", "EIO", /read pending_bytes/, true],
    ["read-data_offset,nth=2,errno=EBUSY", "EBUSY", /read data_offset/, true],
    ["read-data,nth=3", "EIO", /read data/, true],
    ["write-device_state,to=SAVING", "EIO", /stop-and-copy/, true],
    ["write-device_state,to=STOP,then=error,errno=ENOTTY", "ENOTTY", /STOP/, false],
  ];
  it.each(cases)("fault %s", async (fault, errno, step, keepsState) => {
    const src = await serve([
      "--state-size",
      STATE,
      "--transaction-size",
      TXN,
      "--seed",
      "5",
      "--fault",
      fault,
      ...STAY,
    ]);
    const err = expectFailure(await rejection(saveOver(src.path)), errno, step);
    expect(err.message).toMatch(keepsState ? /device back in RUNNING/ : /reset/i);
    const s = await digestOf(src.path);
    expect(s.deviceState).toMatch(/^RUNNING/);
    // A device that only failed an access keeps its state; one that entered ERROR was reset.
    if (keepsState) expect(s.digest).toBe(src.initialDigest);
    else expect(s.digest).not.toBe(src.initialDigest);
    // The source can be saved again (the fault fired once).
    const again = await saveOver(src.path);
    expect(again.summary.transactions).toBeGreaterThan(0);
  });
});

describe.concurrent("a fault in the destination server fails the restore; the driver resets and stops the destination", () => {
  let items: ResumeItem[] = [];
  let sourceDigest = "";
  beforeAll(async () => {
    const src = await serve(["--state-size", STATE, "--transaction-size", TXN, "--seed", "9"]);
    items = (await saveOver(src.path)).items;
    sourceDigest = (await digestOf(src.path)).digest;
  });
  const cases: Array<[fault: string, errno: string, step: RegExp]> = [
    ["write-data,nth=2,errno=ENOSPC", "ENOSPC", /resume: write data/],
    ["write-data_size,nth=4", "EIO", /resume: write data_size/],
    ["write-device_state,to=RESUMING", "EIO", /resume: enter RESUMING/],
    ["write-device_state,to=RUNNING,errno=EINVAL", "EINVAL", /resume: enter RUNNING/],
  ];
  it.each(cases)("fault %s", async (fault, errno, step) => {
    const dst = await serve(["--state-size", STATE, "--transaction-size", TXN, "--empty", "--fault", fault, ...STAY]);
    expectFailure(await rejection(resumeOver(dst.path, items)), errno, step);
    const d = await digestOf(dst.path);
    // None of the partial state runs: the device holds its empty reset state.
    expect(d.digest).not.toBe(sourceDigest);
    expect(d.digest).toBe(dst.initialDigest);
    expect(d.deviceState).toMatch(/^STOP/); // never RUNNING after a failed restore: the driver reset and stopped it
    // A second restore into the same device works.
    await resumeOver(dst.path, items);
    expect((await digestOf(dst.path)).digest).toBe(sourceDigest);
  });
});

describe("server process lifecycle", () => {
  it.each(["SIGTERM", "SIGINT", "SIGHUP"] as const)(
    "%s stops it cleanly (exit 0) and removes the socket file, even with a client connected",
    async (signal) => {
      const s = await serve(["--state-size", "64KiB"]);
      expect(existsSync(s.path)).toBe(true);
      const c = await connectVfioUser(s.path, { timeoutMs: 5000 });
      const ended = await s.stop(signal);
      expect(ended).toEqual({ code: 0, signal: null });
      expect(existsSync(s.path)).toBe(false);
      const e = await rejection(c.read(0, 4));
      expect(isMigstreamError(e, "TRANSPORT")).toBe(true);
      await c.close();
    },
  );

  it("--exit-with-stdin: it stops cleanly when its stdin ends (the parent holding the pipe is gone)", async () => {
    const path = join(dir.dir, "stdin.sock");
    const child = spawn(
      process.execPath,
      [CLI, "sim", "serve", "--socket", path, "--state-size", "64KiB", "--exit-with-stdin"],
      { stdio: ["pipe", "pipe", "pipe"] },
    );
    let out = "";
    child.stdout!.on("data", (c) => (out += c));
    while (!/listening on/.test(out)) await new Promise((r) => setTimeout(r, 20));
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    await new Promise((r) => setTimeout(r, 300));
    expect(child.exitCode).toBeNull(); // an open pipe with nothing in it keeps it serving
    child.stdin!.end();
    expect(await exited).toBe(0);
    expect(existsSync(path)).toBe(false);
  });

  it("--on-disconnect stay keeps a finished save's STOP; recover (the default) restarts it", async () => {
    for (const [policy, want] of [
      ["stay", "STOP"],
      ["recover", "RUNNING"],
    ] as const) {
      const s = await serve(["--state-size", "64KiB", "--on-disconnect", policy]);
      await saveOver(s.path, { precopy: false });
      expect((await digestOf(s.path)).deviceState).toBe(want);
    }
    const bad = await cli(["sim", "serve", "--socket", join(dir.dir, "z.sock"), "--on-disconnect", "maybe"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--on-disconnect 'maybe' is not one of recover, stay/);
  });

  it("serves one client at a time: a second waits for the first to leave, or is refused", async () => {
    const s = await serve(["--state-size", "64KiB"]);
    const first = await connectVfioUser(s.path, { timeoutMs: 5000 });
    try {
      const e = await rejection(connectVfioUser(s.path, { timeoutMs: 5000 }));
      expect(isMigstreamError(e, "TRANSPORT")).toBe(true);
      expect((e as Error).message).toMatch(/one client at a time/);
      expect((await first.read(0, 4)).length).toBe(4); // the first client is unharmed
      const second = connectVfioUser(s.path, { timeoutMs: 5000 });
      await new Promise((r) => setTimeout(r, 100));
      await first.close(); // within the wait: the second is served next
      await (await second).close();
    } finally {
      await first.close();
    }
    expect((await digestOf(s.path)).digest).toBe(s.initialDigest);
  });

  it("reports errors as one line with the documented exit codes", async () => {
    const missing = await cli(["sim", "digest", "--socket", join(dir.dir, "nobody.sock")]);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toMatch(/^migstream: TRANSPORT.*cannot connect/);
    expect(missing.stderr.trim().split("\n")).toHaveLength(1);
    const bad = await cli(["sim", "serve", "--socket", join(dir.dir, "x.sock"), "--fault", "write-data,then=error"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^migstream: USAGE: bad fault/);
    const huge = await cli(["sim", "serve", "--socket", join(dir.dir, "y.sock"), "--state-size", "8GiB"]);
    expect(huge.code).toBe(1);
    expect(huge.stderr).toMatch(/^migstream: USAGE: .*stateSize/);
    const help = await cli(["sim", "serve", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/example/);
  });
});
