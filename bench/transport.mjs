// npm run bench:transport — save and restore of a simulated device state
// across two `migstream sim serve` processes over vfio-user (1 MiB
// transactions, one REGION_READ/REGION_WRITE per transaction), against named
// peers measured in the same run:
//   in-process     the same save/restore with both devices in this process
//                  (no sockets: the device and driver cost alone)
//   REGION_READ /  a plain loop of 1 MiB REGION_READs / REGION_WRITEs against
//   REGION_WRITE   a memory-backed vfio-user server process (the socket-layer
//                  ceiling: framing, copies, syscalls, one round trip each)
//   node:net       the same round trips with bare node:net sockets and a
//                  minimal length-prefixed framing (what Node itself costs)
//   register RTT   8-byte REGION_READs against the memory server: the cost of
//                  one register round trip, so the socket share counts them
//                  too. The vfio-user client is pipelined (RegionIO.pipelined):
//                  a saved buffer waits for two round trips (data_offset with
//                  data_size, then the data with pending_bytes behind it), a
//                  restored one for two (data_offset, then the data with
//                  data_size behind it) — one of each is a register round trip
// The socket share is the time the plain loops need for the same bytes over
// the time the vfio-user save/restore took. Medians of BENCH_REPS runs.
// Usage: node bench/transport.mjs   (env BENCH_STATE_MIB=256, BENCH_REPS=5)
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connectVfioUser, openDevice, VfioUserServer } from "../dist/index.js";
import { resume, save } from "../dist/protocol.js";
import { median, printTable, summary } from "./lib.mjs";

const MIB = 1 << 20;
const TXN = MIB;
const STATE_MIB = Number(process.env.BENCH_STATE_MIB ?? 256);
const STATE = STATE_MIB * MIB;
const REPS = Number(process.env.BENCH_REPS ?? 5);
/** Transactions in flight between a pipelined save and restore. */
const PIPE_DEPTH = 8;
/** device_state reads and writes of one save plus one restore (read-modify-write per transition). */
const STATE_ACCESSES = 14;
/** 8-byte round trips timed per run of the register peer. */
const RTT_SAMPLES = 2000;
/** Data section offset of the memory server's region (as the sim device's). */
const DATA_OFFSET = 4096;
const CLI = fileURLToPath(new URL("../dist/cli.js", import.meta.url));
const SELF = fileURLToPath(import.meta.url);

// ---- helpers ----

/** Child mode: a memory-backed vfio-user server (the plain-loop peer). */
async function memoryServer(path) {
  const mem = new Uint8Array(DATA_OFFSET + TXN).fill(0x5a);
  const vendor = {
    size: mem.length,
    read: async (o, n) => mem.subarray(o, o + n),
    write: async (o, d) => void mem.set(d, o),
    reset: async () => {},
  };
  const server = await VfioUserServer.listen(path, vendor, { onDisconnect: "keep" });
  console.log("listening");
  process.once("SIGTERM", () => server.close());
}

/** Bare node:net framing: u32 size (whole message), u32 kind (0 read, 1 write), then the payload. */
const RAW_HEADER = 8;

/** Reassembles RAW messages from chunks; calls `onMessage(kind, size)` per whole message (the payload is not kept). */
function rawFramer(onMessage) {
  const head = new Uint8Array(RAW_HEADER);
  let headFill = 0;
  let left = 0;
  let kind = 0;
  let size = 0;
  return (chunk) => {
    for (let i = 0; i < chunk.length; ) {
      if (left === 0) {
        const take = Math.min(RAW_HEADER - headFill, chunk.length - i);
        head.set(chunk.subarray(i, i + take), headFill);
        headFill += take;
        i += take;
        if (headFill < RAW_HEADER) return;
        const dv = new DataView(head.buffer);
        size = dv.getUint32(0, true);
        kind = dv.getUint32(4, true);
        headFill = 0;
        left = size - RAW_HEADER;
        if (left === 0) onMessage(kind, size);
        continue;
      }
      const take = Math.min(left, chunk.length - i);
      i += take;
      left -= take;
      if (left === 0) onMessage(kind, size);
    }
  };
}

function rawMessage(kind, payload) {
  const m = new Uint8Array(RAW_HEADER + payload);
  const dv = new DataView(m.buffer);
  dv.setUint32(0, m.length, true);
  dv.setUint32(4, kind, true);
  return m;
}

/** Child mode: a bare node:net server; a read gets 1 MiB back, a write gets a header. */
async function rawServer(path) {
  const net = await import("node:net");
  const big = rawMessage(0, TXN);
  const ack = rawMessage(1, 0);
  const server = net.createServer((sock) => {
    sock.on(
      "data",
      rawFramer((kind) => sock.write(kind === 0 ? big : ack)),
    );
    sock.on("error", () => {});
  });
  await new Promise((r) => server.listen(path, r));
  console.log("listening");
  process.once("SIGTERM", () => server.close());
}

/** Bare node:net loops: `bytes` of 1 MiB reads, then of 1 MiB writes; returns [readMs, writeMs]. */
async function rawLoops(path, bytes) {
  const net = await import("node:net");
  let wake;
  const frame = rawFramer(() => wake());
  // The same receive path as the vfio-user client on Node: reads into one reusable buffer.
  const sock = net.createConnection({
    path,
    onread: { buffer: new Uint8Array(256 << 10), callback: (n, b) => frame(b.subarray(0, n)) },
  });
  await new Promise((r) => sock.once("connect", r));
  const read = rawMessage(0, 0);
  const write = rawMessage(1, TXN);
  const loop = async (msg) => {
    const t0 = performance.now();
    for (let done = 0; done < bytes; done += TXN) {
      await new Promise((r) => {
        wake = r;
        sock.write(msg);
      });
    }
    return performance.now() - t0;
  };
  const r = await loop(read);
  const w = await loop(write);
  sock.destroy();
  return [r, w];
}

/** Spawns a server process and waits for its first stdout line. */
function start(args) {
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    child.stdout.once("data", () => resolve(child));
    child.once("exit", (code) => reject(new Error(`${args.join(" ")} exited ${code}`)));
  });
}

function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once("exit", resolve);
    child.kill("SIGTERM");
  });
}

/** A sink collecting transactions (the driver reads each into its own slice of the arena: no further copy). */
function collector(items) {
  return {
    phase: (phase, iteration) => void items.push({ kind: "phase", phase, iteration }),
    transaction: (data) => void items.push({ kind: "transaction", data }),
  };
}

/**
 * Memory for saved transactions, reused by every run: first-touch page faults
 * cost more than the transfer itself on small VMs, and a real pipeline reuses
 * its buffers too.
 */
const arena = new Uint8Array(STATE + 64 * MIB);
/** A buffer factory handing out consecutive arena slices. */
function arenaSlices() {
  let at = 0;
  return (size) => {
    if (at + size > arena.length) throw new Error("bench arena too small");
    const b = arena.subarray(at, at + size);
    at += size;
    return b;
  };
}
/** A buffer factory cycling through `n` transaction-sized arena slices. */
function arenaRing(n) {
  let i = 0;
  return (size) => {
    const at = (i++ % n) * TXN;
    return arena.subarray(at, at + size);
  };
}

async function saveAll(region) {
  const items = [];
  const t0 = performance.now();
  const summary = await save(region, collector(items), { buffer: arenaSlices() });
  const ms = performance.now() - t0;
  items.push({ kind: "verified" });
  return { items, ms, summary };
}

async function restoreAll(region, items) {
  const t0 = performance.now();
  await resume(region, items);
  return performance.now() - t0;
}

/** Save into restore through a bounded queue, both running at once. */
async function pipelined(src, dst) {
  const queue = [];
  let wake;
  let space;
  let ended = false;
  const signal = () => {
    wake?.();
    wake = undefined;
  };
  const sink = {
    phase: (phase, iteration) => {
      queue.push({ kind: "phase", phase, iteration });
      signal();
    },
    transaction: async (data) => {
      while (queue.length >= PIPE_DEPTH) await new Promise((r) => (space = r));
      queue.push({ kind: "transaction", data });
      signal();
    },
  };
  async function* items() {
    for (;;) {
      if (queue.length) {
        const item = queue.shift();
        space?.();
        space = undefined;
        yield item;
        continue;
      }
      if (ended) return;
      await new Promise((r) => (wake = r));
    }
  }
  const t0 = performance.now();
  // A slot is reused only after PIPE_DEPTH more transactions: by then the restore has written it.
  const saving = save(src, sink, { buffer: arenaRing(PIPE_DEPTH + 2) }).then(() => {
    queue.push({ kind: "verified" });
    ended = true;
    signal();
  });
  await Promise.all([saving, resume(dst, items())]);
  return performance.now() - t0;
}

const mbps = (bytes, ms) => bytes / 1e6 / (ms / 1000);

/** CPU time (user + system) of process `pid` in ms, from /proc (Linux); NaN elsewhere. */
function cpuOf(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = f.slice(f.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}
/** Linux's USER_HZ for /proc times. */
const CLOCK_TICKS = 100;

/** CPU ms of this process and the two device servers since the last call. */
function cpuMeter(srcPid, dstPid) {
  const read = () => {
    const u = process.cpuUsage();
    return [(u.user + u.system) / 1000, cpuOf(srcPid), cpuOf(dstPid)];
  };
  let last = read();
  return () => {
    const now = read();
    const d = now.map((v, i) => v - last[i]);
    last = now;
    return d;
  };
}

async function digests(srcPath, dstPath) {
  const a = await connectVfioUser(srcPath);
  const b = await connectVfioUser(dstPath);
  try {
    return [await a.stateDigest(), await b.stateDigest()];
  } finally {
    await a.close();
    await b.close();
  }
}

// ---- the benchmark ----

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "migstream-bench-"));
  const srcPath = join(dir, "src.sock");
  const dstPath = join(dir, "dst.sock");
  const memPath = join(dir, "mem.sock");
  const rawPath = join(dir, "raw.sock");
  const sim = ["sim", "serve", "--state-size", `${STATE_MIB}MiB`, "--transaction-size", "1MiB"];
  console.log(
    `# transport benchmark (node ${process.version}): ${STATE_MIB} MiB state, 1 MiB transactions, ${REPS} runs, medians`,
  );
  const children = await Promise.all([
    start([CLI, ...sim, "--socket", srcPath, "--seed", "1"]),
    start([CLI, ...sim, "--socket", dstPath, "--empty"]),
    start([SELF, "--memory-server", memPath]),
    start([SELF, "--raw-server", rawPath]),
  ]);
  try {
    const rows = [];
    const t = {
      save: [],
      restore: [],
      pipe: [],
      inSave: [],
      inRestore: [],
      read: [],
      write: [],
      rawRead: [],
      rawWrite: [],
      rtt: [],
    };
    let registerAccesses = 0;
    let bytes = 0;
    let transactions = 0;

    // vfio-user across processes: save, then restore (store and forward); then pipelined.
    const cpu = cpuMeter(children[0].pid, children[1].pid);
    const cpuRows = [];
    const cpuRow = (run, runs) => {
      const [client, source, destination] = cpu().map((v) => v / runs);
      cpuRows.push({ run, "client ms": client, "source server ms": source, "destination server ms": destination });
    };
    // One untimed warm-up run per mode (first-touch page faults, JIT).
    for (let i = 0; i <= REPS; i++) {
      if (i === 1) cpu();
      const src = await connectVfioUser(srcPath);
      const { items, ms, summary } = await saveAll(src);
      await src.close();
      bytes = summary.bytes;
      transactions = summary.transactions;
      // Register round trips waited for: one per buffer on each side (the rest ride behind another
      // access), the pending_bytes reads that start an iteration, and a few state accesses.
      registerAccesses = 2 * summary.transactions + (summary.pendingReads - summary.transactions) + STATE_ACCESSES;
      const dst = await connectVfioUser(dstPath);
      const r = await restoreAll(dst, items);
      await dst.close();
      if (i === 0) continue;
      t.save.push(ms);
      t.restore.push(r);
    }
    cpuRow("save then restore", REPS);
    const [a, b] = await digests(srcPath, dstPath);
    if (a !== b) throw new Error(`destination digest ${b.toString(16)} differs from source ${a.toString(16)}`);
    for (let i = 0; i <= REPS; i++) {
      if (i === 1) cpu();
      const src = await connectVfioUser(srcPath);
      const dst = await connectVfioUser(dstPath);
      const ms = await pipelined(src, dst);
      if (i > 0) t.pipe.push(ms);
      await src.close();
      await dst.close();
    }
    cpuRow("pipelined", REPS);
    const [a2, b2] = await digests(srcPath, dstPath);
    if (a2 !== b2) throw new Error("pipelined: destination digest differs from source");

    // Peer: the same in-process (device + driver cost, no sockets).
    {
      const src = await openDevice(`sim:state=${STATE_MIB}MiB,txn=1MiB,seed=1`);
      const dst = await openDevice(`sim:state=${STATE_MIB}MiB,txn=1MiB,empty=1`);
      for (let i = 0; i <= REPS; i++) {
        const { items, ms } = await saveAll(src);
        await src.write(0, new Uint8Array([1, 0, 0, 0])); // STOP → RUNNING for the next save
        const r = await restoreAll(dst, items);
        if (i === 0) continue;
        t.inSave.push(ms);
        t.inRestore.push(r);
      }
      if ((await src.stateDigest()) !== (await dst.stateDigest())) throw new Error("in-process: digests differ");
    }

    // Peer: plain 1 MiB REGION_READ / REGION_WRITE loops, same byte count.
    {
      const mem = await connectVfioUser(memPath);
      const buf = new Uint8Array(TXN);
      for (let i = 0; i < REPS + 1; i++) {
        let t0 = performance.now();
        for (let done = 0; done < bytes; done += TXN) await mem.read(DATA_OFFSET, TXN, buf);
        const r = performance.now() - t0;
        t0 = performance.now();
        for (let done = 0; done < bytes; done += TXN) await mem.write(DATA_OFFSET, buf);
        const w = performance.now() - t0;
        const t1 = performance.now();
        for (let k = 0; k < RTT_SAMPLES; k++) await mem.read(0, 8, buf);
        const rtt = (performance.now() - t1) / RTT_SAMPLES;
        if (i > 0) {
          t.read.push(r);
          t.write.push(w);
          t.rtt.push(rtt);
        }
      }
      await mem.close();
      for (let i = 0; i < REPS + 1; i++) {
        const [r, w] = await rawLoops(rawPath, bytes);
        if (i === 0) continue;
        t.rawRead.push(r);
        t.rawWrite.push(w);
      }
    }

    const m = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, median(v)]));
    const seqMs = m.save + m.restore;
    rows.push({
      run: "vfio-user save (2 processes)",
      ms: m.save,
      "MB/s": mbps(bytes, m.save),
      "vs in-process": m.inSave / m.save,
    });
    rows.push({
      run: "vfio-user restore",
      ms: m.restore,
      "MB/s": mbps(bytes, m.restore),
      "vs in-process": m.inRestore / m.restore,
    });
    rows.push({
      run: "vfio-user end to end: save then restore",
      ms: seqMs,
      "MB/s": mbps(bytes, seqMs),
      "vs in-process": (m.inSave + m.inRestore) / seqMs,
    });
    rows.push({
      run: "vfio-user end to end: pipelined",
      ms: m.pipe,
      "MB/s": mbps(bytes, m.pipe),
      "vs in-process": (m.inSave + m.inRestore) / m.pipe,
    });
    rows.push({ run: "peer: in-process save", ms: m.inSave, "MB/s": mbps(bytes, m.inSave), "vs in-process": 1 });
    rows.push({
      run: "peer: in-process restore",
      ms: m.inRestore,
      "MB/s": mbps(bytes, m.inRestore),
      "vs in-process": 1,
    });
    rows.push({
      run: "peer: plain 1 MiB REGION_READ loop",
      ms: m.read,
      "MB/s": mbps(bytes, m.read),
      "vs in-process": "",
    });
    rows.push({
      run: "peer: plain 1 MiB REGION_WRITE loop",
      ms: m.write,
      "MB/s": mbps(bytes, m.write),
      "vs in-process": "",
    });
    rows.push({
      run: "peer: bare node:net 1 MiB read round trips",
      ms: m.rawRead,
      "MB/s": mbps(bytes, m.rawRead),
      "vs in-process": "",
    });
    rows.push({
      run: "peer: bare node:net 1 MiB write round trips",
      ms: m.rawWrite,
      "MB/s": mbps(bytes, m.rawWrite),
      "vs in-process": "",
    });
    summary({
      figure: "vfio-user save (2 processes)",
      ours: mbps(bytes, m.save),
      peer: "in-process save",
      theirs: mbps(bytes, m.inSave),
      unit: "MB/s",
    });
    summary({
      figure: "vfio-user restore (2 processes)",
      ours: mbps(bytes, m.restore),
      peer: "in-process restore",
      theirs: mbps(bytes, m.inRestore),
      unit: "MB/s",
    });
    summary({
      figure: "vfio-user save, 1 MiB transactions",
      ours: mbps(bytes, m.save),
      peer: "bare node:net 1 MiB read round trips",
      theirs: mbps(bytes, m.rawRead),
      unit: "MB/s",
    });
    printTable(`save and restore of ${bytes} bytes (${transactions} transactions)`, rows);
    if (cpuRows.every((r) => !Number.isNaN(r["source server ms"])))
      printTable("CPU time per run (user + system; 10 ms resolution)", cpuRows);
    const regMs = registerAccesses * m.rtt;
    const socketMs = m.read + m.write + regMs;
    console.log(
      `\nregister round trip (8-byte REGION_READ): ${(m.rtt * 1000).toFixed(0)} µs; ${registerAccesses} register round trips waited for per save + restore`,
    );
    console.log(
      `socket layer share of save then restore: ${((socketMs / seqMs) * 100).toFixed(0)}% ` +
        `(1 MiB data loops ${(m.read + m.write).toFixed(0)} ms + register round trips ${regMs.toFixed(0)} ms of ${seqMs.toFixed(0)} ms; ` +
        `device work in process: ${(m.inSave + m.inRestore).toFixed(0)} ms)`,
    );
    // End to end = from the start of the save to the end of the restore, device to device.
    for (const [how, ms] of [
      ["save then restore", seqMs],
      ["pipelined", m.pipe],
    ]) {
      const e2e = mbps(bytes, ms);
      console.log(`target ≥ 500 MB/s end to end (${how}): ${e2e.toFixed(0)} MB/s — ${e2e >= 500 ? "met" : "not met"}`);
    }
  } finally {
    await Promise.all(children.map(stop));
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--memory-server") await memoryServer(process.argv[3]);
else if (process.argv[2] === "--raw-server") await rawServer(process.argv[3]);
else await main();
