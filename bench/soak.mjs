// Soak benchmark (npm run bench:soak; not in CI): over 4 GiB of device state
// through save → tcp → restore, as the processes a user runs — two `sim serve`
// devices, `restore --listen`, `save --to` — with the resident set size of
// the save and restore processes sampled every 200 ms. The source device
// (1 GiB) dirties two pages for every page of every buffer it hands over
// during pre-copy, so each pass resends a good part of the state: the first
// pass (1 GiB), 8 more and the stop-and-copy add up to over 4 GiB of RAW
// chunks through the stream. A counting relay between the two tells how far the stream got
// at each sample. Peak RSS must not grow with the stream's length: the table
// gives the peaks per half GiB of stream, and the run fails if the peak over
// the stream's second half exceeds the first half's (warm-up included) by
// more than SOAK_GROWTH_LIMIT.
// SOAK_STATE (MiB, default 1024), SOAK_ITERATIONS (default 8) and SOAK_DIRTY
// (pages per 1 MiB buffer, default 512) scale it.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { printTable, summary } from "./lib.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const CLI = join(root, "dist", "cli.js");
const STATE_MIB = Number(process.env.SOAK_STATE ?? 1024);
const ITERATIONS = Number(process.env.SOAK_ITERATIONS ?? 8);
/** Pages dirtied per 1 MiB buffer handed over (twice its 256 pages: 86% of the state is pending again after a pass). */
const DIRTY = Number(process.env.SOAK_DIRTY ?? 512);
const SAMPLE_MS = 200;
/** The peak RSS over the stream's second half may exceed the first half's by at most this factor. */
const SOAK_GROWTH_LIMIT = 1.15;
const GiB = 2 ** 30;
const MiB = 2 ** 20;

function rss(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

function proc(args, opts = {}) {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"], ...opts });
  let out = "";
  let err = "";
  child.stdout.on("data", (c) => (out += c));
  child.stderr.on("data", (c) => (err += c));
  const done = new Promise((resolve) => child.once("close", (code) => resolve({ code, out, err })));
  const waitFor = (re) =>
    new Promise((resolve, reject) => {
      const t = setInterval(() => {
        const m = re.exec(out + err);
        if (m) {
          clearInterval(t);
          resolve(m);
        } else if (child.exitCode !== null) {
          clearInterval(t);
          reject(new Error(`${args.join(" ")} ended: ${err}`));
        }
      }, 20);
    });
  return { child, done, waitFor };
}

/** A relay 127.0.0.1:port → target that counts the bytes going toward the target. */
async function relay(target) {
  const counter = { bytes: 0 };
  const server = net.createServer({ allowHalfOpen: true }, (a) => {
    const b = net.connect({ host: "127.0.0.1", port: target, allowHalfOpen: true });
    a.on("data", (c) => {
      counter.bytes += c.length;
      if (!b.write(c)) {
        a.pause();
        b.once("drain", () => a.resume());
      }
    });
    b.on("data", (c) => a.write(c));
    a.on("end", () => b.end());
    b.on("end", () => a.end());
    a.on("error", () => b.destroy());
    b.on("error", () => a.destroy());
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { port: server.address().port, counter, close: () => server.close() };
}

const dir = mkdtempSync(join(tmpdir(), "migstream-soak-"));
const sims = [];
try {
  const common = ["--state-size", `${STATE_MIB}MiB`, "--transaction-size", "1MiB", "--on-disconnect", "stay"];
  const src = proc([
    "sim",
    "serve",
    "--socket",
    join(dir, "src.sock"),
    ...common,
    "--seed",
    "9",
    "--dirty-rate",
    String(DIRTY),
  ]);
  const dst = proc(["sim", "serve", "--socket", join(dir, "dst.sock"), ...common, "--empty"]);
  sims.push(src, dst);
  await Promise.all([src.waitFor(/listening/), dst.waitFor(/listening/)]);
  const restore = proc([
    "restore",
    "--device",
    `vfio-user:${join(dir, "dst.sock")}`,
    "--listen",
    "tcp://127.0.0.1:0",
    "--json",
    "--attempts",
    "1",
  ]);
  const port = Number((await restore.waitFor(/listening on tcp:\/\/127\.0\.0\.1:(\d+)/))[1]);
  const r = await relay(port);
  const t0 = performance.now();
  const save = proc([
    "save",
    "--device",
    `vfio-user:${join(dir, "src.sock")}`,
    "--to",
    `tcp://127.0.0.1:${r.port}`,
    "--json",
    "--precopy-iterations",
    String(ITERATIONS),
    "--codec",
    "raw",
  ]);
  const samples = [];
  const timer = setInterval(() => {
    samples.push({
      ms: performance.now() - t0,
      wire: r.counter.bytes,
      save: rss(save.child.pid),
      restore: rss(restore.child.pid),
    });
  }, SAMPLE_MS);
  const [s, d] = await Promise.all([save.done, restore.done]);
  clearInterval(timer);
  r.close();
  if (s.code !== 0 || d.code !== 0) throw new Error(`save ${s.code}: ${s.err}\nrestore ${d.code}: ${d.err}`);
  const rep = JSON.parse(s.out);
  const ms = performance.now() - t0;
  const total = r.counter.bytes;
  const steps = Math.max(1, Math.ceil(total / (GiB / 2)));
  const rows = [];
  for (let i = 0; i < steps; i++) {
    const lo = (i * total) / steps;
    const hi = ((i + 1) * total) / steps;
    const inside = samples.filter((x) => x.wire >= lo && x.wire <= hi && x.save !== null && x.restore !== null);
    if (inside.length === 0) continue;
    rows.push({
      "stream (GiB)": `${(lo / GiB).toFixed(1)}–${(hi / GiB).toFixed(1)}`,
      samples: inside.length,
      "save RSS peak (MiB)": Math.max(...inside.map((x) => x.save)) / MiB,
      "save RSS median (MiB)": inside.map((x) => x.save).sort((a, b) => a - b)[inside.length >> 1] / MiB,
      "restore RSS peak (MiB)": Math.max(...inside.map((x) => x.restore)) / MiB,
      "restore RSS median (MiB)": inside.map((x) => x.restore).sort((a, b) => a - b)[inside.length >> 1] / MiB,
    });
  }
  printTable(
    `soak: ${(rep.rawBytes / GiB).toFixed(2)} GiB raw in ${rep.transactions} buffers (${rep.iterations} pre-copy passes), ${(total / GiB).toFixed(2)} GiB on the wire, ${(ms / 1000).toFixed(1)} s (${(total / MiB / (ms / 1000)).toFixed(0)} MiB/s); RSS sampled every ${SAMPLE_MS} ms`,
    rows,
  );
  // Peak over the second half of the stream against the first half (warm-up included there).
  const half = (k, second) =>
    Math.max(...samples.filter((x) => x[k] !== null && x.wire > total / 2 === second).map((x) => x[k])) / MiB;
  const growth = {
    save: half("save", true) / half("save", false),
    restore: half("restore", true) / half("restore", false),
  };
  console.log(
    `\npeak RSS, second half of the stream over the first: save ${half("save", true).toFixed(1)} / ${half("save", false).toFixed(1)} MiB = ${growth.save.toFixed(2)}x, ` +
      `restore ${half("restore", true).toFixed(1)} / ${half("restore", false).toFixed(1)} MiB = ${growth.restore.toFixed(2)}x (limit ${SOAK_GROWTH_LIMIT}x)`,
  );
  for (const k of ["save", "restore"]) {
    summary({
      figure: `${k} peak RSS over a ${(total / GiB).toFixed(1)} GiB stream, second half`,
      ours: half(k, true),
      peer: "the same over its first half",
      theirs: half(k, false),
      unit: "MiB",
      better: "lower",
    });
  }
  const dig = (sock) =>
    JSON.parse(
      spawnSync(process.execPath, [CLI, "sim", "digest", "--socket", sock, "--json"], { encoding: "utf8" }).stdout,
    );
  const [a, b] = [dig(join(dir, "src.sock")), dig(join(dir, "dst.sock"))];
  console.log(
    `digests: source ${a.digest} (${a.deviceState}), destination ${b.digest} (${b.deviceState}): ${a.digest === b.digest ? "match" : "DIFFER"}`,
  );
  if (a.digest !== b.digest || b.deviceState !== "RUNNING") process.exitCode = 1;
  if (growth.save > SOAK_GROWTH_LIMIT || growth.restore > SOAK_GROWTH_LIMIT) {
    console.log("FAIL: peak RSS grew with the stream's length");
    process.exitCode = 1;
  }
} finally {
  for (const p of sims) p.child.kill("SIGTERM");
  await Promise.all(sims.map((p) => p.done));
  rmSync(dir, { recursive: true, force: true });
}
