// `migstream demo --devices N`: the demo's live migration for a VM with N
// devices. N source and N destination `sim serve` processes (under Deno,
// servers in this process); the sources are saved together — their
// pre-copy at once under one policy, one stop-and-copy window — into one
// stream over a loopback TCP connection, which the destination restores
// while it arrives, starting every device only once the whole stream verified
// and all of them loaded; then each pair's digests must match. With
// `--protocol mixed` the devices alternate v1 and v2.
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MigstreamError } from "../errors.js";
import { type RestoreDevicesResult, restoreDevices } from "../migrate/restore-devices.js";
import { StatsCollector } from "../migrate/stats.js";
import { devicesAck, failureAck } from "../network/ack.js";
import { TcpDestination, TcpListener } from "../network/tcp.js";
import type { PrecopyPolicy } from "../protocol/policy.js";
import { type OpenedDevice, openDevice } from "../transport/spec.js";
import type { CliIO } from "./command.js";
import { closeDevices, saveDevicesWithProgress } from "./devices.js";
import type { Encoding } from "./encoding.js";
import { ProgressLine } from "./progress.js";
import { devicesReport, renderReport } from "./report.js";
import { type SimProc, startSim } from "./sim-procs.js";
import { paint, type Style } from "./style.js";

/** Most devices the demo starts (two processes each). */
export const DEMO_MAX_DEVICES = 16;

export interface DemoDevicesSettings {
  count: number;
  /** v1, v2, or mixed (device k is v2 when k is odd). */
  protocol: "v1" | "v2" | "mixed";
  stateSize: string;
  txn: string;
  dirty: string;
  seed: number;
  policy: PrecopyPolicy;
  /** The bundled CLI (for the sim serve processes). */
  cli: string;
}

/** Runs the N-device demo; exit 0 only if every pair's digests match. */
export async function demoDevices(io: CliIO, style: Style, enc: Encoding, o: DemoDevicesSettings): Promise<number> {
  // No directory of our own: each child removes its socket file when it stops, even after we were killed.
  const stem = join(tmpdir(), `migstream-demo-${process.pid}-${randomBytes(6).toString("hex")}`);
  const sims: SimProc[] = [];
  const devices: OpenedDevice[] = [];
  const progress = new ProgressLine(io.stderr, style, "demo");
  const v2 = (k: number) => o.protocol === "v2" || (o.protocol === "mixed" && k % 2 === 1);
  try {
    progress.update({ phase: `starting ${2 * o.count} devices (${o.stateSize} each)`, bytes: 0 });
    const settings = (k: number): Record<string, string> =>
      v2(k) ? { state: o.stateSize, protocol: "v2" } : { state: o.stateSize, txn: o.txn };
    const starts = Array.from({ length: o.count }, (_, k) => [
      startSim(o.cli, `${stem}-source-${k}.sock`, {
        ...settings(k),
        seed: String((o.seed + k) >>> 0),
        dirty: o.dirty,
      }),
      startSim(o.cli, `${stem}-destination-${k}.sock`, { ...settings(k), empty: "1" }),
    ]).flat();
    const started = await Promise.allSettled(starts);
    for (const r of started) if (r.status === "fulfilled") sims.push(r.value);
    for (const r of started) if (r.status === "rejected") throw r.reason;
    const srcSims = sims.filter((_, i) => i % 2 === 0);
    const dstSims = sims.filter((_, i) => i % 2 === 1);
    for (const s of sims) devices.push(await openDevice(`vfio-user:${s.socket}`));
    const src = devices.filter((_, i) => i % 2 === 0);
    const dst = devices.filter((_, i) => i % 2 === 1);
    progress.clear();

    // Destination: listen on loopback, restore every device while the stream arrives.
    const listener = await TcpListener.listen(
      { host: "127.0.0.1", port: 0 },
      { keyed: enc.key !== undefined, encrypted: enc.options.encrypt === true },
    );
    const stats = new StatsCollector();
    const restoring = (async (): Promise<RestoreDevicesResult> => {
      const peer = await listener.accept();
      try {
        const r = await restoreDevices(
          dst.map((device, k) => ({ device, label: `destination ${k}` })),
          peer.chunks(),
          {
            key: enc.key,
            challenge: peer.challenge,
            onEvent: (ev) => stats.add(ev),
            signal: io.signal,
            checkFit: true,
          },
        );
        await peer.respond(devicesAck(r.devices));
        return r;
      } catch (e) {
        await peer.respond(failureAck(e));
        throw e;
      }
    })();
    restoring.catch(() => {});

    // Sources: saved together into one stream over the connection.
    const dest = await TcpDestination.connect(listener.address);
    const names = src.map((_, k) => `simulated ${v2(k) ? "v2" : "v1"} device ${k} (demo source)`);
    const saving = saveDevicesWithProgress(io, style, "demo", src, dest.sink, {
      encoder: enc.key ? { ...enc.options, challenge: dest.hello.challenge } : enc.options,
      names,
      save: { policy: o.policy, signal: io.signal },
      confirm: () => dest.confirm(),
    });
    const [saved, restored] = await Promise.allSettled([saving, restoring]);
    await listener.close();
    if (saved.status === "rejected") throw saved.reason;
    if (restored.status === "rejected") throw restored.reason;
    await closeDevices(devices.splice(0));

    progress.update({ phase: "comparing digests", bytes: 0 });
    const digests = await Promise.all(
      srcSims.map(async (s, k) => ({ source: await s.digest(), destination: await dstSims[k].digest() })),
    );
    progress.clear();
    const { result, ack } = saved.value;
    const rep = devicesReport(
      result,
      names.map((name, k) => ({
        source: `sim ${v2(k) ? "v2" : "v1"} (${o.stateSize}, seed ${(o.seed + k) >>> 0})`,
        name,
      })),
      "sim destinations over loopback TCP",
      { end: "destination RUNNING", doneAt: result.doneAt, devices: ack?.devices },
    );
    rep.restored = ack && { started: ack.started, transactions: ack.transactions, bytes: ack.bytes };
    let match = true;
    rep.devices!.forEach((d, k) => {
      const g = digests[k];
      const ok = g.source.digest === g.destination.digest && g.destination.deviceState === "RUNNING";
      match &&= ok;
      d.digests = { source: g.source.digest, destination: g.destination.digest, match: ok };
    });
    if (style.json) {
      io.stdout.write(`${JSON.stringify({ ok: match, ...rep, codecs: stats.result(result.wireBytes).codecs })}\n`);
    } else if (!style.quiet) {
      io.stdout.write(renderReport(rep, style.color));
      io.stdout.write(
        match
          ? `${paint(style.color, "green", "verified")}: every destination (RUNNING) holds exactly its source's state\n`
          : `${paint(style.color, "red", "FAILED")}: ${rep
              .devices!.filter((d) => !d.digests!.match)
              .map((d) => `device ${d.id}`)
              .join(", ")} differ\n`,
      );
    }
    if (!match)
      throw new MigstreamError(
        "DEVICE",
        `the destinations' digests differ from the sources' (${rep
          .devices!.filter((d) => !d.digests!.match)
          .map((d) => `device ${d.id}`)
          .join(", ")})`,
      );
    return 0;
  } finally {
    progress.clear();
    await closeDevices(devices);
    await Promise.allSettled(sims.map((s) => s.stop()));
  }
}
