// npm run bench:live — a whole migration as users run it, against its parts:
// `migstream sim serve` devices (v1 migration region over vfio-user, a UNIX
// socket) and the CLI in its own processes:
//   save -o FILE         the source device into a file
//   restore FILE         that file into a destination device
//   live                 save --to tcp://… → restore --listen (loopback TCP)
// each with 64 KiB and 1 MiB transactions (the devices' --transaction-size).
// Per run: wall time; CPU (user + sys) of the client processes (from
// /usr/bin/time-like rusage of each child) and of the sim serve processes
// (from /proc, before and after); per transaction; idle (wall minus the
// busiest client process's CPU: the time it waited); peak RSS of each.
// Medians of REPS interleaved runs. The goals' ratios (issue 22):
//   save -o FILE, 64 KiB transactions / the same with 1 MiB   (goal ≤ 1.5)
//   live / save -o FILE alone, same transaction size          (goal ≤ 1.5)
// A separate table measures the sim server alone: the bench process itself
// drives the v1 transaction sequence at it (no coding, no file), so the
// server's cost per transaction is known apart from any client's.
//
// Usage: node bench/live.mjs   env LIVE_MIB (state size, default 1024),
// LIVE_REPS (default 3), LIVE_CODEC (default lz4), LIVE_THREADS (default: the CLI's),
// LIVE_DIST (another build's dist/ to measure, e.g. an older commit's, for a
// before/after comparison in one sitting).
import { spawn } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { bundle } from "./bundle.mjs";
import { median, printTable, summary } from "./lib.mjs";

const MIB = Number(process.env.LIVE_MIB ?? 1024);
const REPS = Number(process.env.LIVE_REPS ?? 3);
const CODEC = process.env.LIVE_CODEC ?? "lz4";
const THREADS = process.env.LIVE_THREADS;
const SIZE = MIB * 2 ** 20;
const TXNS = [64 << 10, 1 << 20];
const GOAL = 1.5;
const CLK_TCK = 100; // Linux's USER_HZ for /proc/PID/stat

const root = join(fileURLToPath(new URL(".", import.meta.url)), "..");
const dir = mkdtempSync(join(tmpdir(), "migstream-bench-live-"));
// A private copy of dist/: a rebuild during the bench cannot break it.
cpSync(process.env.LIVE_DIST ?? join(root, "dist"), join(dir, "dist"), { recursive: true });
const cli = join(dir, "dist", "cli.js");
const now = () => performance.now();

// ------------------------------------------------------------ processes

/** /proc/PID/stat: user + sys CPU seconds of a live process. */
function procCpu(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** Peak RSS (bytes) of a live process since its last reset (resetPeak). */
function procPeak(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Resets a process's peak RSS to its current RSS (Linux ≥ 4.0: clear_refs 5). */
function resetPeak(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
  } catch {
    // not allowed here: the peak then spans the server's whole life
  }
}

/** A sim serve process; resolves once it prints that it listens. */
function startSim(socket, args) {
  const child = spawn(process.execPath, [cli, "sim", "serve", "--socket", socket, ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    child.stdout.once("data", () => resolve(child));
    child.once("exit", (code) => reject(new Error(`sim serve ${args.join(" ")} exited ${code}`)));
  });
}

function stopProc(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once("exit", resolve);
    child.kill("SIGTERM");
  });
}

/**
 * Runs `migstream ARGS` under /usr/bin/time (its own rusage: every thread's
 * CPU, peak RSS). `onStderr` sees stderr as it arrives. Resolves with the
 * parsed --json report, cpu seconds, peak RSS bytes, and the exit time.
 */
function runCli(args, onStderr) {
  const child = spawn("/usr/bin/time", ["-f", "TIME %U %S %M", process.execPath, cli, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => {
    err += d;
    onStderr?.(err);
  });
  return new Promise((resolve, reject) => {
    // The exit time is the run's end; its output is parsed once stdout and stderr are drained
    // ("close"): time's TIME line, written last, may not have been read yet at "exit".
    let at = 0;
    child.once("exit", () => (at = now()));
    child.once("close", (code) => {
      const m = /TIME ([\d.]+) ([\d.]+) (\d+)/.exec(err);
      if (code !== 0 || !m) return reject(new Error(`migstream ${args.join(" ")} exited ${code}:\n${err}\n${out}`));
      resolve({ report: JSON.parse(out), cpu: Number(m[1]) + Number(m[2]), rss: Number(m[3]) * 1024, at });
    });
  });
}

// ------------------------------------------------------------ runs

const coding = ["--codec", CODEC, ...(THREADS ? ["--threads", THREADS] : [])];

/** Measures `fn` (which runs client processes) against the servers `sims`: their CPU and peak RSS over it. */
async function measured(sims, fn) {
  for (const s of sims) resetPeak(s.pid);
  const before = sims.map((s) => procCpu(s.pid));
  const t0 = now();
  const r = await fn();
  const wall = (r.end ?? now()) - t0;
  const serverCpu = sims.reduce((a, s, i) => a + procCpu(s.pid) - before[i], 0);
  const serverRss = Math.max(...sims.map((s) => procPeak(s.pid)));
  return { ...r, wall: wall / 1000, serverCpu, serverRss };
}

async function saveFile(sim, socket, file) {
  return measured([sim], async () => {
    const s = await runCli(["save", "--device", `vfio-user:${socket}`, "-o", file, ...coding, "--json", "-q"]);
    return { end: s.at, clients: [s], transactions: s.report.transactions };
  });
}

async function restoreFile(sim, socket, file) {
  return measured([sim], async () => {
    const r = await runCli(["restore", "--device", `vfio-user:${socket}`, file, "--json", "-q"]);
    return { end: r.at, clients: [r], transactions: r.report.transactions };
  });
}

async function live(src, srcSock, dst, dstSock) {
  return measured([src, dst], async () => {
    let url;
    let listening;
    const ready = new Promise((resolve) => (listening = resolve));
    const restoring = runCli(
      ["restore", "--device", `vfio-user:${dstSock}`, "--listen", "tcp://127.0.0.1:0", "--json", "-q"],
      (err) => {
        const m = /listening on (tcp:\/\/\S+)/.exec(err);
        if (m && !url) {
          url = m[1];
          listening();
        }
      },
    );
    restoring.catch(() => listening());
    await ready;
    const saving = runCli(["save", "--device", `vfio-user:${srcSock}`, "--to", url, ...coding, "--json", "-q"]);
    const [s, r] = await Promise.all([saving, restoring]);
    return { end: Math.max(s.at, r.at), clients: [s, r], transactions: s.report.transactions };
  });
}

// ------------------------------------------------------------ server alone

/**
 * The sim server alone: this process runs the v1 save sequence (pending_bytes,
 * data_offset, data_size, data) over one vfio-user session, pipelined as the
 * driver is, data landing in one reused buffer, nothing coded or written.
 */
async function serverAlone(lib, sim, socket) {
  const region = await lib.connectVfioUser(socket, { timeoutMs: 600_000 });
  try {
    const before = procCpu(sim.pid);
    const cpu0 = process.cpuUsage();
    const t0 = now();
    const s = await lib.save(region, { phase: () => {}, transaction: () => {} }, { precopy: false });
    const wall = (now() - t0) / 1000;
    const cu = process.cpuUsage(cpu0);
    const serverCpu = procCpu(sim.pid) - before;
    await lib.restartSource(region);
    return { wall, serverCpu, clientCpu: (cu.user + cu.system) / 1e6, transactions: s.transactions };
  } finally {
    await region.close();
  }
}

// ------------------------------------------------------------ main

const sims = [];
try {
  const lib = await bundle("live", [
    'export { connectVfioUser } from "./src/transport/vfio-user/client.ts";',
    'export { save } from "./src/protocol/save.ts";',
    'export { restartSource } from "./src/protocol/drive.ts";',
  ]);
  console.log(
    `Starting sim serve processes (${MIB} MiB state; ${TXNS.map((t) => `${t >> 10} KiB`).join(" and ")} transactions)...`,
  );
  const dev = {};
  for (const txn of TXNS) {
    const srcSock = join(dir, `s${txn}.sock`);
    const dstSock = join(dir, `d${txn}.sock`);
    const [src, dst] = await Promise.all([
      startSim(srcSock, ["--state-size", `${SIZE}`, "--seed", "7", "--transaction-size", `${txn}`]),
      startSim(dstSock, ["--state-size", `${SIZE}`, "--empty", "--transaction-size", `${txn}`]),
    ]);
    sims.push(src, dst);
    dev[txn] = { src, dst, srcSock, dstSock, file: join(dir, `state-${txn}.mig`) };
  }

  const runs = {};
  const add = (key, r) => {
    runs[key] ??= [];
    runs[key].push(r);
  };
  for (let rep = 0; rep < REPS; rep++) {
    for (const txn of TXNS) {
      const d = dev[txn];
      add(`save ${txn}`, await saveFile(d.src, d.srcSock, d.file));
      add(`restore ${txn}`, await restoreFile(d.dst, d.dstSock, d.file));
      add(`live ${txn}`, await live(d.src, d.srcSock, d.dst, d.dstSock));
    }
    process.stdout.write(`(run ${rep + 1} of ${REPS} done)\n`);
  }
  const alone = {};
  for (const txn of TXNS) {
    alone[txn] = [];
    for (let rep = 0; rep < REPS; rep++) alone[txn].push(await serverAlone(lib, dev[txn].src, dev[txn].srcSock));
  }

  const MB = (b) => b / 1e6;
  const sec = (x) => x.toFixed(2);
  const us = (x) => x.toFixed(1);
  const med = (list, f) => median(list.map(f));
  const rows = [];
  const walls = {};
  for (const [label, kind] of [
    ["save -o FILE", "save"],
    ["restore FILE", "restore"],
    ["live save --to → restore --listen", "live"],
  ]) {
    for (const txn of TXNS) {
      const list = runs[`${kind} ${txn}`];
      const n = list[0].transactions;
      const wall = med(list, (r) => r.wall);
      walls[`${kind} ${txn}`] = wall;
      const clientCpu = med(list, (r) => r.clients.reduce((a, c) => a + c.cpu, 0));
      const busiest = med(list, (r) => Math.max(...r.clients.map((c) => c.cpu)));
      const serverCpu = med(list, (r) => r.serverCpu);
      rows.push({
        run: label,
        txn: `${txn >> 10} KiB`,
        transactions: n,
        "wall s": sec(wall),
        "MB/s": (MB(SIZE) / wall).toFixed(0),
        "client CPU s":
          kind === "live"
            ? `${sec(med(list, (r) => r.clients[0].cpu))} + ${sec(med(list, (r) => r.clients[1].cpu))}`
            : sec(clientCpu),
        "server CPU s": sec(serverCpu),
        "idle s": sec(Math.max(0, wall - busiest)),
        "client µs/txn": us((clientCpu / n) * 1e6),
        "server µs/txn": us((serverCpu / n) * 1e6),
        "client peak RSS MB":
          kind === "live"
            ? list
                .at(-1)
                .clients.map((c) => MB(c.rss).toFixed(0))
                .join(" + ")
            : MB(med(list, (r) => r.clients[0].rss)).toFixed(0),
        "server peak RSS MB": MB(med(list, (r) => r.serverRss)).toFixed(0),
      });
    }
  }
  console.log(
    `\n${MIB} MiB device state (sim serve, v1 over vfio-user), codec ${CODEC}${THREADS ? `, ${THREADS} threads` : ""}; medians of ${REPS} interleaved runs. ` +
      "client CPU: user + sys of the migstream process(es) (live: save + restore); server CPU: of the sim serve process(es); idle: wall − the busiest client's CPU.",
  );
  printTable("A live migration and its parts", rows);
  printTable(
    "The sim server alone (this process drives the v1 save sequence, nothing coded or written)",
    TXNS.map((txn) => {
      const list = alone[txn];
      const n = list[0].transactions;
      const wall = med(list, (r) => r.wall);
      const serverCpu = med(list, (r) => r.serverCpu);
      return {
        txn: `${txn >> 10} KiB`,
        transactions: n,
        "wall s": sec(wall),
        "MB/s": (MB(SIZE) / wall).toFixed(0),
        "driver CPU s": sec(med(list, (r) => r.clientCpu)),
        "server CPU s": sec(serverCpu),
        "server µs/txn": us((serverCpu / n) * 1e6),
        "server share of wall": `${((serverCpu / wall) * 100).toFixed(0)}%`,
      };
    }),
  );
  const [small, big] = TXNS;
  // Each goal: ours (the first run) against the peer run, both wall times of this sitting.
  const goals = [
    {
      goal: "save -o FILE: 64 KiB / 1 MiB transactions",
      ours: `save ${small}`,
      theirs: `save ${big}`,
      peer: "the same save with 1 MiB transactions",
    },
    {
      goal: "live / save -o FILE alone, 64 KiB transactions",
      ours: `live ${small}`,
      theirs: `save ${small}`,
      peer: "save -o FILE alone",
    },
    {
      goal: "live / save -o FILE alone, 1 MiB transactions",
      ours: `live ${big}`,
      theirs: `save ${big}`,
      peer: "save -o FILE alone",
    },
  ];
  printTable(
    `Goals (issue 22): each ratio of wall times within ${GOAL}×`,
    goals.map((g) => {
      const ratio = walls[g.ours] / walls[g.theirs];
      return { goal: g.goal, ratio: `${ratio.toFixed(2)}×`, met: ratio <= GOAL ? "yes" : "no" };
    }),
  );
  for (const g of goals) {
    summary({
      figure: `${MIB} MiB: ${g.goal}`,
      ours: walls[g.ours],
      peer: g.peer,
      theirs: walls[g.theirs],
      unit: "s",
      better: "lower",
    });
  }
} finally {
  await Promise.all(sims.map(stopProc));
  rmSync(dir, { recursive: true, force: true });
}
