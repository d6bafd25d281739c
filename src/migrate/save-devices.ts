// Several devices → one stream: the source of a migration of devices that
// move together (saveGroup's coordinated policy, one stop-and-copy window).
// The stream's head announces every device before any data — each device's
// DEVICE_BEGIN, in the order given, then its protocol record — so that a
// destination can pair them with its own devices and check their
// generations before it touches any; then the devices' frames interleave as
// their drivers produce them (FORMAT.md §12).
//
// saveDevices is the pipeline (restoreDevices is the other half): it encodes
// the stream itself into a byte sink, ends the stream, waits for a network
// destination's confirmation and, if anything fails after the devices were
// stopped, puts every source back in RUNNING. saveDevicesInto is its core,
// over an encoder the caller made. As for one device (save-to.ts), the
// header declares the largest transaction the devices can give and the
// stream's first transaction goes out at once.
import { MigstreamError } from "../errors.js";
import { type DeviceWriter, type EncoderOptions, type EncoderStats, StreamEncoder } from "../format/encoder.js";
import type { DeviceInfo, DeviceTrailer, StreamTrailer } from "../format/types.js";
import { restartSource } from "../protocol/drive.js";
import { describe, withNote } from "../protocol/failure.js";
import { type MigratableDevice, protocolOf } from "../protocol/generation.js";
import { type GroupSaveOptions, saveGroup } from "../protocol/group.js";
import type { PrecopyEnd } from "../protocol/policy.js";
import type { SaveSummary } from "../protocol/progress.js";
import type { MigrationProtocol, SaveSink } from "../protocol/types.js";
import type { SaveV2Options } from "../protocol/v2/save.js";
import { declaredTransaction, firstOut, type SaveStep, Steps } from "./save-to.js";
import { type SinkOrWrite, toByteSink } from "./sink.js";

/** One source device of a multi-device stream. */
export interface SaveDevicesMember {
  device: MigratableDevice;
  /** Its DEVICE_BEGIN: name and metadata (the protocol record comes from the device). */
  info?: DeviceInfo;
  /** Its id in the stream (default: its index). */
  id?: number;
  /** How errors name it (default: its name). */
  label?: string;
  /** Its own save options (buffer size or factory, progress); the group's policy and cancel replace theirs. */
  options?: SaveV2Options;
}

/** What saveDevicesInto did. */
export interface SavedTogether {
  /** Per device, in the order given: the driver's summary, its trailer and the protocol recorded for it. */
  devices: { summary: SaveSummary; trailer: DeviceTrailer; protocol: MigrationProtocol }[];
  /** Why the group's pre-copy ended. */
  precopyEnd: PrecopyEnd;
  /** performance.now() when each device entered stop-and-copy. */
  stoppedAt: number[];
}

/** Saves `members` together as devices of `encoder`'s stream (see the file comment). */
async function saveDevicesInto(
  members: SaveDevicesMember[],
  encoder: StreamEncoder,
  options: GroupSaveOptions = {},
): Promise<SavedTogether> {
  if (!Array.isArray(members) || members.length === 0)
    throw new MigstreamError("USAGE", "saveDevices: give at least one device");
  // The stream's first transaction, whichever device gives it, is written out at once (firstOut).
  const first = { pending: true };
  const writers = members.map((m, i) => firstOut(encoder, encoder.device(m.id ?? i, m.info), first));
  const sinks: SaveSink[] = [];
  for (const [i, m] of members.entries()) {
    const p = protocolOf(m.device);
    await writers[i].protocol(p);
    sinks.push(recorded(writers[i], p));
  }
  const g = await saveGroup(
    members.map((m, i) => ({
      device: m.device,
      sink: sinks[i],
      id: m.id ?? i,
      label: m.label ?? m.info?.name,
      options: m.options,
    })),
    options,
  );
  const devices: SavedTogether["devices"] = [];
  for (const [i, w] of writers.entries())
    devices.push({ summary: g.devices[i], trailer: await w.end(), protocol: protocolOf(members[i].device) });
  return { devices, precopyEnd: g.precopyEnd, stoppedAt: g.stoppedAt };
}

/** The writer as the driver's sink, its protocol already recorded at the head (the driver's own call must agree). */
function recorded(w: DeviceWriter, p: MigrationProtocol): SaveSink {
  return {
    protocol: (q) => {
      if (JSON.stringify(q) !== JSON.stringify(p)) {
        throw new MigstreamError(
          "INTERNAL",
          `the driver records ${JSON.stringify(q)} but the stream's head says ${JSON.stringify(p)}`,
        );
      }
    },
    phase: (phase, iteration) => w.phase(phase, iteration),
    transaction: (data) => w.transaction(data),
    ...(w.buffer ? { buffer: (n: number) => w.buffer!(n) } : {}),
  };
}

/** How saveDevices encodes (the stream encoder's options) and saves (the group's), and what it waits for. */
export interface SaveDevicesOptions {
  encoder?: EncoderOptions;
  /** The group's policy, precopy flag, stop signal, cancel and progress. */
  save?: GroupSaveOptions;
  /** After the last byte: wait for the destination to confirm (throws its failure). */
  confirm?: () => Promise<unknown>;
  /** Called with the encoder once it exists (progress displays read its stats). */
  onEncoder?: (e: StreamEncoder) => void;
}

/** One device of a saveDevices run. */
export interface SavedDevice {
  summary: SaveSummary;
  trailer: DeviceTrailer;
  protocol: MigrationProtocol;
  /** setup, pre-copy #0, #1, ..., stop-and-copy (raw bytes; the wire is shared by all devices). */
  steps: SaveStep[];
  /** performance.now() when it entered stop-and-copy. */
  stopcopyAt: number;
}

/** What saveDevices did: each device, why pre-copy ended, the stream's trailer and the encoder's statistics. */
export interface SaveDevicesResult {
  devices: SavedDevice[];
  precopyEnd: PrecopyEnd;
  stream: StreamTrailer;
  stats: EncoderStats;
  /** Stream bytes written. */
  wireBytes: number;
  /** performance.now() when the destination confirmed (or the stream ended). */
  doneAt: number;
}

/**
 * Saves `members` together (one pre-copy policy, one stop-and-copy window)
 * into one stream of their own, written to `to`: a ByteSink (its output
 * blocks are reused once a write settles), or a write function (handed new
 * arrays it may keep, unless `encoder.reuseOutput`). The devices are left
 * stopped after success, all RUNNING after a failure.
 */
export async function saveDevices(
  members: SaveDevicesMember[],
  to: SinkOrWrite,
  options: SaveDevicesOptions = {},
): Promise<SaveDevicesResult> {
  const sink = toByteSink(to);
  let stopped = false;
  const save = options.save ?? {};
  /** The sink's first failure: when the devices fail because of it, it is the error (each device's fate follows). */
  let sinkFailure: unknown;
  const write = async (b: Uint8Array) => {
    try {
      await sink.write(b);
    } catch (e) {
      sinkFailure ??= e;
      throw e;
    }
  };
  try {
    const encoder = new StreamEncoder(write, {
      ...options.encoder,
      maxDevices: options.encoder?.maxDevices ?? members.length,
      // The header declares the largest transaction the devices can give, which a destination checks before it enters its devices.
      maxTransaction: options.encoder?.maxTransaction ?? declaredTransaction(members.map((m) => m.device)),
      reuseOutput: options.encoder?.reuseOutput ?? typeof to !== "function",
    });
    options.onEncoder?.(encoder);
    const steps = members.map(() => new Steps(() => 0));
    const saved = await saveDevicesInto(members, encoder, {
      ...save,
      cause: () => save.cause?.() ?? sinkFailure,
      onProgress: (i, p) => {
        steps[i].progress(p);
        save.onProgress?.(i, p);
      },
    });
    stopped = true;
    const stream = await encoder.finish();
    await sink.end();
    await options.confirm?.();
    return {
      devices: saved.devices.map((d, i) => ({ ...d, steps: steps[i].list, stopcopyAt: saved.stoppedAt[i] })),
      precopyEnd: saved.precopyEnd,
      stream,
      stats: encoder.stats,
      wireBytes: sink.bytes,
      doneAt: performance.now(),
    };
  } catch (e) {
    sink.destroy();
    const err = e instanceof MigstreamError ? e : new MigstreamError("INTERNAL", describe(e), { cause: e });
    if (!stopped) throw err; // a failed group save already put every source back
    const notes = await Promise.all(
      members.map(
        async (m, i) =>
          `device ${m.id ?? i}${m.label || m.info?.name ? ` (${m.label ?? m.info?.name})` : ""}: ${await restartSource(m.device)}`,
      ),
    );
    throw withNote(err, notes.join("; "));
  }
}
