// `migstream save`: the source side of a migration. Saves a device (live,
// with pre-copy, unless --no-precopy) into a stream file or straight to a
// destination listening with `migstream restore --listen`.
import { MigstreamError } from "../../errors.js";
import type { EncoderOptions, EncoderStats } from "../../format/encoder.js";
import { type SaveDeviceResult, saveDevice } from "../../migrate/save-to.js";
import type { ByteSink } from "../../migrate/sink.js";
import { type Ack, trailingError } from "../../network/ack.js";
import {
  DEFAULT_ACK_TIMEOUT_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  parseTcpUrl,
  TcpDestination,
} from "../../network/tcp.js";
import type { MigratableDevice } from "../../protocol/generation.js";
import type { SaveOptions } from "../../protocol/save.js";
import { type OpenedDevice, SPEC_FORMS } from "../../transport/spec.js";
import { intOption, usageOf } from "../args.js";
import type { CliIO, Command } from "../command.js";
import { closeDevices, deviceNames, openDevices, saveDevicesWithProgress } from "../devices.js";
import { ENCODING_HELP, encodingFrom } from "../encoding.js";
import { type Output, openOutput } from "../files.js";
import { checkHello, requireKeyOffLoopback } from "../network.js";
import { coded, ProgressLine, phaseLabel } from "../progress.js";
import { devicesReport, type MigrationReport, renderReport, saveReport } from "../report.js";
import { type PrecopyDefaults, precopyHelp, precopyPolicy, savingCommand } from "../save-options.js";
import { type Style, styleFor } from "../style.js";

/** Pre-copy defaults: at most this many iterations, then stop-and-copy. */
const SAVE_PRECOPY: PrecopyDefaults = { iterations: 16, threshold: "0" };

const HELP = `usage: migstream save --device SPEC [--device SPEC ...] (-o FILE | --to tcp://HOST:PORT) [options]

Saves the device's migration state into a stream. Live by default: pre-copy
iterations while the device runs, then stop-and-copy (the downtime). With --to
the stream goes straight to a destination running
\`migstream restore --listen\`, which restores while it arrives; the source
waits for the destination to confirm, and if anything fails the source device
is put back in RUNNING. After a successful save the source device is stopped.

Several --device options migrate the devices together, in one stream (a VM's
devices): every device's pre-copy runs at once, the pre-copy options apply to
the set (--precopy-threshold bounds the total pending of all devices,
--precopy-time runs from the first device's pre-copy, --precopy-iterations
counts per device), then every device stops and the stop-and-copy data of
all follows: one downtime, reported per device and for the set. The stream
records the devices in the order given; the destination's --device options
pair with them in that order. If any device fails, every source device is put
back in RUNNING.
  --device SPEC              ${SPEC_FORMS.join("\n                             ")}
                             repeat it to migrate several devices together
  -o, --output FILE          write the stream to FILE (- for stdout)
  --to tcp://HOST:PORT       send it to a listening destination
${precopyHelp(SAVE_PRECOPY)}
  --precopy-time MS          pre-copy time budget
  --no-precopy               no pre-copy: stop the device and copy (suspend)
  --name NAME                device name recorded in the stream (default: the spec);
                             with several devices, once per --device, in the same order
${ENCODING_HELP}
  --insecure                 allow an unauthenticated stream to a non-loopback host
  --connect-timeout MS       keep retrying a refused connection, or a busy destination, this long (default ${DEFAULT_CONNECT_TIMEOUT_MS})
  --timeout MS               longest wait for the destination to take data or answer (default ${DEFAULT_IDLE_TIMEOUT_MS})
  --json                     print the report as JSON on stdout
  -q, --quiet                nothing but errors
  -f, --force                write the stream to stdout (-o -) even when it is a terminal

examples:
  migstream save --device vfio-user:/run/src.sock -o state.mig
  migstream save --device vfio-user:/run/src.sock --to tcp://10.0.0.2:7000 --key-file mig.key --precopy-time 2000
  migstream save --device vfio-user:/run/gpu.sock --device vfio-user:/run/nic.sock -o vm.mig`;

export const save: Command = savingCommand({
  name: "save",
  summary: "save a device's migration state to a file or to a listening destination",
  help: HELP,
  options: {
    device: { type: "string", multiple: true },
    output: { type: "string", short: "o" },
    to: { type: "string" },
    "precopy-time": { type: "string" },
    "no-precopy": { type: "boolean" },
    name: { type: "string", multiple: true },
    insecure: { type: "boolean" },
    "connect-timeout": { type: "string" },
    timeout: { type: "string" },
    force: { type: "boolean", short: "f" },
  },
  async run(v, io) {
    const style = styleFor(io, v);
    const specs = v.device ?? [];
    if (specs.length === 0) throw usageOf("save", "missing --device SPEC");
    const names = deviceNames("save", specs, v.name);
    if ((v.output === undefined) === (v.to === undefined))
      throw usageOf("save", "give exactly one of -o FILE and --to tcp://HOST:PORT");
    if (v.output === "-" && style.json) throw usageOf("save", "--json needs stdout, and -o - writes the stream there");
    const policy = {
      ...precopyPolicy("save", v, SAVE_PRECOPY),
      timeBudgetMs:
        v["precopy-time"] === undefined
          ? undefined
          : intOption("save", "--precopy-time", v["precopy-time"], 0, 0, 2 ** 31),
    };
    const connectTimeoutMs = intOption(
      "save",
      "--connect-timeout",
      v["connect-timeout"],
      DEFAULT_CONNECT_TIMEOUT_MS,
      0,
      2 ** 31,
    );
    const timeoutMs = intOption("save", "--timeout", v.timeout, DEFAULT_IDLE_TIMEOUT_MS, 0, 2 ** 31);
    const addr = v.to === undefined ? undefined : parseTcpUrl(v.to, "--to");
    const enc = await encodingFrom("save", v);
    requireKeyOffLoopback("save", addr, enc.key, v.insecure);
    // Reach the destination (or create the file) before touching the device.
    let dest: TcpDestination | undefined;
    let out: Output | undefined;
    let regions: OpenedDevice[] = [];
    try {
      if (addr) {
        dest = await TcpDestination.connect(addr, { connectTimeoutMs, idleTimeoutMs: timeoutMs, signal: io.signal });
        const untouched =
          specs.length > 1 ? `none of the ${specs.length} devices was touched` : "the device was not touched";
        checkHello(dest, enc.key !== undefined, enc.options.encrypt === true, untouched);
        // Interrupted while waiting on the destination: drop the connection, so the wait ends and the source restarts.
        const d = dest;
        io.signal?.addEventListener("abort", () => d.destroy(), { once: true });
      } else out = await openOutput(v.output!, io, { copy: false, binary: true, force: v.force, command: "save" });
      regions = await openDevices(specs);
      const sink: ByteSink = dest ? dest.sink : out!.sink;
      // A keyed stream to a destination is bound to this connection's challenge (FORMAT.md §7.1).
      const encoder = dest && enc.key ? { ...enc.options, challenge: dest.hello.challenge } : enc.options;
      const target = dest ? dest.url : v.output === "-" ? "stdout" : v.output!;
      const confirm = dest ? () => dest!.confirm(timeoutMs > 0 ? timeoutMs : DEFAULT_ACK_TIMEOUT_MS) : undefined;
      if (regions.length > 1) {
        // Several devices: one stream, one coordinated policy, one stop-and-copy window.
        const many = await saveDevicesWithProgress(io, style, "save", regions, sink, {
          encoder,
          names,
          save: { precopy: v["no-precopy"] !== true, policy, signal: io.signal },
          confirm,
        });
        await out?.commit();
        const ack = many.ack;
        const rep = devicesReport(
          many.result,
          specs.map((source, i) => ({ source, name: names[i] })),
          target,
          {
            end: ack ? (ack.started ? "destination RUNNING" : "destination confirmed") : "stream written",
            doneAt: many.result.doneAt,
            devices: ack?.devices,
          },
        );
        if (ack) rep.restored = { started: ack.started, transactions: ack.transactions, bytes: ack.bytes };
        return reported(io, style, rep, ack);
      }
      const region = regions[0];
      const result = await run(io, style, region, sink, {
        encoder,
        name: names[0],
        save: { precopy: v["no-precopy"] !== true, policy, signal: io.signal },
        confirm,
      });
      await out?.commit();
      const rep = saveReport(result.result, specs[0], target);
      if (result.ack) {
        rep.restored = { started: result.ack.started, transactions: result.ack.transactions, bytes: result.ack.bytes };
        rep.downtimeEnd = result.ack.started ? "destination RUNNING" : "destination confirmed";
      }
      return reported(io, style, rep, result.ack);
    } catch (e) {
      dest?.destroy();
      await out?.abort();
      throw e;
    } finally {
      await closeDevices(regions);
      await enc.close();
    }
  },
});

/** Prints the report; a destination that took the state but saw bytes after the stream is an error (the sources stay stopped). */
function reported(io: CliIO, style: Style, rep: MigrationReport, ack: (Ack & { ok: true }) | undefined): number {
  const trailing = ack ? trailingError(ack) : null;
  if (trailing) {
    if (!style.json && !style.quiet) io.stderr.write(renderReport(rep, style.colorErr));
    throw trailing; // with --json, the error object is the one JSON line
  }
  if (style.json) io.stdout.write(`${JSON.stringify({ ok: true, ...rep })}\n`);
  else if (!style.quiet) io.stderr.write(renderReport(rep, style.colorErr));
  return 0;
}

interface RunOptions {
  encoder: EncoderOptions;
  name: string;
  save: SaveOptions;
  confirm?: () => Promise<Ack & { ok: true }>;
}

/** saveDevice with the progress line; returns the destination's ack too. */
async function run(io: CliIO, style: Style, region: MigratableDevice, sink: ByteSink, o: RunOptions) {
  const progress = new ProgressLine(io.stderr, style, "save");
  let stats: EncoderStats | undefined;
  let ack: (Ack & { ok: true }) | undefined;
  try {
    const result: SaveDeviceResult = await saveDevice(region, sink, {
      encoder: o.encoder,
      info: { name: o.name },
      onEncoder: (e) => (stats = e.stats),
      confirm: o.confirm
        ? async () => {
            progress.update({
              phase: "waiting for the destination",
              bytes: stats?.rawBytes ?? 0,
              wire: sink.bytes,
              coded: coded(stats),
            });
            ack = await o.confirm!();
          }
        : undefined,
      save: {
        ...o.save,
        onProgress: (p) => {
          progress.update({
            phase: phaseLabel(p.phase, p.iteration),
            bytes: p.bytes,
            wire: sink.bytes,
            pending: p.pending,
            coded: coded(stats),
          });
        },
      },
    });
    return { result, ack };
  } catch (e) {
    throw e instanceof MigstreamError ? e : new MigstreamError("INTERNAL", String(e), { cause: e });
  } finally {
    progress.clear();
  }
}
