// `migstream demo` (= `npm start`): a whole live migration on this machine.
// Two simulated devices run as separate `sim serve` processes (under Deno, in
// this process behind the same sockets: see sim-procs.ts); the source is
// saved over vfio-user with pre-copy while it keeps dirtying its state, the
// stream goes through the encoder over a loopback TCP connection to the
// destination, which restores while it arrives; then `sim digest` of both
// must match. Prints the migration report; exit 0 only if the digests match.
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MigstreamError } from "../../errors.js";
import type { EncoderStats } from "../../format/encoder.js";
import { restoreDevice } from "../../migrate/restore-stream.js";
import { saveDevice } from "../../migrate/save-to.js";
import { StatsCollector } from "../../migrate/stats.js";
import { failureAck } from "../../network/ack.js";
import { TcpDestination, TcpListener } from "../../network/tcp.js";
import type { ResumeSummary } from "../../protocol/progress.js";
import { type OpenedDevice, openDevice } from "../../transport/spec.js";
import { intOption, sizeOption, usageOf } from "../args.js";
import type { Command } from "../command.js";
import { DEMO_MAX_DEVICES, demoDevices } from "../demo-devices.js";
import { ENCODING_HELP, encodingFrom } from "../encoding.js";
import { coded, ProgressLine, phaseLabel } from "../progress.js";
import { renderReport, saveReport } from "../report.js";
import { type PrecopyDefaults, precopyHelp, precopyPolicy, savingCommand } from "../save-options.js";
import { type SimProc, startSim } from "../sim-procs.js";
import { paint, styleFor } from "../style.js";
import { bytes } from "../units.js";

/** Demo defaults: big enough to show the codecs and pre-copy, small enough for seconds on 2 cores. */
export const DEMO_STATE_SIZE = "64MiB";
export const DEMO_TRANSACTION_SIZE = "1MiB";
/** Pages the source changes per acknowledged pre-copy buffer (1 MiB = 256 pages: 12.5%). */
export const DEMO_DIRTY_RATE = 32;
export const DEMO_PRECOPY_ITERATIONS = 8;
export const DEMO_PRECOPY_THRESHOLD = "256KiB";
const DEMO_PRECOPY: PrecopyDefaults = { iterations: DEMO_PRECOPY_ITERATIONS, threshold: DEMO_PRECOPY_THRESHOLD };

const HELP = `usage: migstream demo [options]

Runs a live migration between two simulated devices on this machine and
checks it: two \`migstream sim serve\` processes (source and destination,
vfio-user over UNIX sockets); the source is saved with pre-copy while it keeps
changing its state; the stream is encoded and sent over a loopback TCP
connection; the destination restores while it arrives and is started; then
\`migstream sim digest\` of both must be equal. (Under Deno the two devices
are served by this process, over the same sockets.) Prints the report: phases,
iterations, raw bytes against the wire and QEMU's raw layout, ratio, zero and
dedup savings, time per phase, downtime. Exit 0 only if the digests match.
  --state-size BYTES         device state (default ${DEMO_STATE_SIZE})
  --transaction-size BYTES   bytes per saved buffer (default ${DEMO_TRANSACTION_SIZE})
  --dirty-rate PAGES         pages the source changes per pre-copy buffer (default ${DEMO_DIRTY_RATE})
  --seed N                   seed of the source's state (default 1)
  --protocol v1|v2|mixed     VFIO migration protocol of the devices (default v1):
                             v2 serves them as libvfio-user v2 devices (DEVICE_FEATURE,
                             MIG_DATA_READ/WRITE); --dirty-rate then counts pages per MiB read;
                             mixed (with --devices): v1 and v2 devices alternate
  --devices N                migrate N devices together (a VM's devices: N source and N
                             destination processes, one stream, one stop-and-copy window;
                             default 1, at most ${DEMO_MAX_DEVICES}); device k is seeded --seed + k
${precopyHelp(DEMO_PRECOPY)}
${ENCODING_HELP}
  --json                     print the report as JSON on stdout
  -q, --quiet                no progress line, no report (the exit code tells)

examples:
  migstream demo
  migstream demo --state-size 256MiB --codec zstd --dedup --threads 2
  migstream demo --protocol v2
  migstream demo --devices 3 --protocol mixed --state-size 32MiB`;

export const demo: Command = savingCommand({
  name: "demo",
  summary: "run a verified live migration between two simulated devices (npm start)",
  help: HELP,
  options: {
    "state-size": { type: "string" },
    "transaction-size": { type: "string" },
    "dirty-rate": { type: "string" },
    seed: { type: "string" },
    protocol: { type: "string" },
    devices: { type: "string" },
  },
  async run(v, io) {
    const style = styleFor(io, v);
    const stateSize = v["state-size"] ?? DEMO_STATE_SIZE;
    const txn = v["transaction-size"] ?? DEMO_TRANSACTION_SIZE;
    sizeOption("demo", "--state-size", stateSize);
    sizeOption("demo", "--transaction-size", txn);
    const dirty = String(intOption("demo", "--dirty-rate", v["dirty-rate"], DEMO_DIRTY_RATE, 0, 2 ** 31));
    const seed = String(intOption("demo", "--seed", v.seed, 1, 0, 0xffff_ffff));
    const policy = precopyPolicy("demo", v, DEMO_PRECOPY);
    const protocol = v.protocol ?? "v1";
    const count = intOption("demo", "--devices", v.devices, 1, 1, DEMO_MAX_DEVICES);
    if (protocol !== "v1" && protocol !== "v2" && protocol !== "mixed")
      throw usageOf("demo", `--protocol ${protocol} is none of v1, v2, mixed`);
    if (protocol === "mixed" && count < 2) throw usageOf("demo", "--protocol mixed needs --devices 2 or more");
    const v2 = protocol === "v2";
    const enc = await encodingFrom("demo", v);
    const cli = io.self ?? process.argv[1]; // the bundled CLI (dist/cli.js)
    if (count > 1) {
      try {
        return await demoDevices(io, style, enc, {
          count,
          protocol,
          stateSize,
          txn,
          dirty,
          seed: Number(seed),
          policy,
          cli,
        });
      } finally {
        await enc.close();
      }
    }
    // No directory of our own: each child removes its socket file when it stops, even after we were killed.
    const stem = join(tmpdir(), `migstream-demo-${process.pid}-${randomBytes(6).toString("hex")}`);
    const sims: SimProc[] = [];
    const devices: OpenedDevice[] = [];
    const progress = new ProgressLine(io.stderr, style, "demo");
    try {
      progress.update({ phase: `starting two devices (${stateSize} each)`, bytes: 0 });
      // A v2 device streams its state: no transaction size; the stream is read in 1 MiB buffers.
      const common: Record<string, string> = v2 ? { state: stateSize, protocol: "v2" } : { state: stateSize, txn };
      const started = await Promise.allSettled([
        startSim(cli, `${stem}-source.sock`, { ...common, seed, dirty }),
        startSim(cli, `${stem}-destination.sock`, { ...common, empty: "1" }),
      ]);
      for (const r of started) if (r.status === "fulfilled") sims.push(r.value);
      for (const r of started) if (r.status === "rejected") throw r.reason;
      const [src, dst] = sims;
      const srcDev = await openDevice(`vfio-user:${src.socket}`);
      devices.push(srcDev);
      const dstDev = await openDevice(`vfio-user:${dst.socket}`);
      devices.push(dstDev);

      // Destination: listen on loopback, restore while the stream arrives.
      const listener = await TcpListener.listen(
        { host: "127.0.0.1", port: 0 },
        { keyed: enc.key !== undefined, encrypted: enc.options.encrypt === true },
      );
      const stats = new StatsCollector();
      let runningAt = 0;
      const restoring = (async (): Promise<ResumeSummary> => {
        const peer = await listener.accept();
        try {
          const summary = await restoreDevice(dstDev, peer.chunks(), {
            key: enc.key,
            challenge: peer.challenge,
            onEvent: (ev) => stats.add(ev),
            signal: io.signal,
            checkFit: true,
          });
          runningAt = performance.now();
          await peer.respond({
            ok: true,
            started: summary.started,
            transactions: summary.transactions,
            bytes: summary.bytes,
          });
          return summary;
        } catch (e) {
          await peer.respond(failureAck(e));
          throw e;
        }
      })();
      restoring.catch(() => {});

      // Source: save with pre-copy into the encoder, over the connection.
      const dest = await TcpDestination.connect(listener.address);
      let encoded: EncoderStats | undefined;
      const saving = saveDevice(srcDev, dest.sink, {
        encoder: enc.key ? { ...enc.options, challenge: dest.hello.challenge } : enc.options,
        onEncoder: (e) => (encoded = e.stats),
        info: { name: `simulated ${protocol} device (demo source)` },
        confirm: () => dest.confirm(),
        save: {
          policy,
          signal: io.signal,
          onProgress: (p) => {
            progress.update({
              phase: phaseLabel(p.phase, p.iteration),
              bytes: p.bytes,
              wire: dest.sink.bytes,
              pending: p.pending,
              coded: coded(encoded),
            });
          },
        },
      });
      const [saved, restored] = await Promise.allSettled([saving, restoring]);
      await listener.close();
      if (saved.status === "rejected") throw saved.reason;
      if (restored.status === "rejected") throw restored.reason;
      await Promise.all(devices.splice(0).map((d) => d.close()));

      progress.update({ phase: "comparing digests", bytes: saved.value.summary.bytes });
      const [ds, dd] = await Promise.all([src.digest(), dst.digest()]);
      progress.clear();
      const rep = saveReport(
        saved.value,
        `sim${v2 ? " v2" : ""} source (${stateSize}, seed ${seed}, dirty ${dirty} pages/${v2 ? "MiB read" : "buffer"})`,
        "sim destination over loopback TCP",
      );
      rep.downtimeMs = runningAt - saved.value.stopcopyAt;
      rep.downtimeEnd = "destination RUNNING";
      rep.restored = {
        started: restored.value.started,
        transactions: restored.value.transactions,
        bytes: restored.value.bytes,
      };
      const match = ds.digest === dd.digest && dd.deviceState === "RUNNING";
      rep.digests = { source: ds.digest, destination: dd.digest, match };
      const stream = stats.result(saved.value.wireBytes);
      if (style.json) {
        io.stdout.write(
          `${JSON.stringify({ ok: match, ...rep, destinationState: dd.deviceState, codecs: stream.codecs })}\n`,
        );
      } else if (!style.quiet) {
        const codecs = Object.entries(stream.codecs)
          .map(([c, u]) => `${c} ${bytes(u.rawBytes)} → ${bytes(u.codedBytes)}`)
          .join(", ");
        io.stdout.write(renderReport(rep, style.color));
        io.stdout.write(`${paint(style.color, "bold", "codecs")}    ${codecs}\n`);
        io.stdout.write(
          match
            ? `${paint(style.color, "green", "verified")}: the destination (RUNNING) holds exactly the source's state (initial destination digest ${dst.initialDigest})\n`
            : `${paint(style.color, "red", "FAILED")}: destination ${dd.digest} (${dd.deviceState}) differs from source ${ds.digest}\n`,
        );
      }
      if (!match) {
        throw new MigstreamError(
          "DEVICE",
          `the destination's digest ${dd.digest} (${dd.deviceState}) differs from the source's ${ds.digest}`,
        );
      }
      return 0;
    } finally {
      progress.clear();
      await Promise.allSettled(devices.map((d) => d.close()));
      await Promise.allSettled(sims.map((s) => s.stop()));
      await enc.close();
    }
  },
});
