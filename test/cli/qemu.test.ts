// Real QEMU as the producer and consumer of its own live-migration stream,
// with `migstream encode` / `migstream decode` as its exec: filters on both
// ends — the commands the README's QEMU section shows. The source guest (TCG,
// no disk) holds a known file in its RAM; for each case: QEMU reports the
// migration completed, the source ends in `postmigrate` and the destination
// in `paused`, the bytes that reached the destination QEMU are exactly those
// the source QEMU produced (tee at both ends), and the destination's guest RAM
// holds the file. A byte flipped on the TCP hop must stop the destination
// QEMU, never let it run on the bad data — and, the control, the same flip
// through a plain pipe reaches the guest's RAM unnoticed. Needs
// qemu-system-x86_64 (Debian's qemu-system-x86, which .ci/run installs);
// skipped elsewhere with a message, but a failure on CI.
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// @ts-expect-error plain JS module shared with scripts/make-vectors.mjs
import { noise } from "../vectors/cases.mjs";
import { CLI, ensureCli, proxy, releaseCli, tempDir } from "./helpers.js";
// @ts-expect-error plain JS module shared with bench/qemu.mjs
import { LOAD_ADDR, migrate, QEMU, qemuVersion, runThenStop, settle, sh, startQemu } from "./qemu-driver.mjs";

const QEMU_VERSION: string | null = qemuVersion();
/** Guest RAM, MiB, and the file placed in it. */
const MEM = 64;
const LOAD_SIZE = 4 << 20;

if (!QEMU_VERSION) {
  const why = `test/cli/qemu.test.ts: ${QEMU} cannot be run (Debian: apt-get install qemu-system-x86)`;
  if (process.env.CI) throw new Error(`${why}; .ci/run installs it, so on CI this is a failure`);
  console.warn(`${why}: the QEMU exec: tests are SKIPPED`);
}

let tmp: ReturnType<typeof tempDir>;
let blob: string;
let key: string;
const node = process.execPath;
const migstream = (args: string) => `${sh(node)} ${sh(CLI)} ${args}`;

beforeAll(() => {
  if (!QEMU_VERSION) return;
  ensureCli();
  tmp = tempDir();
  blob = join(tmp.dir, "guest-data.bin");
  key = join(tmp.dir, "mig.key");
  writeFileSync(key, `${"5c".repeat(32)}\n`);
  // Half text (LZ4 finds it), half noise (it does not).
  const data = Buffer.alloc(LOAD_SIZE);
  data.fill("guest page cache: a live migration carries this text ", 0, LOAD_SIZE / 2);
  data.set(noise(LOAD_SIZE / 2, 0x12345678), LOAD_SIZE / 2);
  writeFileSync(blob, data);
});

afterAll(() => {
  if (!QEMU_VERSION) return;
  tmp?.cleanup();
  releaseCli();
});

interface Ends {
  /** The source's `migrate` URI (an exec: command line). */
  source: string;
  /** The destination's -incoming URI. */
  incoming: string;
  /** Called once the destination is up (e.g. to read the port it listens on) before the source migrates. */
  between?: (dst: Awaited<ReturnType<typeof startQemu>>) => Promise<void>;
}

/** One migration from a fresh source to a fresh destination; both QEMUs end before it returns. */
async function migration(name: string, ends: (f: (s: string) => string) => Ends) {
  const f = (s: string) => join(tmp.dir, `${name}-${s}`);
  const e = ends(f);
  const dst = await startQemu({ dir: tmp.dir, name: `${name}-dst`, mem: MEM, incoming: e.incoming });
  const src = await startQemu({ dir: tmp.dir, name: `${name}-src`, mem: MEM, load: blob });
  try {
    await e.between?.(dst);
    await runThenStop(src);
    const t0 = performance.now();
    const { info } = await migrate(src, e.source);
    const end = await settle(dst);
    const ms = performance.now() - t0;
    const after = {
      info,
      ms,
      source: await src.status(),
      destination: end.status as string,
      destinationExit: end.exit as { code: number | null } | undefined,
      incoming: end.status === "exited" ? null : ((await dst.qmp.cmd("query-migrate")) as { status: string }),
      // The guest RAM where the source held the file, as the destination has it now.
      memory: end.status === "exited" ? null : await dump(dst, f("memory.bin")),
    };
    await Promise.all([src.stop(), dst.stop()]);
    // What QEMU and its exec: children printed, once both ended.
    return { ...after, sourceOutput: src.stderr(), destinationOutput: dst.stderr() };
  } finally {
    await Promise.all([src.stop(), dst.stop()]);
  }

  async function dump(vm: Awaited<ReturnType<typeof startQemu>>, path: string): Promise<Buffer> {
    await vm.qmp.cmd("pmemsave", { val: LOAD_ADDR, size: LOAD_SIZE, filename: path });
    return readFileSync(path);
  }
}

const read = (p: string) => readFileSync(p);

/** What every successful case checks: QEMU's view, byte-exactness at both ends, the guest's RAM. */
function expectMigrated(r: Awaited<ReturnType<typeof migration>>, srcRaw: string, dstRaw: string) {
  expect(r.info.status).toBe("completed");
  expect(r.source).toBe("postmigrate");
  expect(r.destination).toBe("paused");
  expect(r.incoming?.status).toBe("completed");
  const a = read(srcRaw);
  const b = read(dstRaw);
  expect(a.length).toBeGreaterThan(LOAD_SIZE); // the file's pages and the rest of the machine
  expect(b.length).toBe(a.length);
  expect(b.equals(a)).toBe(true);
  expect(r.memory!.equals(read(blob))).toBe(true);
}

/** `migstream inspect --json` of a captured stream file. */
function inspect(path: string, extra: string[] = []) {
  return JSON.parse(execFileSync(node, [CLI, "inspect", path, "--json", ...extra], { encoding: "utf8" }));
}

describe.skipIf(!QEMU_VERSION)(`QEMU exec: migration through migstream (${QEMU_VERSION ?? "no QEMU"})`, () => {
  /** Both ends joined by a FIFO, each end's QEMU stream and the wire teed to files; `key`: --key-file on both. */
  async function throughPipe(name: string, key: string[]) {
    let files!: (s: string) => string;
    const k = key.map(sh).join(" ");
    const r = await migration(name, (f) => {
      files = f;
      spawnSync("mkfifo", [f("fifo")]);
      return {
        source: `exec:tee ${sh(f("src.raw"))} | ${migstream(`encode - -o - --codec lz4 ${k} -q`)} | tee ${sh(f("wire.mig"))} > ${sh(f("fifo"))}`,
        incoming: `exec:${migstream(`decode - -o - ${k} -q`)} < ${sh(f("fifo"))} | tee ${sh(f("dst.raw"))}`,
      };
    });
    expectMigrated(r, files("src.raw"), files("dst.raw"));
    return files;
  }

  it("through a pipe, LZ4: byte-exact at both ends, source postmigrate, destination paused with the guest's RAM", async () => {
    const files = await throughPipe("pipe", []);
    const wire = inspect(files("wire.mig"));
    expect(wire.complete).toBe(true);
    expect(wire.header.mac).toBe(false);
    expect(wire.rawBytes).toBe(read(files("src.raw")).length);
    expect(wire.codecs.lz4.chunks).toBeGreaterThan(0); // the text half went as LZ4
    expect(wire.wireBytes).toBeLessThan(wire.rawBytes);
  });

  it("with a key on both ends: the same, and the stream between them is authenticated", async () => {
    const files = await throughPipe("keyed", ["--key-file", key]);
    expect(inspect(files("wire.mig"), ["--key-file", key]).header.mac).toBe(true);
    // Without the key the captured stream does not decode.
    const noKey = spawnSync(node, [CLI, "decode", files("wire.mig"), "-o", "/dev/null"], { encoding: "utf8" });
    expect(noKey.status).toBe(2);
    expect(noKey.stderr).toMatch(/^migstream: MAC /m);
  });

  it("across TCP (encode --to, decode --listen, keyed): byte-exact; the source's migstream got the destination's confirmation", async () => {
    let files!: (s: string) => string;
    let port = 0;
    const r = await migration("tcp", (f) => {
      files = f;
      return {
        // The destination listens on a free port and prints it; the source connects to it.
        incoming: `exec:${migstream(`decode --listen tcp://127.0.0.1:0 --accept-timeout 30000 --key-file ${sh(key)} -q -o -`)} | tee ${sh(f("dst.raw"))}`,
        get source() {
          return `exec:tee ${sh(f("src.raw"))} | ${migstream(`encode - --to tcp://127.0.0.1:${port} --codec lz4 --key-file ${sh(key)} -q`)}; echo $? > ${sh(f("encode.status"))}`;
        },
        between: async (dst) => {
          port = Number((await dst.waitOutput(/decode: listening on tcp:\/\/127\.0\.0\.1:(\d+)/))[1]);
        },
      };
    });
    expectMigrated(r, files("src.raw"), files("dst.raw"));
    expect(read(files("encode.status")).toString().trim()).toBe("0");
  });

  it("a byte flipped on the TCP hop: decode refuses it, the destination QEMU fails its incoming migration and never runs; it got only verified bytes", async () => {
    let files!: (s: string) => string;
    let px: Awaited<ReturnType<typeof proxy>> | undefined;
    const flipAt = 1_500_000; // a wire offset inside the loaded file's noise half (its text half compresses to little)
    const r = await migration("flip", (f) => {
      files = f;
      return {
        incoming: `exec:${migstream("decode --listen tcp://127.0.0.1:0 --accept-timeout 30000 -q -o -")} | tee ${sh(f("dst.raw"))}`,
        get source() {
          return `exec:tee ${sh(f("src.raw"))} | ${migstream(`encode - --to tcp://127.0.0.1:${px!.port} --codec lz4 -q`)}; echo $? > ${sh(f("encode.status"))}`;
        },
        between: async (dst) => {
          const port = Number((await dst.waitOutput(/decode: listening on tcp:\/\/127\.0\.0\.1:(\d+)/))[1]);
          px = await proxy(port, { flipAt });
        },
      };
    }).finally(() => px?.close());
    // The destination QEMU ended with a failed load; it was never paused or running on the stream.
    expect(r.destination).toBe("exited");
    expect(r.destinationExit?.code).not.toBe(0);
    expect(r.destinationOutput).toMatch(/^migstream: [A-Z_]+ at byte \d+ \(frame \d+/m);
    expect(r.destinationOutput).toMatch(/load of migration failed/);
    // What reached the destination QEMU is a prefix of the source's stream in whole verified transactions, short of the damage.
    const a = read(files("src.raw"));
    const b = read(files("dst.raw"));
    expect(b.length).toBeLessThan(a.length);
    expect(b.length % (1 << 20)).toBe(0);
    expect(b.equals(a.subarray(0, b.length))).toBe(true);
    // The source's migstream learned of the failure from the destination's answer and says so in the
    // source QEMU's log. (QEMU itself ignores an exec: command's exit status: its own query-migrate may
    // well say completed, if it had written everything before the answer came.)
    expect(read(files("encode.status")).toString().trim()).toBe("2");
    expect(r.sourceOutput).toMatch(/^migstream: [A-Z_]+ at byte \d+.*: the destination failed/m);
  });

  it("the control: the same kind of flip through a plain pipe lands silently in the destination's guest RAM", async () => {
    // QEMU's RAM pages carry no checksum: what the case above guards against is real. The filter finds
    // a run of the file's bytes in QEMU's stream (inside one page) and flips the byte after it.
    const at = (3 * LOAD_SIZE) / 4 + 100;
    const needle = read(blob)
      .subarray(at - 32, at)
      .toString("hex");
    const flip = `const parts = []; process.stdin.on("data", (b) => parts.push(b)).on("end", () => {
      const s = Buffer.concat(parts); const i = s.indexOf(Buffer.from("${needle}", "hex"));
      if (i < 0) process.exit(3); s[i + 32] ^= 1; process.stdout.write(s); })`;
    const r = await migration("control", (f) => {
      spawnSync("mkfifo", [f("fifo")]);
      return {
        source: `exec:${sh(node)} -e ${sh(flip)} > ${sh(f("fifo"))}`,
        incoming: `exec:cat < ${sh(f("fifo"))}`,
      };
    });
    expect(r.info.status).toBe("completed");
    expect(r.destination).toBe("paused");
    const want = read(blob);
    const differ = [...r.memory!.keys()].filter((i) => r.memory![i] !== want[i]);
    expect(differ).toEqual([at]);
  });
});
