// Streams on disk: save to a file then restore from it (separate processes,
// two `sim serve` devices), and encode / decode / verify / inspect on files
// and pipes.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { digest, ensureCli, releaseCli, run, type Sim, sim, tempDir } from "./helpers.js";

let tmp: ReturnType<typeof tempDir>;
let src: Sim;
let dst: Sim;
const file = (name: string) => join(tmp.dir, name);

/** Raw input for encode: zero pages, repeated text, random bytes. */
function sample(): Uint8Array {
  const b = new Uint8Array(3 * 1024 * 1024 + 12345);
  b.set(randomBytes(512 * 1024), 1024 * 1024);
  const text = new TextEncoder().encode("mov rax, [rbp-0x18]; call 0x401000; ");
  for (let at = 2 * 1024 * 1024; at + text.length < b.length; at += text.length) b.set(text, at);
  return b;
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return (
    Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0
  );
}

beforeAll(async () => {
  ensureCli();
  tmp = tempDir();
  const state = ["--state-size", "4MiB", "--transaction-size", "128KiB"];
  [src, dst] = await Promise.all([
    sim(tmp.dir, "src", [...state, "--seed", "3", "--dirty-rate", "4"]),
    sim(tmp.dir, "dst", [...state, "--empty"]),
  ]);
  writeFileSync(file("key"), randomBytes(32));
});

afterAll(async () => {
  await Promise.all([src?.stop(), dst?.stop()]);
  tmp?.cleanup();
  releaseCli();
});

describe("save to a file, then restore from it", () => {
  it("restores the source's state exactly; verify and inspect agree with the report", async () => {
    const s = await run([
      "save",
      "--device",
      `vfio-user:${src.socket}`,
      "-o",
      file("state.mig"),
      "--dedup",
      "--key-file",
      file("key"),
      "--json",
    ]);
    expect(s.code).toBe(0);
    const rep = JSON.parse(s.stdout);
    expect(rep.downtimeEnd).toBe("stream written");
    expect(rep.wireBytes).toBe(readFileSync(file("state.mig")).length);
    const srcState = await digest(src);

    const v = await run(["verify", file("state.mig"), "--key-file", file("key"), "--full", "--json"]);
    expect(v.code).toBe(0);
    const verified = JSON.parse(v.stdout);
    expect(verified).toMatchObject({
      ok: true,
      full: true,
      complete: true,
      rawBytes: rep.rawBytes,
      wireBytes: rep.wireBytes,
      transactions: rep.transactions,
    });

    const i = await run(["inspect", file("state.mig"), "--key-file", file("key"), "--json"]);
    expect(i.code).toBe(0);
    const st = JSON.parse(i.stdout);
    expect(st.header.mac).toBe(true);
    expect(st.devices).toHaveLength(1);
    expect(st.devices[0].name).toBe(`vfio-user:${src.socket}`);
    const phases = st.devices[0].phases.map((p: { phase: string }) => p.phase);
    expect(phases[0]).toBe("setup");
    expect(phases).toContain("precopy");
    expect(phases).toContain("stopcopy");
    let chunks = 0;
    for (const u of Object.values(st.codecs) as Array<{ chunks: number }>) chunks += u.chunks;
    expect(chunks).toBe(st.chunks);
    expect(st.qemuBytes).toBe(st.rawBytes + 24 * st.transactions);

    const r = await run([
      "restore",
      "--device",
      `vfio-user:${dst.socket}`,
      file("state.mig"),
      "--key-file",
      file("key"),
      "--json",
    ]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, started: true, bytes: rep.rawBytes });
    expect(await digest(dst)).toEqual({ ...srcState, deviceState: "RUNNING" });
  });

  it("--no-start does not start the device; a corrupt file is rejected and the device holds none of it", async () => {
    const s = await run(["save", "--device", `vfio-user:${src.socket}`, "-o", file("plain.mig"), "--no-precopy", "-q"]);
    expect(s.code).toBe(0);
    expect(s.stderr).toBe("");
    // --no-start: the restore holds the device in RESUMING while it is connected;
    // it reports started: false (the server resets a RESUMING device when the client leaves).
    const r = await run(["restore", "--device", `vfio-user:${dst.socket}`, file("plain.mig"), "--no-start", "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).started).toBe(false);

    const bytes = readFileSync(file("plain.mig"));
    bytes[Math.floor(bytes.length / 2)] ^= 0x40;
    writeFileSync(file("bad.mig"), bytes);
    const bad = await run(["restore", "--device", `vfio-user:${dst.socket}`, file("bad.mig")]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^migstream: (CHECKSUM|FORMAT|SEQUENCE) at byte \d+ \(frame \d+/m);
    const d = await digest(dst);
    expect(d.deviceState).toBe("STOP"); // never RUNNING after a failed restore
    expect(d.digest).toBe(dst.initialDigest); // reset: the empty state, none of the partial data
  });
});

describe("encode / decode / verify / inspect", () => {
  it("round-trips byte-exact across codecs, chunk and transaction sizes, dedup, threads and a key", async () => {
    const big = sample();
    const cases: Array<[Uint8Array, string[]]> = [
      [big, ["--codec", "raw"]],
      [big.subarray(2 * 1024 * 1024 - 150, 2 * 1024 * 1024 + 150), ["--codec", "lz4", "--transaction-size", "1"]],
      [big, ["--codec", "zstd", "--level", "3", "--chunk-size", "64KiB"]],
      [big, ["--codec", "auto", "--dedup", "--transaction-size", "333333", "--key-file", file("key")]],
      [big, ["--codec", "lz4", "--threads", "2"]],
      [new Uint8Array(0), []],
    ];
    for (const [raw, c] of cases) {
      writeFileSync(file("in.raw"), raw);
      const key = c.includes("--key-file") ? ["--key-file", file("key")] : [];
      const e = await run(["encode", file("in.raw"), "-o", file("x.mig"), "--json", ...c]);
      expect(e.code, `${c.join(" ")}: ${e.stderr}`).toBe(0);
      const rep = JSON.parse(e.stdout);
      expect(rep.rawBytes).toBe(raw.length);
      if (raw.length > 1e6) expect(rep.wireBytes).toBeLessThan(raw.length); // zero runs at least
      const d = await run(["decode", file("x.mig"), "-o", file("out.raw"), ...key]);
      expect(d.code, d.stderr).toBe(0);
      expect(same(readFileSync(file("out.raw")), raw), c.join(" ")).toBe(true);
    }
  });

  it("a named FIFO as IN (a real writer process, more than a pipe holds) is read to its end, byte-exact", async () => {
    const raw = sample(); // far more than a pipe holds: the writer blocks until we read
    const fifo = file("in.fifo");
    expect(spawnSync("mkfifo", [fifo]).status).toBe(0);
    writeFileSync(file("fifo-src.raw"), raw);
    // The writer: a real second process, as a VMM writing into a FIFO would be.
    const writer = spawn("sh", ["-c", 'exec cat "$0" > "$1"', file("fifo-src.raw"), fifo], { stdio: "ignore" });
    const e = await run(["encode", fifo, "-o", file("fifo.mig"), "--codec", "lz4", "--json"]);
    const wrote = await new Promise((r) => (writer.exitCode !== null ? r(writer.exitCode) : writer.once("exit", r)));
    expect(e.code, e.stderr).toBe(0);
    expect(wrote).toBe(0);
    expect(JSON.parse(e.stdout).rawBytes).toBe(raw.length);
    const d = await run(["decode", file("fifo.mig"), "-o", file("fifo.raw")]);
    expect(d.code, d.stderr).toBe(0);
    expect(same(readFileSync(file("fifo.raw")), raw)).toBe(true);
  });

  it("pipes: encode - -o - | decode - -o - reproduce stdin on stdout", async () => {
    const raw = sample().subarray(0, 1_500_000);
    const enc = await run(["encode", "-", "-o", "-", "--codec", "lz4"], { input: raw });
    expect(enc.code, enc.stderr).toBe(0);
    expect(enc.bytes.subarray(0, 4)).toEqual(Buffer.from([0x89, 0x4d, 0x49, 0x47]));
    const dec = await run(["decode", "-", "-o", "-"], { input: enc.bytes });
    expect(dec.code, dec.stderr).toBe(0);
    expect(same(dec.bytes, raw)).toBe(true);
  });

  it("a damaged stream: verify exits 2 naming byte and frame; decode leaves no output file; inspect summarises up to the damage", async () => {
    const raw = sample();
    writeFileSync(file("in.raw"), raw);
    expect(
      (await run(["encode", file("in.raw"), "-o", file("good.mig"), "--codec", "lz4", "--transaction-size", "256KiB"]))
        .code,
    ).toBe(0);
    const bytes = readFileSync(file("good.mig"));
    for (const at of [3, 100, Math.floor(bytes.length * 0.6), bytes.length - 5]) {
      const bad = Buffer.from(bytes);
      bad[at] ^= 0x08;
      writeFileSync(file("bad.mig"), bad);
      const v = await run(["verify", file("bad.mig")]);
      expect(v.code, `flip at ${at}`).toBe(2);
      expect(v.stderr).toMatch(/^migstream: [A-Z_]+( at byte \d+)?( \([^)]*\))?: .+\n$/);
      expect(v.stderr.split("\n").filter(Boolean)).toHaveLength(1);
      const d = await run(["decode", file("bad.mig"), "-o", file("bad.raw")]);
      expect(d.code).toBe(2);
      expect(existsSync(file("bad.raw"))).toBe(false);
    }
    expect(readdirSync(tmp.dir).filter((f) => f.endsWith(".partial"))).toEqual([]);
    const truncated = bytes.subarray(0, Math.floor(bytes.length * 0.7));
    writeFileSync(file("cut.mig"), truncated);
    const i = await run(["inspect", file("cut.mig")]);
    expect(i.code).toBe(2);
    expect(i.stdout).toMatch(/device 0/);
    expect(i.stderr).toMatch(/^migstream: TRUNCATED/m);
  });
});
