// Device → stream → sink, as one migration step on the source (restoreDevice
// is the other half): saves the device through a stream encoder of its own
// into a byte sink, ends the stream and, for a network destination, waits for
// its confirmation. If anything fails after the device was stopped (the
// stream could not be finished or written, or the destination did not take
// the state), the source device is put back in RUNNING — a failed migration
// leaves the source running.

import { MigstreamError } from "../errors.js";
import { MAX_TRANSACTION_SIZE } from "../format/constants.js";
import { type DeviceWriter, type EncoderOptions, type EncoderStats, StreamEncoder } from "../format/encoder.js";
import type { DeviceInfo, DeviceTrailer, StreamTrailer } from "../format/types.js";
import { restartSource, saveAny } from "../protocol/drive.js";
import { describe, withNote } from "../protocol/failure.js";
import { isMigrationDevice, type MigratableDevice } from "../protocol/generation.js";
import type { Progress, SaveSummary } from "../protocol/progress.js";
import type { Phase } from "../protocol/types.js";
import type { SaveV2Options } from "../protocol/v2/save.js";
import { regionCapacity } from "./restore-stream.js";
import { type SinkOrWrite, toByteSink } from "./sink.js";

/** How saveDevice encodes (the stream encoder's options) and saves (the driver's), and what it waits for. */
export interface SaveDeviceOptions {
  encoder?: EncoderOptions;
  save?: SaveV2Options;
  /** Device id in the stream (default 0). */
  id?: number;
  info?: DeviceInfo;
  /** After the last byte: wait for the destination to confirm (throws its failure). */
  confirm?: () => Promise<unknown>;
  /** Called with the encoder once it exists (progress displays read its stats). */
  onEncoder?: (e: StreamEncoder) => void;
}

/** One phase (each pre-copy iteration apart) as the source saw it. */
export interface SaveStep {
  phase: Phase;
  iteration: number;
  transactions: number;
  rawBytes: number;
  /** Stream bytes the encoder produced meanwhile. */
  wireBytes: number;
  ms: number;
}

/** What saveDevice did: the driver's summary, each step, the trailers and the encoder's statistics. */
export interface SaveDeviceResult {
  summary: SaveSummary;
  /** setup, pre-copy #0, #1, ..., stop-and-copy. */
  steps: SaveStep[];
  device: DeviceTrailer;
  stream: StreamTrailer;
  stats: EncoderStats;
  /** Stream bytes written. */
  wireBytes: number;
  /** performance.now() when stop-and-copy began and when the destination confirmed (or the stream ended). */
  stopcopyAt: number;
  doneAt: number;
}

/**
 * Saves the device behind `region` (a v1 migration region or a v2 device:
 * pre-copy, stop-and-copy; see the `save` options) as one device of a stream
 * of its own, written to `sink`: a ByteSink (its output blocks are reused
 * once a write settles), or a write function (handed new arrays it may keep,
 * unless `encoder.reuseOutput`). The device is left stopped after success,
 * RUNNING after a failure.
 */
export async function saveDevice(
  region: MigratableDevice,
  sink: SinkOrWrite,
  options: SaveDeviceOptions = {},
): Promise<SaveDeviceResult> {
  let stopped = false;
  let stopcopyAt = 0;
  const saveOptions = options.save ?? {};
  const out = toByteSink(sink);
  try {
    // A ByteSink is done with the bytes once a write settles: the encoder reuses its output blocks.
    // The header declares the largest transaction this device can give (its data section), which
    // a destination checks against its own before it enters its device.
    const encoder = new StreamEncoder((b) => out.write(b), {
      ...options.encoder,
      maxTransaction: options.encoder?.maxTransaction ?? declaredTransaction([region]),
      reuseOutput: options.encoder?.reuseOutput ?? typeof sink !== "function",
    });
    options.onEncoder?.(encoder);
    const steps = new Steps(() => encoder.stats.streamBytes);
    const writer = firstOut(encoder, encoder.device(options.id ?? 0, options.info));
    const summary = await saveAny(region, writer, {
      ...saveOptions,
      onProgress: (p) => {
        if (p.phase === "stopcopy" && stopcopyAt === 0) stopcopyAt = performance.now();
        steps.progress(p);
        saveOptions.onProgress?.(p);
      },
    });
    stopped = true;
    const trailer = await writer.end();
    const stream = await encoder.finish();
    await out.end();
    await options.confirm?.();
    return {
      summary,
      steps: steps.list,
      device: trailer,
      stream,
      stats: encoder.stats,
      wireBytes: out.bytes,
      stopcopyAt,
      doneAt: performance.now(),
    };
  } catch (e) {
    out.destroy();
    const err = e instanceof MigstreamError ? e : new MigstreamError("INTERNAL", describe(e), { cause: e });
    // A failed save already put the source back; after a completed one it is stopped.
    return Promise.reject(stopped ? withNote(err, await restartSource(region)) : err);
  }
}

/**
 * The largest transaction the devices can give (their data sections), for
 * the stream's header; undefined (the encoder's default) when a device
 * speaks v2: its data is a stream with no buffer size to declare.
 */
export function declaredTransaction(devices: readonly MigratableDevice[]): number | undefined {
  let most = 0;
  for (const d of devices) {
    if (isMigrationDevice(d)) return undefined;
    most = Math.max(most, regionCapacity(d));
  }
  return Math.min(most, MAX_TRANSACTION_SIZE);
}

/**
 * The device writer with the stream's first transaction written out at once
 * (not held until an output block fills): a destination proves the stream —
 * header, MACs, first data — within its handshake deadline however slow the
 * device. Writers of one stream share `first`: only the stream's first
 * transaction, whichever device gives it, is pushed out.
 */
export function firstOut(
  encoder: StreamEncoder,
  w: DeviceWriter,
  first: { pending: boolean } = { pending: true },
): DeviceWriter {
  return {
    ...w,
    phase: (p, i) => w.phase(p, i),
    end: () => w.end(),
    transaction: async (data) => {
      await w.transaction(data);
      if (first.pending) {
        first.pending = false;
        await encoder.writeOut();
      }
    },
  };
}

/** Splits a save's progress events into steps (a new one at each phase or iteration change). */
export class Steps {
  readonly list: SaveStep[] = [];
  #at = 0;
  #raw = 0;
  #txns = 0;
  #wire = 0;

  constructor(private readonly wire: () => number) {}

  progress(p: Progress): void {
    const cur = this.list.at(-1);
    const now = performance.now();
    if (cur) {
      cur.ms = now - this.#at;
      cur.wireBytes = this.wire() - this.#wire;
      cur.transactions = p.transactions - this.#txns;
      cur.rawBytes = p.bytes - this.#raw;
      if (cur.phase === p.phase && cur.iteration === p.iteration) return;
    }
    if (p.phase === "end") return;
    this.#at = now;
    this.#raw = p.bytes;
    this.#txns = p.transactions;
    this.#wire = this.wire();
    this.list.push({ phase: p.phase, iteration: p.iteration, transactions: 0, rawBytes: 0, wireBytes: 0, ms: 0 });
  }
}
