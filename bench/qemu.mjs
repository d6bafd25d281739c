// npm run bench:qemu — migstream as QEMU's exec: migration filter against the
// native tools in the same place, in one run:
//  - live: real QEMU migrations (TCG, no disk, the source stopped; as in
//    test/cli/qemu.test.ts) of a 256 MiB guest holding N MiB of the page corpus
//    (src/device/pages.ts: zero, code-like, heap-like, random pages; QEMU sends
//    zero pages as 9-byte records, so 160 MiB make a ~100 MB stream), and of a
//    64 MiB guest holding only its firmware (start-up dominates), through
//    `migstream encode --codec lz4` / `migstream decode`, `lz4 -1 -c` /
//    `lz4 -d -c`, and `cat` at both ends, joined by a FIFO; timed from the
//    migrate command until the destination is paused (QEMU reports an exec:
//    migration complete only after the source's filter exited);
//  - replay: the big guest's captured stream through each filter as whole
//    processes between pipes, as QEMU runs them (`cat | FILTER | cat`),
//    encode and decode;
//  - start-up: process start to the first byte out (the stream header) and to
//    the first coded transaction out of `migstream encode - -o -`, fed the
//    first 4 MiB of the captured stream with stdin left open; and a 4 KiB stream
//    from start to exit, against lz4, cat and a bare `node -e 0`.
// Runs are interleaved (every filter once per repetition) and the tables show
// medians; the machine is shared, so read the ratios. The runs use a private
// copy of dist/ (a rebuild meanwhile cannot break them).
// Usage: node bench/qemu.mjs [MiB in the big guest=160] [reps=5]
import { spawn, spawnSync } from "node:child_process";
import {
  closeSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { migrate, QEMU, qemuVersion, runThenStop, settle, sh, startQemu } from "../test/cli/qemu-driver.mjs";
import { loadPages, median, printTable } from "./lib.mjs";

const MIB = 1 << 20;
const LOAD_MIB = Number(process.argv[2] ?? 160);
const REPS = Number(process.argv[3] ?? 5);
/** Start-up runs are short: more of them. */
const STARTUP_REPS = Math.max(REPS * 2 + 1, 7);
const GUESTS = [
  { name: `256 MiB guest, ${LOAD_MIB} MiB of pages`, mem: 256, big: true },
  { name: "64 MiB guest, firmware only", mem: 64, big: false },
];
/** Input the first-byte runs get at once (QEMU's first writes), and the output that counts as the first coded transaction. */
const FIRST_INPUT = 4 * MIB;
const FIRST_DATA = 16 << 10;
const TINY = 4096;

const DIST = fileURLToPath(new URL(`../node_modules/.cache/migstream-bench-qemu/dist-${process.pid}`, import.meta.url));
const CLI = join(DIST, "cli.js");
const NODE = process.execPath;
const ours = (args) => `${sh(NODE)} ${sh(CLI)} ${args}`;
const FILTERS = [
  { name: "migstream lz4", enc: ours("encode - -o - --codec lz4 -q"), dec: ours("decode - -o - -q") },
  { name: "lz4 -1", enc: "lz4 -1 -c -q", dec: "lz4 -d -c -q" },
  { name: "cat", enc: "cat", dec: "cat" },
];
const PEER = "lz4 -1";

function need(tool, args = ["--version"]) {
  const r = spawnSync(tool, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${tool} is needed (Debian: qemu-system-x86, lz4)`);
  return (r.stdout || r.stderr).split("\n")[0].replace(/\*+/g, "").trim();
}

/** One live migration through `f`; wall ms from the migrate command until the destination is paused. */
async function live(dir, guest, f, blob) {
  const fifo = join(dir, "link.fifo");
  const dst = await startQemu({ dir, name: "dst", mem: guest.mem, incoming: `exec:${f.dec} < ${sh(fifo)}` });
  const src = await startQemu({ dir, name: "src", mem: guest.mem, load: guest.big ? blob : undefined });
  try {
    await runThenStop(src);
    const { info, ms: sourceMs } = await migrate(src, `exec:${f.enc} > ${sh(fifo)}`);
    const t = performance.now();
    const end = await settle(dst);
    const ms = sourceMs + (performance.now() - t);
    if (info.status !== "completed" || end.status !== "paused") {
      throw new Error(
        `${f.name}, ${guest.name}: migration ${info.status}, destination ${end.status}\n${src.stderr()}\n${dst.stderr()}`,
      );
    }
    return { ms, qemuMs: info["total-time"], bytes: info.ram.transferred };
  } finally {
    await Promise.all([src.stop(), dst.stop()]);
  }
}

/** The big guest's migration stream, captured with `exec:cat > FILE` (no destination needed). */
async function capture(dir, guest, blob, out) {
  const src = await startQemu({ dir, name: "capture", mem: guest.mem, load: blob });
  try {
    await runThenStop(src);
    const { info } = await migrate(src, `exec:cat > ${sh(out)}`);
    if (info.status !== "completed") throw new Error(`capture: migration ${info.status}\n${src.stderr()}`);
  } finally {
    await src.stop();
  }
}

/** A shell pipeline to its end: wall ms, CPU s of everything in it (user + system). */
function timed(script, ...args) {
  const t0 = performance.now();
  const r = spawnSync("/usr/bin/time", ["-f", "@@RES %U %S", "sh", "-c", script, ...args], { encoding: "utf8" });
  const wall = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${script} failed (${r.status}):\n${r.stderr}`);
  const m = /@@RES ([\d.]+) ([\d.]+)/.exec(r.stderr);
  return { ms: wall, cpu: m ? Number(m[1]) + Number(m[2]) : 0 };
}

/**
 * Spawns `cmd` (a shell command line, run through exec so the timed process is
 * the filter itself), writes `input` to its stdin (closing it if `end`) and
 * resolves with ms from spawn to the first byte out, to `firstData` bytes out,
 * and to exit.
 */
function firstBytes(cmd, input, end, firstData) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = spawn("sh", ["-c", `exec ${cmd}`], { stdio: ["pipe", "pipe", "inherit"] });
    let first = null;
    let data = null;
    let n = 0;
    c.stdout.on("data", (b) => {
      const now = performance.now() - t0;
      first ??= now;
      n += b.length;
      if (data === null && n >= firstData) {
        data = now;
        if (!end) c.stdin.end(); // seen what we came for: let it finish
      }
    });
    c.stdin.on("error", () => {});
    c.stdin.write(input);
    if (end) c.stdin.end();
    else setTimeout(() => c.stdin.end(), 30_000).unref(); // a filter that holds everything until EOF: its "first" is then its end
    c.once("error", reject);
    c.once("close", (code) => {
      if (code !== 0) return reject(new Error(`${cmd} exited with ${code}`));
      resolve({ first, data, exit: performance.now() - t0 });
    });
  });
}

function head(path, n) {
  const fd = openSync(path, "r");
  const buf = Buffer.alloc(n);
  const got = readSync(fd, buf, 0, n, 0);
  closeSync(fd);
  return buf.subarray(0, got);
}

const ratio = (a, b) => `${(a / b).toFixed(2)}×`;

async function main() {
  const qemu = qemuVersion();
  if (!qemu) throw new Error(`${QEMU} cannot be run (Debian: apt-get install qemu-system-x86)`);
  const lz4 = need("lz4");
  try {
    statSync(new URL("../dist/cli.js", import.meta.url));
  } catch {
    throw new Error("run `npm run build` first (dist/cli.js)");
  }
  const tBench = performance.now();
  mkdirSync(DIST, { recursive: true });
  cpSync(fileURLToPath(new URL("../dist", import.meta.url)), DIST, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), "migstream-bench-qemu-"));
  const file = (name) => join(dir, name);
  try {
    spawnSync("mkfifo", [file("link.fifo")]);
    const pages = await loadPages();
    writeFileSync(file("guest.bin"), pages.makeImage(LOAD_MIB * MIB, 1));
    const blob = file("guest.bin");
    console.log(
      `# migstream as QEMU's exec: filter: ${qemu}, ${lz4}, node ${process.version}; ${REPS} interleaved repetitions (start-up: ${STARTUP_REPS})`,
    );
    console.log(
      `# load average at start: ${loadavg()
        .map((x) => x.toFixed(2))
        .join(" ")}`,
    );

    // ---- live migrations ----
    const liveRuns = new Map();
    for (let rep = 0; rep < REPS; rep++) {
      for (const g of GUESTS) {
        for (const f of FILTERS) {
          const k = `${g.name}|${f.name}`;
          if (!liveRuns.has(k)) liveRuns.set(k, []);
          liveRuns.get(k).push(await live(dir, g, f, blob));
        }
      }
    }
    const liveRows = [];
    const liveMs = (g, f) => median(liveRuns.get(`${g.name}|${f}`).map((r) => r.ms));
    for (const g of GUESTS) {
      for (const f of FILTERS) {
        const runs = liveRuns.get(`${g.name}|${f.name}`);
        const ms = liveMs(g, f.name);
        liveRows.push({
          guest: g.name,
          filter: f.name,
          "QEMU stream MB": runs[0].bytes / 1e6,
          "time ms": ms,
          "best ms": Math.min(...runs.map((r) => r.ms)),
          "QEMU total-time ms": median(runs.map((r) => r.qemuMs)),
          [`vs ${PEER}`]: ratio(ms, liveMs(g, PEER)),
          "vs cat": ratio(ms, liveMs(g, "cat")),
        });
      }
    }
    printTable(
      "live QEMU migration through the filter at both ends (medians; time: the migrate command until the destination is paused; QEMU total-time: the source's own figure)",
      liveRows,
    );

    // ---- replay of the captured stream ----
    await capture(dir, GUESTS[0], blob, file("stream.raw"));
    const raw = file("stream.raw");
    const rawBytes = statSync(raw).size;
    timed(`cat "$0" | ${FILTERS[0].enc} > "$1"`, raw, file("stream.mig"));
    timed(`lz4 -1 -c -q "$0" > "$1"`, raw, file("stream.lz4"));
    const coded = { "migstream lz4": file("stream.mig"), "lz4 -1": file("stream.lz4"), cat: raw };
    const replay = new Map();
    for (let rep = 0; rep < REPS; rep++) {
      for (const f of FILTERS) {
        for (const [dirn, cmd, input] of [
          ["encode", f.enc, raw],
          ["decode", f.dec, coded[f.name]],
        ]) {
          const k = `${dirn}|${f.name}`;
          if (!replay.has(k)) replay.set(k, []);
          replay.get(k).push(timed(`cat "$0" | ${cmd} | cat > /dev/null`, input));
        }
      }
    }
    const replayMs = (d, f) => median(replay.get(`${d}|${f}`).map((r) => r.ms));
    const replayRows = [];
    for (const d of ["encode", "decode"]) {
      for (const f of FILTERS) {
        const runs = replay.get(`${d}|${f.name}`);
        const ms = replayMs(d, f.name);
        replayRows.push({
          direction: d,
          filter: f.name,
          "time ms": ms,
          "best ms": Math.min(...runs.map((r) => r.ms)),
          "CPU s": median(runs.map((r) => r.cpu)),
          "MB/s": rawBytes / 1e6 / (ms / 1000),
          "size ratio": (statSync(coded[f.name]).size / rawBytes).toFixed(3),
          [`vs ${PEER}`]: ratio(ms, replayMs(d, PEER)),
          "vs cat": ratio(ms, replayMs(d, "cat")),
        });
      }
    }
    printTable(
      `the captured stream (${(rawBytes / 1e6).toFixed(1)} MB) through each filter, whole processes: cat FILE | FILTER | cat > /dev/null (medians; CPU: every process of the pipeline)`,
      replayRows,
    );

    // ---- start-up ----
    const firstInput = head(raw, FIRST_INPUT);
    const tinyRaw = head(raw, TINY);
    writeFileSync(file("tiny.raw"), tinyRaw);
    timed(`${FILTERS[0].enc} < "$0" > "$1"`, file("tiny.raw"), file("tiny.mig"));
    const tinyMig = readFileSync(file("tiny.mig"));
    const tinyLz4 = spawnSync("lz4", ["-1", "-c", "-q"], { input: tinyRaw }).stdout;
    const startupCases = [
      { name: "migstream encode - -o - --codec lz4", kind: "first", cmd: FILTERS[0].enc },
      { name: "lz4 -1 -c", kind: "first", cmd: FILTERS[1].enc },
      { name: "cat", kind: "first", cmd: "cat" },
      { name: "migstream encode (4 KiB stream)", kind: "tiny", cmd: FILTERS[0].enc, input: tinyRaw },
      { name: "migstream decode (4 KiB stream)", kind: "tiny", cmd: FILTERS[0].dec, input: tinyMig },
      { name: "lz4 -1 -c (4 KiB)", kind: "tiny", cmd: FILTERS[1].enc, input: tinyRaw },
      { name: "lz4 -d -c (4 KiB)", kind: "tiny", cmd: FILTERS[1].dec, input: tinyLz4 },
      { name: "cat (4 KiB)", kind: "tiny", cmd: "cat", input: tinyRaw },
      { name: "node -e 0 (the runtime alone)", kind: "tiny", cmd: `${sh(NODE)} -e 0`, input: Buffer.alloc(0) },
      {
        name: "migstream --version (runtime + CLI modules)",
        kind: "tiny",
        cmd: ours("--version"),
        input: Buffer.alloc(0),
      },
    ];
    for (const c of startupCases) c.runs = [];
    for (let rep = 0; rep < STARTUP_REPS; rep++) {
      for (const c of startupCases) {
        c.runs.push(
          await (c.kind === "first"
            ? firstBytes(c.cmd, firstInput, false, FIRST_DATA)
            : firstBytes(c.cmd, c.input, true, 1)),
        );
      }
    }
    const sm = (c, k) => median(c.runs.map((r) => r[k] ?? Number.NaN));
    printTable(
      `start-up (medians of ${STARTUP_REPS}): "first" rows get the first ${FIRST_INPUT / MIB} MiB of the captured stream at once with stdin left open — ` +
        `first byte out, then first ${FIRST_DATA >> 10} KiB out (a coded transaction); "4 KiB" rows: a 4 KiB stream, spawn to exit`,
      startupCases.map((c) => ({
        run: c.name,
        "first byte ms": c.kind === "first" ? sm(c, "first") : "",
        [`first ${FIRST_DATA >> 10} KiB ms`]: c.kind === "first" ? sm(c, "data") : "",
        "exit ms": sm(c, "exit"),
      })),
    );

    // ---- goals (issue 19) ----
    const big = GUESTS[0];
    const small = GUESTS[1];
    const find = (n) => startupCases.find((c) => c.name === n);
    // [what, value, target (null: measured, no target), unit]
    const goals = [
      [
        `live, ${big.name}: migstream lz4 within 1.25× of ${PEER} -c (issue 19)`,
        liveMs(big, "migstream lz4") / liveMs(big, PEER),
        (x) => x <= 1.25,
        "×",
      ],
      [
        `live, ${small.name}: migstream lz4 vs ${PEER} -c (start-up dominates)`,
        liveMs(small, "migstream lz4") / liveMs(small, PEER),
        null,
        "×",
      ],
      [
        `replay encode: migstream lz4 within 1.25× of ${PEER} -c (whole process)`,
        replayMs("encode", "migstream lz4") / replayMs("encode", PEER),
        (x) => x <= 1.25,
        "×",
      ],
      [
        `replay decode: migstream decode at least as fast as lz4 -d -c (whole process)`,
        replayMs("decode", "migstream lz4") / replayMs("decode", PEER),
        (x) => x <= 1.0,
        "×",
      ],
      [
        "start-up: migstream encode - -o -, process start to first byte out",
        sm(find("migstream encode - -o - --codec lz4"), "first"),
        null,
        " ms",
      ],
      [
        "start-up: the runtime alone (node -e 0, start to exit)",
        sm(find("node -e 0 (the runtime alone)"), "exit"),
        null,
        " ms",
      ],
      [
        `start-up: migstream encode, a 4 KiB stream start to exit, vs lz4 -1 -c`,
        sm(find("migstream encode (4 KiB stream)"), "exit") / sm(find("lz4 -1 -c (4 KiB)"), "exit"),
        null,
        "×",
      ],
    ];
    // bench:e2e runs this bench and prints these goals among issue 19's: it names a file to get them in.
    if (process.env.QEMU_GOALS_JSON)
      writeFileSync(
        process.env.QEMU_GOALS_JSON,
        JSON.stringify(goals.map(([what, x, ok, unit]) => ({ what, x, met: ok === null ? null : ok(x), unit }))),
      );
    console.log("\n### goals\n");
    for (const [what, x, ok, unit] of goals)
      console.log(
        `- ${ok === null ? "info  " : ok(x) ? "met   " : "MISSED"} ${what}: ${x.toFixed(unit === " ms" ? 0 : 2)}${unit}`,
      );
    console.log(
      `\n(bench ran ${((performance.now() - tBench) / 1000).toFixed(0)} s; load average at end: ${loadavg()
        .map((x) => x.toFixed(2))
        .join(" ")})`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(DIST, { recursive: true, force: true });
  }
}

await main();
