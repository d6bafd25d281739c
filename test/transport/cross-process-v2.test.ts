// vfio-user v2 between processes: `migstream sim serve --protocol v2` source
// and destination processes for every simulated v2 behaviour, saved and
// restored with the CLI through a stream file (inspect names the protocol),
// and faults armed in the source and in the destination process at each
// step: the source ends RUNNING with its state, the destination not RUNNING.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli, ensureCli, type ServerProc, startServer } from "./sim-process.js";

let dir: string;
const procs: ServerProc[] = [];
beforeAll(() => {
  ensureCli();
  dir = mkdtempSync(join(tmpdir(), "migstream-v2-xproc-"));
});
afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
async function serve(args: string[]): Promise<ServerProc> {
  const p = await startServer(join(dir, `s${n++}.sock`), ["--protocol", "v2", ...args]);
  procs.push(p);
  return p;
}

async function digest(p: ServerProc): Promise<{ digest: string; deviceState: string; protocol: string }> {
  const r = await cli(["sim", "digest", "--socket", p.path, "--json"]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

/** Each variant with the device spec options a user declares for it. */
const VARIANTS: Array<[string, string]> = [
  ["spec", ""],
  ["no-precopy", ""],
  ["p2p", ""],
  ["restarts", ",stopcopy=restarts"],
  ["fixed-access", ",access=64"],
  ["write-einval", ",write-errors=applied"],
  ["gpio", ",access=64,write-errors=applied"],
  ["short-reads", ""],
  ["enomsg", ""],
];

describe.concurrent("save from a v2 server process, restore into another (CLI, stream file)", () => {
  for (const [variant, declare] of VARIANTS) {
    it(variant, async () => {
      const size = variant === "fixed-access" || variant === "gpio" ? "16KiB" : "2MiB";
      const src = await serve(["--variant", variant, "--state-size", size, "--seed", "7", "--dirty-rate", "64"]);
      const dst = await serve(["--variant", variant, "--state-size", size, "--empty"]);
      const file = join(dir, `${variant}.mig`);
      const saved = await cli(["save", "--device", `vfio-user:${src.path}${declare}`, "-o", file, "--json"]);
      expect(saved.code, saved.stderr).toBe(0);
      const inspected = await cli(["inspect", file]);
      expect(inspected.stdout).toMatch(
        variant === "restarts" ? /VFIO migration v2 \(restarts at STOP_COPY/ : /VFIO migration v2,/,
      );
      const restored = await cli(["restore", "--device", `vfio-user:${dst.path}${declare}`, file, "--json"]);
      expect(restored.code, restored.stderr).toBe(0);
      const [s, d] = [await digest(src), await digest(dst)];
      expect(d.digest).toBe(s.digest);
      expect(s.deviceState).toBe("STOP");
      expect(d.deviceState).toBe("RUNNING");
      expect(d.protocol).toBe("v2");
    });
  }

  it("a v1 stream is refused by a v2 device, and the reverse, before either is touched", async () => {
    const v1src = await startServer(join(dir, `v1-${n++}.sock`), ["--state-size", "256KiB"]);
    procs.push(v1src);
    const v2dst = await serve(["--state-size", "256KiB", "--empty"]);
    const v1file = join(dir, "v1.mig");
    expect((await cli(["save", "--device", `vfio-user:${v1src.path}`, "-o", v1file])).code).toBe(0);
    const before = await digest(v2dst);
    const r = await cli(["restore", "--device", `vfio-user:${v2dst.path}`, v1file]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/holds a v1 \(migration region\) device's state; this device speaks v2 .*not touched/);
    expect(await digest(v2dst)).toEqual(before);
    const v2src = await serve(["--state-size", "256KiB"]);
    const v2file = join(dir, "v2.mig");
    expect((await cli(["save", "--device", `vfio-user:${v2src.path}`, "-o", v2file])).code).toBe(0);
    const v1dst = await startServer(join(dir, `v1-${n++}.sock`), ["--state-size", "256KiB", "--empty"]);
    procs.push(v1dst);
    const back = await cli(["restore", "--device", `vfio-user:${v1dst.path}`, v2file]);
    expect(back.stderr).toMatch(/holds a v2 \(device feature \+ data stream\) device's state; this device speaks v1/);
  });
});

describe.concurrent("faults in the v2 server processes", () => {
  // nth counts every client: `sim digest` makes one GET MIGRATION (detection) and one GET state, the save's detection one more.
  const SOURCE_FAULTS = [
    "get-migration,nth=3,errno=ENOTTY",
    "get-state,nth=2,errno=EIO",
    "set-state,to=PRE_COPY,errno=EBUSY",
    "set-state,from=PRE_COPY,to=STOP_COPY,errno=EIO",
    "read-data,nth=3,errno=EIO",
    "set-state,from=STOP_COPY,to=STOP,errno=EPERM",
  ];
  for (const fault of SOURCE_FAULTS) {
    it(`source: ${fault} — the save fails, the source ends RUNNING with its state`, async () => {
      const src = await serve(["--state-size", "1MiB", "--seed", "3", "--max-transfer", "64KiB", "--fault", fault]);
      const before = await digest(src);
      const r = await cli(["save", "--device", `vfio-user:${src.path},timeout=5000`, "-o", join(dir, `f${n++}.mig`)]);
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      const after = await digest(src);
      expect(after.deviceState).toBe("RUNNING");
      expect(after.digest).toBe(before.digest);
    });
  }

  const DEST_FAULTS = [
    "set-state,to=RESUMING,errno=EBUSY",
    "write-data,nth=2,errno=EIO",
    "set-state,from=RESUMING,to=STOP,errno=EINVAL",
    "get-migration,nth=3,errno=EIO",
  ];
  for (const fault of DEST_FAULTS) {
    it(`destination: ${fault} — the restore fails, the destination is not RUNNING on partial data`, async () => {
      const src = await serve(["--state-size", "1MiB", "--seed", "4"]);
      const file = join(dir, `d${n++}.mig`);
      expect((await cli(["save", "--device", `vfio-user:${src.path}`, "-o", file])).code).toBe(0);
      const dst = await serve(["--state-size", "1MiB", "--empty", "--max-transfer", "64KiB", "--fault", fault]);
      const empty = await digest(dst);
      const r = await cli(["restore", "--device", `vfio-user:${dst.path},timeout=5000`, file]);
      expect(r.code).not.toBe(0);
      const after = await digest(dst);
      if (fault.startsWith("get-migration"))
        expect(after).toEqual(empty); // refused before any SET
      else {
        expect(after.deviceState).not.toBe("RUNNING");
        expect(after.digest).toBe(empty.digest); // reset: none of the partial state
      }
    });
  }
});
