// `migstream restore`: the destination side. Restores a device from a stream
// file, or listens for sources (`migstream save --to`) and restores while the
// stream arrives — no temporary file, the device's pace sets the socket's.
// Several --device options restore the devices of a multi-device stream
// together; one attempt's rules (where the stream ends, what is reported
// after it, when a device is first touched) are the same for one or many.
import { stat } from "node:fs/promises";
import { MigstreamError } from "../../errors.js";
import type { StreamEnd } from "../../migrate/items.js";
import { type RestoredDevice, restoreDevices } from "../../migrate/restore-devices.js";
import { restoreDevice } from "../../migrate/restore-stream.js";
import { StatsCollector } from "../../migrate/stats.js";
import { type Ack, devicesAck } from "../../network/ack.js";
import {
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  parseTcpUrl,
  type TcpAddress,
} from "../../network/tcp.js";
import { isMigrationDevice, type MigratableDevice } from "../../protocol/generation.js";
import type { ResumeSummary } from "../../protocol/progress.js";
import { type OpenedDevice, SPEC_FORMS } from "../../transport/spec.js";
import { intOption, parseCommand, usageOf } from "../args.js";
import type { CliIO, Command } from "../command.js";
import { closeDevices, openDevices } from "../devices.js";
import { openInput } from "../files.js";
import { readKeyFile } from "../key.js";
import { requireKeyOffLoopback, serveOneSource } from "../network.js";
import { ProgressLine, phaseLabel } from "../progress.js";
import { renderStats } from "../report.js";
import { note, type Style, styleFor } from "../style.js";
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

With --listen it waits for a source (\`migstream save --to\`) and restores
while the stream arrives, then answers the source. It binds to loopback unless
an address is given (tcp://:PORT is 127.0.0.1), refuses a non-loopback address
without --key-file unless --insecure is given, and serves one connection at a
time (others are told it is busy, and retry). Nothing reaches the device until
the stream's header and frames up to its first transaction verified (within
--handshake-timeout) and its declared transaction size fits the device; a
keyed stream must be bound to this connection. After a failed attempt it
keeps listening until one restore succeeds, or --attempts failed. Port 0
picks a free port; the address is printed on stderr (with -q only for port 0).
  --device SPEC              ${SPEC_FORMS.join("\n                             ")}
                             repeat it for the devices of a multi-device stream, in the stream's order
  IN                         a stream file (- for stdin)
  --listen tcp://HOST:PORT   receive the stream from a source instead
  --no-start                 do not start the device: v1 stays in RESUMING, v2 in STOP (the VMM starts it)
  --key-file F               the key of an authenticated stream (required off loopback); over the
                             network the stream must be bound to this connection (its challenge)
  --allow-replay             with --listen and --key-file: also take a keyed stream that is not bound to
                             this connection — a stream saved (or captured) earlier, replayed
  --require-encryption       take only encrypted streams (the source's --encrypt); the hello says so
  --insecure                 allow listening off loopback without a key
  --stream-device N          with one --device: which device of a multi-device stream to restore
                             (needed for one: a stream of several devices is refused without it)
  --timeout MS               longest wait for more stream bytes (default ${DEFAULT_IDLE_TIMEOUT_MS})
  --handshake-timeout MS     how long a connection may take to deliver a verified stream header
                             and first frames; then it is dropped (default ${DEFAULT_HANDSHAKE_TIMEOUT_MS})
  --attempts N               give up after N failed attempts, with the last one's exit code
                             (default 0: keep listening until a restore succeeds)
  --accept-timeout MS        longest wait for a source to connect (default: none)
  --no-fit-check             enter the device even when the stream declares transactions larger
                             than its data section (an encoder that declared more than it sends)
  --json                     print the result as JSON on stdout
  -q, --quiet                nothing but errors

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
        "handshake-timeout": { type: "string" },
        attempts: { type: "string" },
        "accept-timeout": { type: "string" },
        "no-fit-check": { type: "boolean" },
        "allow-replay": { type: "boolean" },
        "require-encryption": { type: "boolean" },
      },
      { min: 0, max: 1, names: "IN" },
    );
    const style = styleFor(io, v);
    const specs = v.device ?? [];
    if (specs.length === 0) throw usageOf("restore", "missing --device SPEC");
    if (specs.length > 1 && v["stream-device"] !== undefined)
      throw usageOf(
        "restore",
        "--stream-device picks one device for one --device; several --device options take every device of the stream, in order",
      );
    if ((positionals.length === 1) === (v.listen !== undefined))
      throw usageOf("restore", "give exactly one of IN and --listen tcp://HOST:PORT");
    const addr = v.listen === undefined ? undefined : parseTcpUrl(v.listen, "--listen");
    const key = v["key-file"] === undefined ? undefined : await readKeyFile(v["key-file"]);
    requireKeyOffLoopback("restore", addr, key, v.insecure);
    const listen: Listen | undefined = addr && {
      addr,
      idleTimeoutMs: intOption("restore", "--timeout", v.timeout, DEFAULT_IDLE_TIMEOUT_MS, 0, 2 ** 31),
      handshakeTimeoutMs: intOption(
        "restore",
        "--handshake-timeout",
        v["handshake-timeout"],
        DEFAULT_HANDSHAKE_TIMEOUT_MS,
        0,
        2 ** 31,
      ),
      acceptTimeoutMs: intOption("restore", "--accept-timeout", v["accept-timeout"], 0, 0, 2 ** 31),
      attempts: intOption("restore", "--attempts", v.attempts, 0, 0, 2 ** 31),
    };
    const job: Job = {
      key,
      start: v["no-start"] !== true,
      device:
        v["stream-device"] === undefined
          ? undefined
          : intOption("restore", "--stream-device", v["stream-device"], 0, 0, 0xffff),
      signal: io.signal,
      checkFit: v["no-fit-check"] !== true,
      allowReplay: v["allow-replay"] === true,
      requireEncryption: v["require-encryption"] === true,
    };
    if (!addr && job.allowReplay)
      throw usageOf("restore", "--allow-replay is for --listen (a file is restored anyway)");
    if (job.requireEncryption && !key) throw usageOf("restore", "--require-encryption needs --key-file");
    const regions = await openDevices(specs);
    try {
      let done: Done;
      if (listen) done = await fromNetwork(io, style, regions, job, listen);
      else {
        const source = await openInput(positionals[0], io);
        done = await restoreOnce(io, style, regions, source, job);
        done.source = positionals[0] === "-" ? "stdin" : positionals[0];
        // A file's bytes past the stream are known without reading them; stdin's only as far as they were read.
        const size = positionals[0] === "-" ? undefined : await inputSize(positionals[0]);
        if (size !== undefined) done.end = { ...done.end, trailingBytes: size - done.end.streamBytes };
      }
      const trailing = done.end.trailingBytes;
      // The restore stands (it verified and completed); the bytes after the stream are reported, even with -q.
      if (trailing > 0)
        io.stderr.write(`migstream: warning: ${trailingNote(trailing, done.end.streamBytes, done.source)}\n`);
      if (done.devices) {
        printDevices(io, style, specs, regions, done, done.devices);
        return 0;
      }
      const region = regions[0];
      const s = done.summary;
      if (style.json) {
        io.stdout.write(
          `${JSON.stringify({ ok: true, device: specs[0], source: done.source, started: s.started, transactions: s.transactions, bytes: s.bytes, ms: s.times.total, ...(trailing > 0 ? { trailingBytes: trailing } : {}), stream: done.stats })}\n`,
        );
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
  return region.vmmOwnsStates
    ? "left to the VMM (it SETs STOP, where the device validates, then RUNNING)"
    : "left in STOP, its state validated (v2; the VMM sets RUNNING)";
}

/** The result of a multi-device restore: a line per device, then the stream's summary. */
function printDevices(
  io: CliIO,
  style: Style,
  specs: string[],
  regions: MigratableDevice[],
  done: Done,
  devices: RestoredDevice[],
): void {
  const trailing = done.end.trailingBytes;
  if (style.json) {
    const list = devices.map((d, i) => ({
      device: specs[i],
      id: d.id,
      name: d.name,
      started: d.started,
      transactions: d.transactions,
      bytes: d.bytes,
      skipped: d.skipped,
      ms: d.times.total,
    }));
    io.stdout.write(
      `${JSON.stringify({ ok: true, devices: list, source: done.source, started: done.summary.started, transactions: done.summary.transactions, bytes: done.summary.bytes, ms: done.summary.times.total, ...(trailing > 0 ? { trailingBytes: trailing } : {}), stream: done.stats })}\n`,
    );
    return;
  }
  const lines = devices.map(
    (d, i) =>
      `  ${specs[i]} ← stream device ${d.id} "${d.name}": ${d.transactions} buffers, ${bytes(d.bytes)} in ${duration(d.times.total)}; ${leftIn(regions[i], d.started)}`,
  );
  note(
    io,
    style,
    `restored ${devices.length} devices together from ${done.source}:\n${lines.join("\n")}\n${renderStats(done.stats, false, false).trimEnd()}`,
  );
}

/** What every attempt of one `restore` run shares. */
interface Job {
  key?: Uint8Array;
  start: boolean;
  device?: number;
  signal?: AbortSignal;
  /** Refuse a stream whose declared transactions cannot fit the device, before touching it. */
  checkFit: boolean;
  /** Over the network: also take a keyed stream bound to no connection (--allow-replay). */
  allowReplay: boolean;
  /** Take only encrypted streams (--require-encryption). */
  requireEncryption: boolean;
}

interface Listen {
  addr: TcpAddress;
  idleTimeoutMs: number;
  handshakeTimeoutMs: number;
  acceptTimeoutMs: number;
  attempts: number;
}

interface Done {
  /** With several devices: their totals (started: all of them). */
  summary: ResumeSummary;
  stats: ReturnType<StatsCollector["result"]>;
  source: string;
  /** Where the stream ended in its input (bytes read past it are counted there). */
  end: StreamEnd;
  /** Several devices: each one, in the order given. */
  devices?: RestoredDevice[];
}

/** Hooks of one attempt. */
interface Attempt {
  /** The stream proved it can succeed and the device is about to be touched. */
  onTouch?: () => void;
  /** The connection's challenge (a network attempt): a keyed stream must be bound to it. */
  challenge?: Uint8Array;
}

/** Counts the bytes that pass. */
async function* counted(src: AsyncIterable<Uint8Array>, count: { bytes: number }): AsyncGenerator<Uint8Array> {
  for await (const b of src) {
    count.bytes += b.length;
    yield b;
  }
}

/** Every device's totals of a multi-device restore (started: all of them). */
function totals(devices: RestoredDevice[], t0: number): ResumeSummary {
  return {
    transactions: devices.reduce((a, d) => a + d.transactions, 0),
    bytes: devices.reduce((a, d) => a + d.bytes, 0),
    skipped: devices.reduce((a, d) => a + d.skipped, 0),
    started: devices.every((d) => d.started),
    times: { total: performance.now() - t0 },
  };
}

/**
 * One restore attempt, of one device or of several from one stream; throws
 * the stream's or a device's error (every touched device then reset and
 * stopped). Either way the stream ends at its verified STREAM_END, and the
 * devices are touched only once it proved itself (`attempt.onTouch`).
 */
async function restoreOnce(
  io: CliIO,
  style: Style,
  regions: MigratableDevice[],
  source: AsyncIterable<Uint8Array>,
  job: Job,
  attempt: Attempt = {},
): Promise<Done> {
  const stats = new StatsCollector();
  const wire = { bytes: 0 };
  let end: StreamEnd = { streamBytes: 0, trailingBytes: 0 };
  const progress = new ProgressLine(io.stderr, style, "restore");
  const common = {
    key: job.key,
    challenge: attempt.challenge,
    allowUnbound: job.allowReplay,
    requireEncryption: job.requireEncryption,
    start: job.start,
    signal: job.signal,
    checkFit: job.checkFit,
    onEnd: (e: StreamEnd) => (end = e),
  };
  try {
    if (regions.length > 1) {
      const moved = regions.map(() => 0);
      const t0 = performance.now();
      const r = await restoreDevices(
        regions.map((device) => ({ device, label: (device as Partial<OpenedDevice>).label })),
        counted(source, wire),
        {
          ...common,
          onEvent: (ev) => stats.add(ev),
          onTouch: attempt.onTouch,
          onProgress: (i, p) => {
            moved[i] = p.bytes;
            progress.update({
              phase: `${regions.length} devices`,
              bytes: moved.reduce((a, b) => a + b, 0),
              wire: wire.bytes,
            });
          },
        },
      );
      return {
        summary: totals(r.devices, t0),
        stats: stats.result(end.streamBytes),
        source: "",
        end,
        devices: r.devices,
      };
    }
    const announced: string[] = [];
    const summary = await restoreDevice(regions[0], counted(source, wire), {
      ...common,
      device: job.device,
      onEvent: (ev) => {
        if (ev.type === "device") announced.push(`${ev.device} "${ev.name}"`);
        stats.add(ev);
      },
      onTouch: () => {
        // A stream of several devices restores one of them only when asked to: never the first one silently.
        if (job.device === undefined && announced.length > 1) {
          throw new MigstreamError(
            "USAGE",
            `restore: the stream holds ${announced.length} devices (${announced.join(", ")}): give --device once per device, in that order, to restore them together, or --stream-device ID to restore one; the device was not touched`,
            { field: "devices" },
          );
        }
        attempt.onTouch?.();
      },
      onProgress: (p) => progress.update({ phase: phaseLabel(p.phase, p.iteration), bytes: p.bytes, wire: wire.bytes }),
    });
    return { summary, stats: stats.result(end.streamBytes), source: "", end };
  } finally {
    progress.clear();
  }
}

/** The success ack: the totals (with several devices, each one with how long ago it entered RUNNING), and the bytes that followed the stream. */
function successAck(done: Done): Ack & { ok: true } {
  const s = done.summary;
  const ack: Ack & { ok: true } = done.devices
    ? devicesAck(done.devices)
    : { ok: true, started: s.started, transactions: s.transactions, bytes: s.bytes };
  const trailing = done.end.trailingBytes;
  return trailing > 0 ? { ...ack, trailingBytes: trailing } : ack;
}

async function fromNetwork(io: CliIO, style: Style, regions: MigratableDevice[], job: Job, o: Listen): Promise<Done> {
  const served = await serveOneSource(
    io,
    style,
    o.addr,
    {
      command: "restore",
      target: regions.length > 1 ? "the devices" : "the device",
      idleTimeoutMs: o.idleTimeoutMs,
      acceptTimeoutMs: o.acceptTimeoutMs,
      handshakeTimeoutMs: o.handshakeTimeoutMs,
      attempts: o.attempts,
      retryTouched: true, // a failed restore reset and stopped the devices: the next source may try
      keyed: job.key !== undefined,
      encrypted: job.requireEncryption,
      signal: job.signal,
    },
    async (peer, touched) => {
      const done = await restoreOnce(io, style, regions, peer.chunks(), job, {
        challenge: peer.challenge,
        onTouch: () => {
          touched.yes = true;
          peer.established();
        },
      });
      // Bytes after STREAM_END (read with its last piece, or waiting on the socket) do not undo the restore; the source hears of them.
      done.end = { ...done.end, trailingBytes: done.end.trailingBytes + peer.buffered };
      return { result: done, ack: successAck(done) };
    },
  );
  served.result.source = served.remote;
  return served.result;
}

/** The size of a regular file (undefined for anything else). */
async function inputSize(path: string): Promise<number | undefined> {
  const st = await stat(path).catch(() => undefined);
  return st?.isFile() ? st.size : undefined;
}

function trailingNote(trailing: number, at: number, source: string): string {
  return `${trailing} bytes followed the end of the stream (at byte ${at}) from ${source}; they are not part of it and were ignored (the restore had verified and completed)`;
}
