// Region protocol driver throughput, in-process, on a simulated device state
// (default 1 GiB) moved in 1 MiB transactions.
//
// 1. Protocol overhead (the target: ≤ 10 % of the data-copy time). save() into
//    a sink that drops the bytes, and resume() from transactions held in
//    memory, against a peer that makes the very same data copies bare, with
//    the same buffers: on save image → data section → driver buffer, on resume
//    the device zeroing its state on entering RESUMING, then transaction →
//    data section → image. overhead = (path − peer) / peer; it holds the
//    driver, the in-process transport and the simulated vendor's bookkeeping.
// 2. End to end through a raw-codec stream: save into src/format's
//    StreamEncoder (codec "raw"), resume from src/migrate's streamItems over
//    the stream bytes; the time spent inside the stream code is shown apart.
//
// 3. VFIO migration v1 against v2, in the same run: save (into memory) and
//    resume of the same state in process, and over vfio-user between two
//    `migstream sim serve` processes (v1: REGION_READ/WRITE of the migration
//    region; v2: DEVICE_FEATURE + MIG_DATA_READ/WRITE). v2 moves its stream in
//    1 MiB reads, v1 its 1 MiB transactions.
//
// Usage: node bench/protocol.mjs [MiB=1024] [txnKiB=1024] [reps=3]
// The sources are bundled with esbuild on the fly (no build step needed).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bundle, bundleCli, startSim, stopSim } from "./bundle.mjs";
import { median, printTable, summary } from "./lib.mjs";

const MIB = Number(process.argv[2] ?? 1024);
const TXN = Number(process.argv[3] ?? 1024) * 1024;
const REPS = Number(process.argv[4] ?? 3);
const SIZE = MIB * 1024 * 1024;
/** Data copies each path makes outside the stream code (see the header). */
const _SAVE_COPIES = 2;
const _RESUME_COPIES = 2;

const lib = await bundle("protocol", [
  'export { SimDevice } from "./src/device/index.ts";',
  'export { fillImage } from "./src/device/pages.ts";',
  'export { InProcessRegion } from "./src/transport/in-process.ts";',
  'export { save, resume } from "./src/protocol/index.ts";',
  'export { saveV2, resumeV2 } from "./src/protocol/v2/index.ts";',
  'export { MigrationSimDevice } from "./src/device/migration-sim.ts";',
  'export { InProcessMigration } from "./src/transport/in-process-v2.ts";',
  'export { openVfioUser } from "./src/transport/vfio-user/migration.ts";',
]);
/** The raw-codec stream, if src/format has its encoder (and src/migrate its item reader). */
let stream = null;
let streamNote = "raw-codec stream (src/format StreamEncoder → src/migrate streamItems)";
try {
  stream = await bundle("stream", [
    'export { StreamEncoder } from "./src/format/encoder.ts";',
    'export { streamItems } from "./src/migrate/items.ts";',
  ]);
} catch (e) {
  streamNote = `in-memory list of transactions (stream encoder unavailable: ${String(e.message ?? e).split("\n")[0]})`;
}

const now = () => performance.now();
const RUNNING = new Uint8Array([1, 0, 0, 0]);

/** Sink/item wrappers that add up the time spent inside them. */
function timedSink(sink, clock) {
  const timed =
    (f) =>
    async (...a) => {
      const t0 = now();
      try {
        return await f(...a);
      } finally {
        clock.ms += now() - t0;
      }
    };
  return { phase: timed((p, i) => sink.phase(p, i)), transaction: timed((d) => sink.transaction(d)) };
}

async function* timedItems(source, clock) {
  const it = source[Symbol.asyncIterator] ? source[Symbol.asyncIterator]() : source[Symbol.iterator]();
  for (;;) {
    const t0 = now();
    const r = await it.next();
    clock.ms += now() - t0;
    if (r.done) return;
    yield r.value;
  }
}

console.log(`Generating a ${MIB} MiB device state...`);
const image = new Uint8Array(SIZE);
lib.fillImage(image, 1);
const devOptions = { txnSize: TXN, checksums: false, endDigest: false };
const src = new lib.SimDevice({ ...devOptions, image });
const dst = new lib.SimDevice({ ...devOptions, stateSize: SIZE, empty: true });
const srcIO = new lib.InProcessRegion(src);
const dstIO = new lib.InProcessRegion(dst);

async function toRunning() {
  if ((src.state & 7) !== 1) await src.write(0, RUNNING); // the source ends each save in STOP
}

function checkRestored() {
  if (Buffer.compare(dst.image.bytes, src.image.bytes) !== 0)
    throw new Error("the restored state differs from the source");
  const v = [...src.violations, ...dst.violations];
  if (v.length > 0) throw new Error(`protocol violations: ${JSON.stringify(v[0])}`);
}

/** Runs of the overhead part: cheap, so more of them (path and peer alternate, to share any drift). */
const PAIRS = Math.max(REPS, 7);

/** CPU ms (user + system) of this process so far: unlike wall time, not inflated by other processes. */
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** Transactions to run before timing, so the driver is compiled (JIT) as in a long migration. */
const WARMUP_TXNS = 2048;

/** Timings of `a` and of `b`, alternately `PAIRS` times after a warm-up: medians of wall and CPU ms. */
async function timePair(a, b) {
  const warmups = Math.max(1, Math.ceil(WARMUP_TXNS / Math.ceil(SIZE / TXN)));
  for (let i = 0; i < warmups; i++) {
    await a();
    await b();
  }
  const runs = [a, b].map(() => ({ wall: [], cpu: [] }));
  for (let r = 0; r < PAIRS; r++) {
    for (const [i, f] of [a, b].entries()) {
      const w0 = now();
      const c0 = cpu();
      await f();
      runs[i].cpu.push(cpu() - c0);
      runs[i].wall.push(now() - w0);
    }
  }
  return runs.map((x) => ({ wall: median(x.wall), cpu: median(x.cpu) }));
}

// ---- 1. protocol overhead against bare copies ---------------------------------

const txns = [];
await toRunning();
await lib.save(srcIO, { phase() {}, transaction: (d) => void txns.push(d.slice()) });
const items = [...txns.map((data) => ({ kind: "transaction", data })), { kind: "verified" }];
await lib.resume(dstIO, items);
checkRestored();

const section = new Uint8Array(TXN);
const driverBuf = new Uint8Array(TXN);
const RECORD_HEADERS = 48; // the vendor's transaction header and DATA record header, not state bytes
const payload = TXN - RECORD_HEADERS;

const [saveT, saveCopyT] = await timePair(
  async () => {
    await toRunning();
    await lib.save(srcIO, { phase() {}, transaction() {} });
  },
  () => {
    for (let at = 0; at < SIZE; at += payload) {
      const k = Math.min(payload, SIZE - at);
      section.set(image.subarray(at, at + k), RECORD_HEADERS);
      driverBuf.set(section.subarray(0, k + RECORD_HEADERS));
    }
  },
);
const scratch = dst.image.bytes; // the memory the resume writes (overwritten by every resume anyway)
const [resumeT, resumeCopyT] = await timePair(
  () => lib.resume(dstIO, items),
  () => {
    scratch.fill(0);
    let at = 0;
    for (const t of txns) {
      section.set(t);
      const k = Math.max(0, Math.min(t.length - RECORD_HEADERS, SIZE - at));
      scratch.set(section.subarray(RECORD_HEADERS, RECORD_HEADERS + k), at);
      at += k;
    }
  },
);
await lib.resume(dstIO, items);
checkRestored();

const gbps = (ms) => SIZE / (ms / 1000) / 1e9;
const share = (ms, peer) => `${((100 * (ms - peer)) / peer).toFixed(1)} %`;
const overheadRow = (path, t, peer) => ({
  path,
  "wall ms": t.wall,
  "GB/s": gbps(t.wall),
  "CPU ms": t.cpu,
  "peer wall ms": peer.wall,
  "peer GB/s": gbps(peer.wall),
  "peer CPU ms": peer.cpu,
  "overhead (CPU)": share(t.cpu, peer.cpu),
  "overhead (wall)": share(t.wall, peer.wall),
});
console.log(
  `\nState ${MIB} MiB, ${TXN / 1024} KiB transactions (${txns.length} per save), medians of ${PAIRS} alternating runs after a warm-up of ≥ ${WARMUP_TXNS} transactions.`,
);
summary({
  figure: "save, region protocol",
  ours: gbps(saveT.wall),
  peer: "the same copies done bare",
  theirs: gbps(saveCopyT.wall),
  unit: "GB/s",
});
summary({
  figure: "resume, region protocol",
  ours: gbps(resumeT.wall),
  peer: "the same copies done bare",
  theirs: gbps(resumeCopyT.wall),
  unit: "GB/s",
});
printTable("Protocol overhead against the same copies done bare", [
  overheadRow("save (sink drops bytes)", saveT, saveCopyT),
  overheadRow("resume (items in memory)", resumeT, resumeCopyT),
]);
txns.length = 0;
items.length = 0;

// ---- 2. end to end through a raw-codec stream ---------------------------------

if (!stream) {
  console.log(`\nNo stream rows: ${streamNote}.`);
} else {
  const saves = [];
  const resumes = [];
  for (let r = 0; r < REPS; r++) {
    await toRunning();
    const chunks = [];
    const enc = new stream.StreamEncoder((b) => void chunks.push(b), { codec: "raw", maxTransaction: TXN });
    const w = enc.device(0);
    const sClock = { ms: 0 };
    let t0 = now();
    await lib.save(srcIO, timedSink(w, sClock));
    const t1 = now();
    await w.end();
    await enc.finish();
    const sTotal = now() - t0;
    saves.push({ ms: sTotal, stream: sClock.ms + (sTotal - (t1 - t0)) });
    const rClock = { ms: 0 };
    t0 = now();
    await lib.resume(dstIO, timedItems(stream.streamItems(chunks), rClock));
    resumes.push({ ms: now() - t0, stream: rClock.ms });
    if (r === 0) checkRestored();
  }
  const row = (path, runs) => {
    const ms = median(runs.map((x) => x.ms));
    const inStream = median(runs.map((x) => x.stream));
    return {
      path,
      ms,
      "GB/s": gbps(ms),
      "in stream code ms": inStream,
      "rest ms": ms - inStream,
      "rest GB/s": gbps(ms - inStream),
    };
  };
  console.log(`\nStream: ${streamNote}; medians of ${REPS} runs.`);
  printTable("End to end through a raw-codec stream", [row("save → stream", saves), row("stream → resume", resumes)]);
}

// ---- 3. v1 against v2, in process and between two processes -------------------

/** Saved data in one reused arena: the same memory for every run and both generations. */
const arena = new Uint8Array(SIZE + 64 * 1024 * 1024);
function saving() {
  const items = [];
  let at = 0;
  const buffer = (n) => {
    const b = arena.subarray(at, at + n);
    at += n;
    return b;
  };
  return {
    items,
    buffer,
    sink: {
      protocol: (p) => void items.push({ kind: "protocol", protocol: p }),
      phase: () => {},
      transaction: (d) => void items.push({ kind: "transaction", data: d }),
    },
  };
}

/** Median ms of `reps` save+resume runs of `make()`'s pair; the restored state is checked once. */
async function generationRuns(label, make, saveFn, resumeFn, reps) {
  const saves = [];
  const resumes = [];
  for (let r = 0; r < reps; r++) {
    const { src, dst, check, done } = await make();
    const s = saving();
    let t0 = now();
    await saveFn(src, s.sink, { precopy: false, buffer: s.buffer });
    saves.push(now() - t0);
    s.items.push({ kind: "verified" });
    t0 = now();
    await resumeFn(dst, s.items);
    resumes.push(now() - t0);
    if (r === 0) await check();
    await done();
  }
  return [
    { path: `${label} save`, ms: median(saves), "GB/s": gbps(median(saves)) },
    { path: `${label} resume`, ms: median(resumes), "GB/s": gbps(median(resumes)) },
  ];
}

{
  const rows = [];
  // In process: v1 region over the simulated v1 device (as above), v2 over the simulated v2 device.
  const v1src = new lib.SimDevice({ ...devOptions, image });
  // Both generations restore into one destination each, reused (no first-touch of fresh memory in the timings).
  const dst1 = new lib.SimDevice({ ...devOptions, stateSize: SIZE, empty: true });
  rows.push(
    ...(await generationRuns(
      "v1 in process",
      async () => {
        if ((v1src.state & 7) !== 1) await v1src.write(0, RUNNING);
        return {
          src: new lib.InProcessRegion(v1src),
          dst: new lib.InProcessRegion(dst1),
          check: async () =>
            void (
              Buffer.compare(dst1.image.bytes, image) === 0 ||
              (() => {
                throw new Error("v1 restore differs");
              })()
            ),
          done: async () => {},
        };
      },
      lib.save,
      lib.resume,
      REPS,
    )),
  );
  const v2src = new lib.MigrationSimDevice({ image, endDigest: false });
  const v2dst = new lib.MigrationSimDevice({ stateSize: SIZE, empty: true, endDigest: false });
  rows.push(
    ...(await generationRuns(
      "v2 in process",
      async () => {
        if (v2src.state !== 2) await new lib.InProcessMigration(v2src).setState(2);
        if (v2dst.state !== 2) await new lib.InProcessMigration(v2dst).setState(2);
        return {
          src: new lib.InProcessMigration(v2src),
          dst: new lib.InProcessMigration(v2dst),
          check: async () =>
            void (
              Buffer.compare(v2dst.image.bytes, image) === 0 ||
              (() => {
                throw new Error("v2 restore differs");
              })()
            ),
          done: async () => {},
        };
      },
      lib.saveV2,
      lib.resumeV2,
      REPS,
    )),
  );
  // Between processes over vfio-user.
  let cli = null;
  try {
    cli = await bundleCli();
  } catch (e) {
    console.log(`\nNo cross-process rows: the CLI does not bundle (${String(e.message ?? e).split("\n")[0]}).`);
  }
  if (cli) {
    const dir = mkdtempSync(join(tmpdir(), "migstream-bench-v2-"));
    try {
      for (const [gen, extra] of [
        ["v1", ["--transaction-size", `${TXN}`]],
        ["v2", ["--protocol", "v2"]],
      ]) {
        const common = ["--state-size", `${SIZE}`, ...extra];
        rows.push(
          ...(await generationRuns(
            `${gen} vfio-user, 2 processes`,
            async () => {
              const [a, b] = await Promise.all([
                startSim(cli, join(dir, `${gen}-src.sock`), [...common, "--seed", "1"]),
                startSim(cli, join(dir, `${gen}-dst.sock`), [...common, "--empty"]),
              ]);
              const src = await lib.openVfioUser(join(dir, `${gen}-src.sock`), { timeoutMs: 60_000 });
              const dst = await lib.openVfioUser(join(dir, `${gen}-dst.sock`), { timeoutMs: 60_000 });
              return {
                src,
                dst,
                check: async () => {},
                done: async () => {
                  await src.close();
                  await dst.close();
                  await Promise.all([stopSim(a), stopSim(b)]);
                },
              };
            },
            gen === "v1" ? lib.save : lib.saveV2,
            gen === "v1" ? lib.resume : lib.resumeV2,
            REPS,
          )),
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  console.log(
    `\nVFIO migration v1 against v2: ${MIB} MiB (suspend path: no pre-copy), save into memory then resume; medians of ${REPS} runs. v2/v1 is the time ratio (above 1: v2 slower).`,
  );
  const byPath = new Map(rows.map((r) => [r.path, r]));
  printTable(
    "v1 against v2",
    rows.map((r) => {
      const peer = byPath.get(r.path.replace(/^v2/, "v1"));
      return { ...r, "v2/v1": r.path.startsWith("v2") && peer ? (r.ms / peer.ms).toFixed(2) : "" };
    }),
  );
}
