// `migstream restore`: the destination side. Restores a device from a stream
// file, or listens for one source (`migstream save --to`) and restores while
// the stream arrives — no temporary file, the device's pace sets the socket's.
import { MigstreamError } from "../../errors.js";
import { type Ack, devicesAck } from "../../network/ack.js";
import { restoreDevices, type RestoredDevice } from "../../migrate/restore-devices.js";
import { restoreDevice } from "../../migrate/restore-stream.js";
import { StatsCollector } from "../../migrate/stats.js";
import { DEFAULT_IDLE_TIMEOUT_MS, parseTcpUrl, type TcpAddress } from "../../network/tcp.js";
import type { ResumeSummary } from "../../protocol/progress.js";
import { isMigrationDevice, type MigratableDevice } from "../../protocol/generation.js";
import { SPEC_FORMS, type OpenedDevice } from "../../transport/spec.js";
import { intOption, parseCommand, usageOf } from "../args.js";
import type { CliIO, Command } from "../command.js";
import { closeDevices, openDevices } from "../devices.js";
import { openInput } from "../files.js";
import { readKeyFile } from "../key.js";
import { requireKeyOffLoopback, serveOneSource } from "../network.js";
import { phaseLabel, ProgressLine } from "../progress.js";
import { renderStats } from "../report.js";
import { note, styleFor, type Style } from "../style.js";
import { bytes, duration } from "../units.js";

const HELP = `usage: migstream restore --device SPEC [--device SPEC ...] (IN | --listen tcp://HOST:PORT) [options]

Restores the device from a stream. Each transaction reaches the device only
after its chunks (and, with a key, its frames' MACs) verified, and the device
is started only after the whole stream verified; on any failure the device is
reset and left stopped, never RUNNING with a partial state.

Several --device options restore the devices of a multi-device stream (one
\`migstream save\` wrote with several --device options) together: the
stream's devices pair with the --device options in order (the source's
order; \`migstream inspect\` lists them), and the number of devices and each
pair's protocol generation must match before any device is touched. All
devices load at once; they are started only once the whole stream verified
and every one of them loaded. If any fails, none is left RUNNING.

With --listen it waits for one source (\`migstream save --to\`) and restores
while the stream arrives, then answers the source. It binds to loopback unless
an address is given (tcp://:PORT is 127.0.0.1), refuses a non-loopback address
without --key-file unless --insecure is given, serves one connection at a
time (others are refused), and drops a connection that is not a valid stream
(nothing reaches the device) and keeps listening. Port 0 picks a free port;
the address is printed on stderr either way.
  --device SPEC              ${SPEC_FORMS.join("\n                             ")}
                             repeat it for the devices of a multi-device stream, in the stream's order
  IN                         a stream file (- for stdin)
  --listen tcp://HOST:PORT   receive the stream from a source instead
  --no-start                 do not start the device: v1 stays in RESUMING, v2 in STOP (the VMM starts it)
  --key-file F               the key of an authenticated stream (required off loopback)
  --insecure                 allow listening off loopback without a key
  --stream-device N          with one --device: which device of a multi-device stream to restore
                             (needed for one: a stream of several devices is refused without it)
  --timeout MS               longest wait for more stream bytes (default ${DEFAULT_IDLE_TIMEOUT_MS})
  --accept-timeout MS        longest wait for a source to connect (default: none)
  --json                     print the result as JSON on stdout
  -q, --quiet                no progress line, no summary

examples:
  migstream restore --device vfio-user:/run/dst.sock state.mig
  migstream restore --device vfio-user:/run/dst.sock --listen tcp://0.0.0.0:7000 --key-file mig.key
  migstream restore --device vfio-user:/run/gpu.sock --device vfio-user:/run/nic.sock vm.mig`;

export const restore: Command = {
  name: "restore",
  summary: "restore a device from a stream file or from a source over TCP",
  help: HELP,
  signals: true,
  async run(argv, io) {
    const { values: v, positionals } = parseCommand(
      "restore",
      argv,
      {
        device: { type: "string", multiple: true },
        listen: { type: "string" },
        "no-start": { type: "boolean" },
        "key-file": { type: "string" },
        insecure: { type: "boolean" },
        "stream-device": { type: "string" },
        timeout: { type: "string" },
        "accept-timeout": { type: "string" },
      },
      { min: 0, max: 1, names: "IN" },
    );
    const style = styleFor(io, v);
    const specs = v.device ?? [];
    if (specs.length === 0) throw usageOf("restore", "missing --device SPEC");
    if (specs.length > 1 && v["stream-device"] !== undefined) throw usageOf("restore", "--stream-device picks one device for one --device; several --device options take every device of the stream, in order");
    if ((positionals.length === 1) === (v.listen !== undefined)) throw usageOf("restore", "give exactly one of IN and --listen tcp://HOST:PORT");
    const addr = v.listen === undefined ? undefined : parseTcpUrl(v.listen, "--listen");
    const key = v["key-file"] === undefined ? undefined : await readKeyFile(v["key-file"]);
    requireKeyOffLoopback("restore", addr, key, v.insecure);
    const idleTimeoutMs = intOption("restore", "--timeout", v.timeout, DEFAULT_IDLE_TIMEOUT_MS, 0, 2 ** 31);
    const acceptTimeoutMs = intOption("restore", "--accept-timeout", v["accept-timeout"], 0, 0, 2 ** 31);
    const options: Job = {
      key,
      start: v["no-start"] !== true,
      device: v["stream-device"] === undefined ? undefined : intOption("restore", "--stream-device", v["stream-device"], 0, 0, 0xffff),
      signal: io.signal,
    };
    const regions = await openDevices(specs);
    try {
      let done: Done;
      if (addr) {
        done = await fromNetwork(io, style, regions, options, addr, idleTimeoutMs, acceptTimeoutMs);
      } else {
        const source = await openInput(positionals[0], io);
        done = await restoreOnce(io, style, regions, source, options);
        done.source = positionals[0] === "-" ? "stdin" : positionals[0];
      }
      if (done.devices) {
        printDevices(io, style, specs, regions, done, done.devices);
        return 0;
      }
      const region = regions[0];
      const s = done.summary;
      if (style.json) {
        io.stdout.write(`${JSON.stringify({ ok: true, device: specs[0], source: done.source, started: s.started, transactions: s.transactions, bytes: s.bytes, ms: s.times.total, stream: done.stats })}\n`);
      } else {
        note(
          io,
          style,
          `restored ${specs[0]} from ${done.source}: ${s.transactions} buffers, ${bytes(s.bytes)} in ${duration(s.times.total)}; device ${leftIn(region, s.started)}\n` +
            renderStats(done.stats, false, false).trimEnd(),
        );
      }
      return 0;
    } finally {
      await closeDevices(regions);
    }
  },
};

/** How a restored device was left, in words. */
function leftIn(region: MigratableDevice, started: boolean): string {
  if (started) return "RUNNING";
  if (!isMigrationDevice(region)) return "left in RESUMING";
  return region.vmmOwnsStates ? "left to the VMM (it SETs STOP, where the device validates, then RUNNING)" : "left in STOP, its state validated (v2; the VMM sets RUNNING)";
}

/** The result of a multi-device restore: a line per device, then the stream's summary. */
function printDevices(io: CliIO, style: Style, specs: string[], regions: MigratableDevice[], done: Done, devices: RestoredDevice[]): void {
  if (style.json) {
    const list = devices.map((d, i) => ({ device: specs[i], id: d.id, name: d.name, started: d.started, transactions: d.transactions, bytes: d.bytes, skipped: d.skipped, ms: d.times.total }));
    io.stdout.write(`${JSON.stringify({ ok: true, devices: list, source: done.source, started: done.summary.started, transactions: done.summary.transactions, bytes: done.summary.bytes, ms: done.summary.times.total, stream: done.stats })}\n`);
    return;
  }
  const lines = devices.map((d, i) => `  ${specs[i]} ← stream device ${d.id} "${d.name}": ${d.transactions} buffers, ${bytes(d.bytes)} in ${duration(d.times.total)}; ${leftIn(regions[i], d.started)}`);
  note(io, style, `restored ${devices.length} devices together from ${done.source}:\n${lines.join("\n")}\n${renderStats(done.stats, false, false).trimEnd()}`);
}

interface Job {
  key?: Uint8Array;
  start: boolean;
  device?: number;
  signal?: AbortSignal;
}

interface Done {
  /** With several devices: their totals (started: all of them). */
  summary: ResumeSummary;
  stats: ReturnType<StatsCollector["result"]>;
  source: string;
  /** Several devices: each one, in the order given. */
  devices?: RestoredDevice[];
}

/** Counts the bytes that pass. */
async function* counted(src: AsyncIterable<Uint8Array>, count: { bytes: number }): AsyncGenerator<Uint8Array> {
  for await (const b of src) {
    count.bytes += b.length;
    yield b;
  }
}

/** One restore attempt; `touched` tells whether the device was reached. */
async function restoreOnce(io: CliIO, style: Style, regions: MigratableDevice[], source: AsyncIterable<Uint8Array>, o: Job, touched?: { yes: boolean }): Promise<Done> {
  if (regions.length > 1) return restoreManyOnce(io, style, regions, source, o, touched);
  const region = regions[0];
  const stats = new StatsCollector();
  const wire = { bytes: 0 };
  const progress = new ProgressLine(io.stderr, style, "restore");
  const announced: string[] = [];
  try {
    const summary = await restoreDevice(region, counted(source, wire), {
      key: o.key,
      start: o.start,
      device: o.device,
      signal: o.signal,
      onEvent: (ev) => {
        if (ev.type === "device") announced.push(`${ev.device} "${ev.name}"`);
        stats.add(ev);
      },
      onTouch: () => {
        // A stream of several devices restores one of them only when asked to: never the first one silently.
        if (o.device === undefined && announced.length > 1) {
          throw new MigstreamError(
            "USAGE",
            `restore: the stream holds ${announced.length} devices (${announced.join(", ")}): give --device once per device, in that order, to restore them together, or --stream-device ID to restore one; the device was not touched`,
            { field: "devices" },
          );
        }
        if (touched) touched.yes = true;
      },
      onProgress: (p) => progress.update({ phase: phaseLabel(p.phase, p.iteration), bytes: p.bytes, wire: wire.bytes }),
    });
    return { summary, stats: stats.result(wire.bytes), source: "" };
  } finally {
    progress.clear();
  }
}

/** One attempt at restoring several devices together from one stream. */
async function restoreManyOnce(io: CliIO, style: Style, regions: MigratableDevice[], source: AsyncIterable<Uint8Array>, o: Job, touched?: { yes: boolean }): Promise<Done> {
  const stats = new StatsCollector();
  const wire = { bytes: 0 };
  const progress = new ProgressLine(io.stderr, style, "restore");
  const moved = regions.map(() => 0);
  const t0 = performance.now();
  try {
    const r = await restoreDevices(
      regions.map((device) => ({ device, label: (device as Partial<OpenedDevice>).label })),
      counted(source, wire),
      {
        key: o.key,
        start: o.start,
        signal: o.signal,
        onEvent: (ev) => stats.add(ev),
        onTouch: () => {
          if (touched) touched.yes = true;
        },
        onProgress: (i, p) => {
          moved[i] = p.bytes;
          progress.update({ phase: `${regions.length} devices`, bytes: moved.reduce((a, b) => a + b, 0), wire: wire.bytes });
        },
      },
    );
    const summary: ResumeSummary = {
      transactions: r.devices.reduce((a, d) => a + d.transactions, 0),
      bytes: r.devices.reduce((a, d) => a + d.bytes, 0),
      skipped: r.devices.reduce((a, d) => a + d.skipped, 0),
      started: r.devices.every((d) => d.started),
      times: { total: performance.now() - t0 },
    };
    return { summary, stats: stats.result(wire.bytes), source: "", devices: r.devices };
  } finally {
    progress.clear();
  }
}

/** The success ack: the totals, and with several devices each one with how long ago it entered RUNNING. */
function successAck(done: Done): Ack & { ok: true } {
  if (done.devices) return devicesAck(done.devices);
  const s = done.summary;
  return { ok: true, started: s.started, transactions: s.transactions, bytes: s.bytes };
}

async function fromNetwork(
  io: CliIO,
  style: Style,
  regions: MigratableDevice[],
  o: Job,
  addr: TcpAddress,
  idleTimeoutMs: number,
  acceptTimeoutMs: number,
): Promise<Done> {
  const served = await serveOneSource(io, style, addr, { command: "restore", target: regions.length > 1 ? "the devices" : "the device", idleTimeoutMs, acceptTimeoutMs, signal: o.signal }, async (peer, touched) => {
    const done = await restoreOnce(io, style, regions, peer.chunks(), o, touched);
    return { result: done, ack: successAck(done) };
  });
  served.result.source = served.remote;
  return served.result;
}
