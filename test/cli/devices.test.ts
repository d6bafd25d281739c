// Several devices migrating together through the CLI, as separate processes:
// `sim serve` devices of both generations with different sizes, transaction
// sizes, dirty rates and vendor variants; `save` and `restore` with --device
// repeated, over a stream file and over TCP (restore --listen / save --to);
// `inspect` lists every device; the report gives each device's downtime and
// the set's; faults armed in a source and in a destination process fail the
// whole migration, naming the device, with every source RUNNING and no
// destination RUNNING; `demo --devices N`; and a single-valued option given
// twice is an error in every command.
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cliSuite, digest, listeningPort, run, type Sim, sim, start } from "./helpers.js";

const suite = cliSuite();
const sims: Sim[] = [];
let n = 0;

afterAll(async () => {
  await Promise.all(sims.map((s) => s.stop()));
});

/** One device of the set: how its source and destination are served, and how a spec declares it. */
interface Kind {
  src: string[];
  dst: string[];
  spec?: string;
}

/** v1 and v2 mixed; sizes, transaction sizes, dirty rates and vendor variants differ. */
const SET: Kind[] = [
  {
    src: ["--state-size", "3MiB", "--transaction-size", "256KiB", "--dirty-rate", "8", "--seed", "11"],
    dst: ["--state-size", "3MiB", "--transaction-size", "256KiB", "--empty"],
  },
  {
    src: ["--protocol", "v2", "--state-size", "2MiB", "--dirty-rate", "64", "--seed", "12", "--variant", "restarts"],
    dst: ["--protocol", "v2", "--state-size", "2MiB", "--empty", "--variant", "restarts"],
    spec: ",stopcopy=restarts",
  },
  {
    src: [
      "--state-size",
      "1MiB",
      "--transaction-size",
      "16KiB-96KiB",
      "--dirty-rate",
      "2",
      "--seed",
      "13",
      "--variant",
      "mlx5",
    ],
    dst: ["--state-size", "1MiB", "--transaction-size", "16KiB-96KiB", "--empty", "--variant", "mlx5"],
  },
];

/** Serves `kinds`' sources and destinations (extra flags per side), returns both lists and their --device arguments. */
async function serveSet(kinds: Kind[], extra: { src?: (i: number) => string[]; dst?: (i: number) => string[] } = {}) {
  const id = n++;
  const [src, dst] = await Promise.all([
    Promise.all(kinds.map((k, i) => sim(suite.dir(), `s${id}-${i}`, [...k.src, ...(extra.src?.(i) ?? [])]))),
    Promise.all(kinds.map((k, i) => sim(suite.dir(), `d${id}-${i}`, [...k.dst, ...(extra.dst?.(i) ?? [])]))),
  ]);
  sims.push(...src, ...dst);
  const args = (list: Sim[]) =>
    list.flatMap((s, i) => ["--device", `vfio-user:${s.socket}${kinds[i].spec ?? ""},timeout=10000`]);
  return { src, dst, srcArgs: args(src), dstArgs: args(dst) };
}

interface DeviceJson {
  id: number;
  name: string;
  protocol: string;
  downtimeMs: number;
  stoppedAfterMs: number;
  deviceStopMs: number;
  restored?: { started: boolean; transactions: number; bytes: number };
}

/** The report's per-device and set downtimes hold together. */
function checkDowntimes(rep: { downtimeMs: number; devices: DeviceJson[] }, count: number): void {
  expect(rep.devices).toHaveLength(count);
  for (const d of rep.devices) {
    expect(d.downtimeMs).toBeGreaterThan(0);
    expect(d.downtimeMs).toBeLessThanOrEqual(rep.downtimeMs + 1e-6);
    expect(d.deviceStopMs).toBeLessThanOrEqual(d.downtimeMs);
    expect(d.stoppedAfterMs).toBeGreaterThanOrEqual(0);
  }
  expect(Math.min(...rep.devices.map((d) => d.stoppedAfterMs))).toBe(0); // the set's window opens at the first device stopped
}

/** Every destination RUNNING with its source's state. (A v1 source `sim serve` puts back in RUNNING once its client left; its state stays.) */
async function expectSameStates(src: Sim[], dst: Sim[]): Promise<void> {
  for (const [i, s] of src.entries()) {
    const [a, b] = [await digest(s), await digest(dst[i])];
    expect(b.digest, `device ${i}`).toBe(a.digest);
    expect(b.deviceState).toBe("RUNNING");
  }
}

describe("save and restore several devices together (separate processes)", () => {
  it("over a stream file: every pair restores exactly; inspect lists each device; the report has each device's downtime and the set's", async () => {
    const { src, dst, srcArgs, dstArgs } = await serveSet(SET);
    const file = join(suite.dir(), "vm.mig");
    const s = await run([
      "save",
      ...srcArgs,
      "--name",
      "gpu",
      "--name",
      "vgpu",
      "--name",
      "nic",
      "-o",
      file,
      "--codec",
      "lz4",
      "--precopy-threshold",
      "512KiB",
      "--json",
    ]);
    expect(s.code, s.stderr).toBe(0);
    const rep = JSON.parse(s.stdout);
    expect(rep.ok).toBe(true);
    expect(rep.downtimeEnd).toBe("stream written");
    checkDowntimes(rep, 3);
    expect(rep.devices.map((d: DeviceJson) => [d.name, d.protocol])).toEqual([
      ["gpu", "v1"],
      ["vgpu", "v2"],
      ["nic", "v1"],
    ]);

    const text = await run(["inspect", file]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^device 0 +"gpu", VFIO migration v1/m);
    expect(text.stdout).toMatch(/^device 1 +"vgpu", VFIO migration v2 \(restarts at STOP_COPY/m);
    expect(text.stdout).toMatch(/^device 2 +"nic", VFIO migration v1/m);
    const js = JSON.parse((await run(["inspect", file, "--json"])).stdout);
    expect(js.devices.map((d: { id: number; name: string }) => [d.id, d.name])).toEqual([
      [0, "gpu"],
      [1, "vgpu"],
      [2, "nic"],
    ]);

    const r = await run(["restore", ...dstArgs, file, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout);
    expect(got.devices.map((d: { name: string; started: boolean }) => [d.name, d.started])).toEqual([
      ["gpu", true],
      ["vgpu", true],
      ["nic", true],
    ]);
    await expectSameStates(src, dst);
  });

  it("the text report shows a row per device and the set's downtime", async () => {
    const { srcArgs } = await serveSet(SET.slice(0, 2));
    const r = await run(["save", ...srcArgs, "-o", join(suite.dir(), "two.mig")]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^migration 2 devices together → /m);
    expect(r.stderr).toMatch(/^ {2}0 vfio-user:.* +v1 +\d+ /m);
    expect(r.stderr).toMatch(/^ {2}1 vfio-user:.* +v2 +\d+ /m);
    expect(r.stderr).toMatch(
      /^downtime +[\d.]+ m?s for the set \(first device stopped → last device's stream written/m,
    );
  });

  it("over TCP (restore --listen, save --to): restored while it arrives; downtime to the last device RUNNING", async () => {
    const { src, dst, srcArgs, dstArgs } = await serveSet(SET);
    const p = start(["restore", ...dstArgs, "--listen", "tcp://127.0.0.1:0", "--json"]);
    const port = await listeningPort(p);
    const s = await run([
      "save",
      ...srcArgs,
      "--to",
      `tcp://127.0.0.1:${port}`,
      "--json",
      "--codec",
      "zstd",
      "--precopy-time",
      "3000",
    ]);
    const r = await p.done;
    expect(s.code, s.stderr).toBe(0);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(s.stdout);
    expect(rep.downtimeEnd).toBe("destination RUNNING");
    checkDowntimes(rep, 3);
    expect(rep.devices.every((d: DeviceJson) => d.restored?.started === true)).toBe(true);
    const restored = JSON.parse(r.stdout);
    expect(restored.devices.map((d: { transactions: number }) => d.transactions)).toEqual(
      rep.devices.map((d: DeviceJson) => d.restored!.transactions),
    );
    await expectSameStates(src, dst);
  });

  it("a stream of three devices into two: refused before any device is touched", async () => {
    const { srcArgs, dst, dstArgs } = await serveSet(SET);
    const file = join(suite.dir(), "three.mig");
    expect((await run(["save", ...srcArgs, "-o", file])).code).toBe(0);
    const before = await Promise.all(dst.map(digest));
    const r = await run(["restore", ...dstArgs.slice(0, 4), file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/USAGE.*the stream holds 3 devices .* but 2 were given.*no device touched/);
    expect(await Promise.all(dst.map(digest))).toEqual(before);
  });
});

describe("one device of a multi-device stream is restored only when asked for", () => {
  it("restore with one --device refuses a stream of several (nothing touched); --stream-device picks one", async () => {
    const { src, srcArgs, dst } = await serveSet(SET);
    const file = join(suite.dir(), `one${n++}.mig`);
    expect((await run(["save", ...srcArgs, "-o", file])).code).toBe(0);
    const before = await digest(dst[0]);
    const r = await run(["restore", "--device", `vfio-user:${dst[0].socket}`, file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /the stream holds 3 devices \(0 "vfio-user:.*", 1 ".*", 2 ".*"\): give --device once per device.*or --stream-device ID.*not touched/,
    );
    expect(await digest(dst[0])).toEqual(before);
    const one = await run(["restore", "--device", `vfio-user:${dst[0].socket}`, "--stream-device", "0", file]);
    expect(one.code, one.stderr).toBe(0);
    expect((await digest(dst[0])).digest).toBe((await digest(src[0])).digest);
  });

  it("save --to several devices into a one-device destination: refused there, every source back in RUNNING", async () => {
    const STILL0 = SET.map((k) => ({ ...k, src: k.src.map((a, i) => (k.src[i - 1] === "--dirty-rate" ? "0" : a)) }));
    const { src, srcArgs, dst } = await serveSet(STILL0);
    const before = await Promise.all(src.map(digest));
    const p = start(["restore", "--device", `vfio-user:${dst[0].socket}`, "--listen", "tcp://127.0.0.1:0"]);
    const port = await listeningPort(p);
    const s = await run(["save", ...srcArgs, "--to", `tcp://127.0.0.1:${port}`]);
    expect(s.code).toBe(1);
    // The destination's refusal is the error; then what became of each source device.
    expect(s.stderr).toMatch(
      /^migstream: USAGE.*: the destination failed: "restore: the stream holds 3 devices .*"; device 0 \(vfio-user:.*?\): .*; device 1 \(vfio-user:.*?\): .*; device 2 \(vfio-user:.*?\): /m,
    );
    p.child.kill("SIGTERM"); // it keeps listening: nothing reached its device
    const r = await p.done;
    expect(r.stderr).toMatch(/the device was not touched; connection from \S+ dropped; still listening/);
    const after = await Promise.all(src.map(digest));
    for (const [i, a] of after.entries()) {
      expect(a.deviceState).toBe("RUNNING");
      expect(a.digest).toBe(before[i].digest);
    }
  });
});

describe("a fault in one device's process fails the whole migration", () => {
  /** Sources that do not run on during pre-copy: a failed save must leave each with exactly its state. */
  const STILL: Kind[] = SET.map((k) => ({
    ...k,
    src: k.src.map((a, i) => (k.src[i - 1] === "--dirty-rate" ? "0" : a)),
  }));

  for (const [device, fault] of [
    [1, "read-data,nth=3,errno=EIO"],
    [2, "read-data_size,nth=5,errno=EBUSY"],
  ] as const) {
    it(`source device ${device} (${fault}): every source back in RUNNING with its state; the error names the device`, async () => {
      const { src, srcArgs } = await serveSet(STILL, { src: (i) => (i === device ? ["--fault", fault] : []) });
      const before = await Promise.all(src.map(digest));
      const r = await run(["save", ...srcArgs, "-o", join(suite.dir(), `f${n++}.mig`)]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(new RegExp(`^migstream: DEVICE .*: device ${device} \\(vfio-user:`, "m"));
      for (const i of [0, 1, 2])
        if (i !== device)
          expect(r.stderr).toMatch(new RegExp(`device ${i} \\(vfio-user:[^)]*\\): .*(back in RUNNING|cancelled)`));
      const after = await Promise.all(src.map(digest));
      after.forEach((a, i) => {
        expect(a.deviceState, `source ${i}`).toBe("RUNNING");
        expect(a.digest, `source ${i}`).toBe(before[i].digest);
      });
    });
  }

  it("destination device 1 (write-data EIO) over a file: no destination RUNNING; the error names it", async () => {
    const { src, srcArgs, dst, dstArgs } = await serveSet(SET, {
      dst: (i) => (i === 1 ? ["--fault", "write-data,nth=2,errno=EIO"] : []),
    });
    const file = join(suite.dir(), `g${n++}.mig`);
    expect((await run(["save", ...srcArgs, "-o", file])).code).toBe(0);
    const r = await run(["restore", ...dstArgs, file]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /^migstream: DEVICE .*: device 1 \(vfio-user:.*?\): resume: write data: .*; the other devices: device 0 .*; device 2 /m,
    );
    for (const d of await Promise.all(dst.map(digest))) expect(d.deviceState).not.toBe("RUNNING");
    void src;
  });

  it("destination device 2 fails while restoring over TCP: the source hears it and puts every device back in RUNNING", async () => {
    const { src, srcArgs, dst, dstArgs } = await serveSet(STILL, {
      dst: (i) => (i === 2 ? ["--fault", "write-data_size,nth=4,errno=EIO"] : []),
    });
    const before = await Promise.all(src.map(digest));
    // --attempts 1: the listener ends with this failure (by default it would keep listening for the next source).
    const p = start(["restore", ...dstArgs, "--listen", "tcp://127.0.0.1:0", "--attempts", "1"]);
    const port = await listeningPort(p);
    const s = await run(["save", ...srcArgs, "--to", `tcp://127.0.0.1:${port}`]);
    const r = await p.done;
    expect(r.code).toBe(3);
    expect(s.code).not.toBe(0);
    expect(s.stderr).toMatch(/the destination failed: .*device 2 \(vfio-user:/);
    expect(s.stderr).toMatch(
      /"; device 0 \(vfio-user:[^)]*\): [^;]*(; )?[^;]*back in RUNNING; device 1 \(vfio-user:[^)]*\): [^;]*(; )?[^;]*back in RUNNING; device 2 \(vfio-user:[^)]*\): [^;]*(; )?[^;]*back in RUNNING/,
    );
    const after = await Promise.all(src.map(digest));
    after.forEach((a, i) => {
      expect(a.deviceState).toBe("RUNNING");
      expect(a.digest).toBe(before[i].digest);
    });
    for (const d of await Promise.all(dst.map(digest))) expect(d.deviceState).not.toBe("RUNNING");
  });
});

describe("migstream demo --devices N", () => {
  it("migrates three devices, v1 and v2 mixed, together and verifies each", async () => {
    const r = await run(["demo", "--devices", "3", "--protocol", "mixed", "--state-size", "4MiB", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.ok).toBe(true);
    expect(rep.devices.map((d: { protocol: string }) => d.protocol)).toEqual(["v1", "v2", "v1"]);
    expect(rep.devices.every((d: { digests: { match: boolean } }) => d.digests.match)).toBe(true);
    checkDowntimes(rep, 3);
  });

  it("--protocol mixed needs two devices or more", async () => {
    const r = await run(["demo", "--protocol", "mixed"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--protocol mixed needs --devices 2 or more/);
  });
});

describe("a single-valued option given twice is an error, never silently dropped", () => {
  const CASES: [string, string[], RegExp][] = [
    ["save -o", ["save", "--device", "sim:", "-o", "a.mig", "-o", "b.mig"], /--output \(-o\) given twice/],
    [
      "save --to",
      ["save", "--device", "sim:", "--to", "tcp://127.0.0.1:1", "--to", "tcp://127.0.0.1:2"],
      /--to given twice/,
    ],
    [
      "save --codec",
      ["save", "--device", "sim:", "-o", "a.mig", "--codec", "lz4", "--codec=zstd"],
      /--codec given twice/,
    ],
    [
      "restore --listen",
      ["restore", "--device", "sim:", "--listen", "tcp://127.0.0.1:0", "--listen", "tcp://127.0.0.1:0"],
      /--listen given twice/,
    ],
    [
      "restore --key-file",
      ["restore", "--device", "sim:", "x.mig", "--key-file", "a", "--key-file", "b"],
      /--key-file given twice/,
    ],
    ["inspect --key-file", ["inspect", "x.mig", "--key-file", "a", "--key-file", "a"], /--key-file given twice/],
    ["verify --json", ["verify", "x.mig", "--json", "--json"], /--json given twice/],
    ["demo --seed", ["demo", "--seed", "1", "--seed", "2"], /--seed given twice/],
    ["encode --codec", ["encode", "x", "-o", "y", "--codec", "raw", "--codec", "lz4"], /--codec given twice/],
    ["sim serve --socket", ["sim", "serve", "--socket", "a.sock", "--socket", "b.sock"], /--socket given twice/],
    [
      "sim digest --timeout",
      ["sim", "digest", "--socket", "a.sock", "--timeout", "1", "--timeout", "2"],
      /--timeout given twice/,
    ],
    ["kernels --json", ["kernels", "--json", "--json"], /--json given twice/],
    [
      "restore --stream-device with several devices",
      ["restore", "--device", "sim:", "--device", "sim:", "x.mig", "--stream-device", "1"],
      /--stream-device picks one device for one --device/,
    ],
  ];
  for (const [name, args, re] of CASES) {
    it(name, async () => {
      const r = await run(args);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(re);
      expect(r.stderr).toMatch(/^migstream: USAGE/);
    });
  }

  it("options that repeat still do (sim serve --variant, --fault; save --device)", async () => {
    const s = await sim(suite.dir(), `rep${n++}`, [
      "--variant",
      "mlx5",
      "--variant",
      "reserved-bits",
      "--fault",
      "read-data,nth=1000",
      "--fault",
      "read-data_size,nth=1000",
    ]);
    sims.push(s);
    expect(s.initialDigest).toMatch(/^[0-9a-f]{16}$/);
  });
});
