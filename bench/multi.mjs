// Devices that migrate together against the same devices migrated one after
// another, end to end between processes: N source and N destination
// `migstream sim serve` processes (v1 and v2 alternating, SIZE MiB each; the
// sources dirty their state during pre-copy), migrated over loopback TCP by
// this process (source and destination side both here, so both ends use one
// clock):
//   together:  saveDevicesTo — one stream, every device's pre-copy at once
//              under one policy, one stop-and-copy window — into restoreDevices,
//              which starts the devices once all have loaded;
//   serially:  for each device in turn, saveTo into restoreDevice (its own
//              stream, its own pre-copy and downtime).
// Both use the same per-device policy: pre-copy ends at most 8 iterations in,
// or when the pending state is at most 1 MiB per device (together: N MiB in
// total). Reported: wall time, and downtime — the VM's window (first device
// stopped → last device RUNNING on the destination: with devices migrated
// one after another, a VM's devices cannot run on both hosts, so the VM is
// down from the first device's stop to the last device's start) and each
// device's own (its stop → its RUNNING), medians of REPS alternating runs.
//
// Reading it: together, every device stops at the same moment and the VM is
// down once; its window is bound by the simulated devices' own work when they
// stop and when they validate (each hashes its whole state, in its own
// process): four of them at once share the machine's cores, so each device's
// own downtime is longer than when it migrates alone, while the VM's is a
// fraction of the serial window, which spans every device's whole migration.
//
// Usage: node bench/multi.mjs [MiB per device=256] [devices=4] [reps=3]
// (npm run bench:protocol runs it after bench/protocol.mjs with the defaults.)
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { bundle, bundleCli, startSim, stopSim } from "./bundle.mjs";
import { median, printTable, summary } from "./lib.mjs";

const direct = process.argv[1] === fileURLToPath(import.meta.url);
const arg = (i, d) => Number((direct ? process.argv[i] : undefined) ?? d);
const MIB = arg(2, 256);
const N = arg(3, 4);
const REPS = arg(4, 3);
const SIZE = MIB << 20;
const TXN = 1 << 20;
const PER_DEVICE_THRESHOLD = 1 << 20;
const MAX_ITERATIONS = 8;

const lib = await bundle("multi", [
  'export { saveDevicesTo, restoreDevices, saveTo, restoreDevice, TcpListener, TcpDestination, devicesAck, failureAck } from "./src/migrate/index.ts";',
  'export { openVfioUser } from "./src/transport/vfio-user/migration.ts";',
  'export { restartSource } from "./src/protocol/drive.ts";',
]);
const cli = await bundleCli();
const now = () => performance.now();

/** v1 (1 MiB buffers, 8 of their 256 pages dirtied per pre-copy buffer) and v2 (32 pages per MiB read), alternating. */
const kind = (k) =>
  k % 2 === 0 ? ["--transaction-size", `${TXN}`, "--dirty-rate", "8"] : ["--protocol", "v2", "--dirty-rate", "32"];
const dstKind = (k) => (k % 2 === 0 ? ["--transaction-size", `${TXN}`] : ["--protocol", "v2"]);

/** One network leg: `send(sink, confirm)` on the source side, `receive(chunks)` on the destination side (its result acked). */
async function overTcp(send, receive, ack) {
  const listener = await lib.TcpListener.listen({ host: "127.0.0.1", port: 0 });
  const receiving = (async () => {
    const peer = await listener.accept();
    try {
      const r = await receive(peer.chunks());
      await peer.respond(ack(r));
      return r;
    } catch (e) {
      await peer.respond(lib.failureAck(e));
      throw e;
    }
  })();
  receiving.catch(() => {});
  const dest = await lib.TcpDestination.connect(listener.address, { idleTimeoutMs: 600_000 });
  try {
    const [sent, received] = await Promise.all([send(dest.sink, () => dest.confirm(600_000)), receiving]);
    return { sent, received };
  } finally {
    await listener.close();
  }
}

const encoder = { codec: "raw", maxTransaction: TXN };

async function together(src, dst) {
  const t0 = now();
  const { sent, received } = await overTcp(
    (sink, confirm) =>
      lib.saveDevicesTo(
        src.map((device, k) => ({ device, info: { name: `d${k}` } })),
        sink,
        {
          encoder,
          confirm,
          save: { policy: { maxIterations: MAX_ITERATIONS, pendingThreshold: N * PER_DEVICE_THRESHOLD } },
        },
      ),
    (chunks) =>
      lib.restoreDevices(
        dst.map((device) => ({ device })),
        chunks,
      ),
    (r) => lib.devicesAck(r.devices),
  );
  const wall = now() - t0;
  const stops = sent.devices.map((d) => d.stopcopyAt);
  const runs = received.devices.map((d) => d.startedAt);
  return {
    wall,
    window: Math.max(...runs) - Math.min(...stops),
    own: runs.map((r, k) => r - stops[k]),
    iterations: sent.devices.map((d) => d.summary.iterations),
  };
}

async function serially(src, dst) {
  const t0 = now();
  const stops = [];
  const runs = [];
  const iterations = [];
  for (const [k, device] of src.entries()) {
    const { sent } = await overTcp(
      (sink, confirm) =>
        lib.saveTo(device, sink, {
          encoder,
          confirm,
          save: { policy: { maxIterations: MAX_ITERATIONS, pendingThreshold: PER_DEVICE_THRESHOLD } },
        }),
      async (chunks) => {
        const s = await lib.restoreDevice(dst[k], chunks);
        runs[k] = now();
        return s;
      },
      (s) => ({ ok: true, started: s.started, transactions: s.transactions, bytes: s.bytes }),
    );
    stops[k] = sent.stopcopyAt;
    iterations[k] = sent.summary.iterations;
  }
  const wall = now() - t0;
  return { wall, window: runs[N - 1] - stops[0], own: runs.map((r, k) => r - stops[k]), iterations };
}

const dir = mkdtempSync(join(tmpdir(), "migstream-bench-multi-"));
const procs = [];
try {
  console.log(`Starting ${2 * N} sim serve processes (${N} devices × ${MIB} MiB, v1 and v2 alternating)...`);
  const sockets = { src: [], dst: [] };
  for (let k = 0; k < N; k++) {
    sockets.src.push(join(dir, `s${k}.sock`));
    sockets.dst.push(join(dir, `d${k}.sock`));
  }
  procs.push(
    ...(await Promise.all([
      ...sockets.src.map((s, k) => startSim(cli, s, ["--state-size", `${SIZE}`, "--seed", `${k + 1}`, ...kind(k)])),
      ...sockets.dst.map((s, k) => startSim(cli, s, ["--state-size", `${SIZE}`, "--empty", ...dstKind(k)])),
    ])),
  );
  const open = (list) => Promise.all(list.map((s) => lib.openVfioUser(s, { timeoutMs: 600_000 })));
  const src = await open(sockets.src);
  const dst = await open(sockets.dst);
  const runs = { together: [], serially: [] };
  for (let r = 0; r < REPS; r++) {
    for (const [name, f] of [
      ["together", together],
      ["serially", serially],
    ]) {
      runs[name].push(await f(src, dst));
      await Promise.all(src.map((d) => lib.restartSource(d))); // each source was left stopped: back to RUNNING for the next run
    }
  }
  await Promise.all([...src, ...dst].map((d) => d.close()));
  const row = (name, list) => {
    const own = list.map((x) => x.own);
    return {
      path: name,
      "wall ms": median(list.map((x) => x.wall)),
      "VM downtime ms (first stop → last RUNNING)": median(list.map((x) => x.window)),
      "longest device downtime ms": median(own.map((o) => Math.max(...o))),
      "sum of device downtimes ms": median(own.map((o) => o.reduce((a, b) => a + b, 0))),
      "iterations per device": list[0].iterations.join("/"),
    };
  };
  const a = row("together (one stream, one window)", runs.together);
  const b = row("one after another", runs.serially);
  console.log(
    `\n${N} devices × ${MIB} MiB over vfio-user (sim serve processes) and loopback TCP, raw codec; pre-copy ≤ ${MAX_ITERATIONS} iterations or ≤ 1 MiB pending per device; medians of ${REPS} alternating runs.`,
  );
  printTable("Devices migrated together against one after another", [a, b]);
  const vm = "VM downtime ms (first stop → last RUNNING)";
  const peer = `the same ${N} devices one after another`;
  summary({
    figure: `${N} × ${MIB} MiB devices together: VM downtime`,
    ours: a[vm],
    peer,
    theirs: b[vm],
    unit: "ms",
    better: "lower",
  });
  summary({
    figure: `${N} × ${MIB} MiB devices together: wall time`,
    ours: a["wall ms"],
    peer,
    theirs: b["wall ms"],
    unit: "ms",
    better: "lower",
  });
  console.log(
    `\nserial / together: wall ${(b["wall ms"] / a["wall ms"]).toFixed(2)}x, VM downtime ${(b["VM downtime ms (first stop → last RUNNING)"] / a["VM downtime ms (first stop → last RUNNING)"]).toFixed(1)}x`,
  );
} finally {
  await Promise.all(procs.map(stopSim));
  rmSync(dir, { recursive: true, force: true });
}
