// One restore attempt for `migstream restore`: a stream's bytes (a file,
// stdin, or one network connection) into the device, with the progress line,
// the stream statistics and where the stream ended in its input.
import type { StreamEnd } from "../migrate/items.js";
import { restoreDevice } from "../migrate/restore-stream.js";
import { StatsCollector } from "../migrate/stats.js";
import type { ResumeSummary } from "../protocol/progress.js";
import type { RegionIO } from "../protocol/region-io.js";
import type { CliIO } from "./command.js";
import { phaseLabel, ProgressLine } from "./progress.js";
import type { Style } from "./style.js";

/** What every attempt of one `restore` run shares. */
export interface Job {
  key?: Uint8Array;
  start: boolean;
  device?: number;
  signal?: AbortSignal;
  /** Refuse a stream whose declared transactions cannot fit the device, before touching it. */
  checkFit: boolean;
  /** Over the network: also take a keyed stream bound to no connection (--allow-replay). */
  allowReplay?: boolean;
  /** Take only encrypted streams (--require-encryption). */
  requireEncryption?: boolean;
}

/** A completed restore. */
export interface Done {
  summary: ResumeSummary;
  stats: ReturnType<StatsCollector["result"]>;
  source: string;
  /** Where the stream ended in its input (bytes read past it are counted there). */
  end: StreamEnd;
}

/** Hooks of one attempt. */
export interface Attempt {
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

/** One restore attempt; throws the stream's or the device's error (the device then reset and stopped, if it was touched). */
export async function restoreOnce(io: CliIO, style: Style, region: RegionIO, source: AsyncIterable<Uint8Array>, job: Job, attempt: Attempt = {}): Promise<Done> {
  const stats = new StatsCollector();
  const wire = { bytes: 0 };
  let end: StreamEnd = { streamBytes: 0, trailingBytes: 0 };
  const progress = new ProgressLine(io.stderr, style, "restore");
  try {
    const summary = await restoreDevice(region, counted(source, wire), {
      key: job.key,
      challenge: attempt.challenge,
      allowUnbound: job.allowReplay === true,
      requireEncryption: job.requireEncryption === true,
      start: job.start,
      device: job.device,
      signal: job.signal,
      checkFit: job.checkFit,
      onEvent: (ev) => stats.add(ev),
      onTouch: attempt.onTouch,
      onEnd: (e) => (end = e),
      onProgress: (p) => progress.update({ phase: phaseLabel(p.phase, p.iteration), bytes: p.bytes, wire: wire.bytes }),
    });
    return { summary, stats: stats.result(end.streamBytes), source: "", end };
  } finally {
    progress.clear();
  }
}
