// npm run bench:zstd — our zstd WebAssembly build (src/kernels/zstd.ts) against
// zstd-codec (zstd 1.3.6, emscripten: the engine it replaced) and the native
// `zstd` CLI, in one run, on the same data: src/device/pages.ts makeImage
// (zero, code-like, heap-like and random pages, as in the format and e2e
// benches), 64 MiB by default.
//  - ours and zstd-codec: one thread, the image in 256 KiB chunks (the format's
//    default chunk size), each a frame of its own; the time includes copying
//    into and out of the wasm memory, as the library does.
//  - native: `zstd -L -T1` and `zstd -d` as processes on the whole file (one
//    streaming frame), output to /dev/null; each time minus the median time of
//    the same command on an empty file (process start).
// Levels 1 and 3; medians of 5 interleaved repetitions (after two warm-ups:
// the first passes over fresh wasm code and memory run up to 1.8x slower);
// ratios are times relative to ours (> 1: ours is faster). Wall time is what
// the targets use; CPU time (this process's user+sys, or the child's from
// /usr/bin/time at 10 ms resolution) is printed too, as on a shared machine it
// is less disturbed by other processes.
// Usage: node bench/zstd.mjs [MiB=64] [reps=5]

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { buildSync } from "esbuild";
import { median, printTable, summary } from "./lib.mjs";

const MIB = 1 << 20;
const SIZE = Number(process.argv[2] ?? 64) * MIB;
const REPS = Number(process.argv[3] ?? 5);
const CHUNK = 256 << 10;
const LEVELS = [1, 3];

const dir = mkdtempSync(join(tmpdir(), "migstream-zstd-bench-"));
const file = (name) => join(dir, name);

/** Our zstd binding and the page generator, bundled from the TypeScript sources (no build needed). */
async function loadSources() {
  const entry = file("entry.ts");
  const src = fileURLToPath(new URL("../src/", import.meta.url));
  writeFileSync(
    entry,
    `export * from ${JSON.stringify(join(src, "kernels/zstd.ts"))};\nexport { makeImage } from ${JSON.stringify(join(src, "device/pages.ts"))};\n`,
  );
  buildSync({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "neutral",
    outfile: file("entry.mjs"),
    logLevel: "error",
  });
  return import(pathToFileURL(file("entry.mjs")).href);
}

async function loadZstdCodec() {
  const { ZstdCodec } = createRequire(import.meta.url)("zstd-codec");
  return new Promise((resolve) => ZstdCodec.run((z) => resolve(new z.Simple())));
}

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** Wall and CPU time of one call of `fn`, in ms. */
function time(fn) {
  const c0 = cpuMs();
  const t0 = performance.now();
  fn();
  return { wall: performance.now() - t0, cpu: cpuMs() - c0 };
}

/** Wall time of a process (spawn to exit), stdout to /dev/null, and its CPU time, in ms. */
function timeProcess(argv) {
  const t0 = performance.now();
  const r = spawnSync("/usr/bin/time", ["-f", "%U %S", ...argv], {
    stdio: ["ignore", "ignore", "pipe"],
    encoding: "utf8",
  });
  const wall = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${argv.join(" ")} failed: ${r.stderr}`);
  const [user, sys] = r.stderr.trim().split("\n").pop().split(" ").map(Number);
  return { wall, cpu: (user + sys) * 1000 };
}

function same(a, b) {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

try {
  const version = spawnSync("zstd", ["--version"], { encoding: "utf8" });
  if (version.status !== 0) throw new Error("the zstd CLI is needed (Debian package zstd)");
  const z = await loadSources();
  const codec = await loadZstdCodec();
  const image = z.makeImage(SIZE, 1);
  writeFileSync(file("data.raw"), image);
  writeFileSync(file("empty.raw"), new Uint8Array(0));
  const chunks = [];
  for (let at = 0; at < SIZE; at += CHUNK) chunks.push(image.subarray(at, Math.min(SIZE, at + CHUNK)));
  const into = new Uint8Array(CHUNK);
  console.log(
    `# zstd: ${SIZE / MIB} MiB mixed pages, ${CHUNK >> 10} KiB chunks, zstd ${z.zstdVersion()} (wasm) vs zstd-codec 0.1.5 (zstd 1.3.6) vs ${version.stdout.trim()}`,
  );
  console.log(`node ${process.version}, load average at start ${loadavg()[0].toFixed(2)}`);

  const rows = [];
  for (const level of LEVELS) {
    // Frames once, checked both ways: ours decode with zstd-codec and theirs with ours.
    const ours = chunks.map((c) => z.zstdCompress(c, level));
    const theirs = chunks.map((c) => codec.compress(c, level));
    for (let i = 0; i < chunks.length; i += 17) {
      if (
        !same(codec.decompress(ours[i]), chunks[i]) ||
        !same(z.zstdDecompress(theirs[i], chunks[i].length), chunks[i])
      ) {
        throw new Error(`level ${level}: chunk ${i} does not round-trip across the engines`);
      }
    }
    const native = file(`data.${level}.zst`);
    const nativeEmpty = file(`empty.${level}.zst`);
    spawnSync("zstd", [`-${level}`, "-T1", "-q", "-f", file("data.raw"), "-o", native]);
    spawnSync("zstd", [`-${level}`, "-T1", "-q", "-f", file("empty.raw"), "-o", nativeEmpty]);
    const runs = {
      "ours c": () =>
        time(() =>
          chunks.forEach((c) => {
            z.zstdCompress(c, level);
          }),
        ),
      "ours d": () =>
        time(() =>
          ours.forEach((f, i) => {
            z.zstdDecompress(f, chunks[i].length, into);
          }),
        ),
      "codec c": () =>
        time(() =>
          chunks.forEach((c) => {
            codec.compress(c, level);
          }),
        ),
      "codec d": () =>
        time(() =>
          theirs.forEach((f) => {
            codec.decompress(f);
          }),
        ),
      "native c": () => timeProcess(["zstd", `-${level}`, "-T1", "-q", "-f", "-c", file("data.raw")]),
      "native c0": () => timeProcess(["zstd", `-${level}`, "-T1", "-q", "-f", "-c", file("empty.raw")]),
      "native d": () => timeProcess(["zstd", "-d", "-q", "-f", "-c", native]),
      "native d0": () => timeProcess(["zstd", "-d", "-q", "-f", "-c", nativeEmpty]),
    };
    const t = Object.fromEntries(Object.keys(runs).map((k) => [k, []]));
    for (let w = 0; w < 2; w++) for (const f of Object.values(runs)) f(); // warm-up
    for (let r = 0; r < REPS; r++) for (const [k, f] of Object.entries(runs)) t[k].push(f());
    const m = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, median(v.map((x) => x.wall))]));
    const c = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, median(v.map((x) => x.cpu))]));
    const sizes = {
      ours: ours.reduce((s, f) => s + f.length, 0),
      codec: theirs.reduce((s, f) => s + f.length, 0),
      native: statSync(native).size,
    };
    const engines = [
      ["ours (wasm, zstd 1.5.7)", "ours", "", sizes.ours],
      ["zstd-codec (zstd 1.3.6)", "codec", "", sizes.codec],
      [`zstd -${level} -T1 / zstd -d (native)`, "native", "0", sizes.native],
    ];
    const net = (x, k, op, empty) => x[`${k} ${op}`] - (empty ? x[`${k} ${op}${empty}`] : 0);
    for (const [name, k, empty, size] of engines) {
      const [wc, wd, cc, cd] = [
        net(m, k, "c", empty),
        net(m, k, "d", empty),
        net(c, k, "c", empty),
        net(c, k, "d", empty),
      ];
      rows.push({
        level,
        engine: name,
        "compress MB/s": SIZE / 1e3 / wc,
        "decompress MB/s": SIZE / 1e3 / wd,
        "compress time / ours": wc / m["ours c"],
        "decompress time / ours": wd / m["ours d"],
        "CPU: compress MB/s": SIZE / 1e3 / cc,
        "decompress MB/s ": SIZE / 1e3 / cd,
        "compress / ours": cc / c["ours c"],
        "decompress / ours": cd / c["ours d"],
        "size / raw": (size / SIZE).toFixed(4),
      });
    }
  }
  for (const r of rows) {
    if (!r.engine.startsWith("ours")) continue;
    for (const peer of rows.filter((x) => x.level === r.level && !x.engine.startsWith("ours"))) {
      for (const op of ["compress", "decompress"]) {
        summary({
          figure: `zstd -${r.level} ${op}, one thread`,
          ours: r[`${op} MB/s`],
          peer: peer.engine,
          theirs: peer[`${op} MB/s`],
          unit: "MB/s",
        });
      }
    }
  }
  printTable(`zstd engines, one thread, medians of ${REPS} (native: minus process start on an empty file)`, rows);
  console.log(`\nload average at end ${loadavg()[0].toFixed(2)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
