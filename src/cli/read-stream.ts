// Reading a whole stream for verify, inspect and decode: decoder events are
// counted (StatsCollector), shown on the progress line, and handed on.
import type { CodingPool } from "../format/chunk-coders.js";
import { StreamDecoder } from "../format/decoder.js";
import type { DecodeEvent } from "../format/types.js";
import { StatsCollector, type StreamStats } from "../migrate/stats.js";
import { phaseLabel, type ProgressLine } from "./progress.js";

export interface ReadOptions {
  key?: Uint8Array;
  /** Check without decompressing (verify, inspect). */
  verifyOnly: boolean;
  /** Hand out whole transactions (decode). */
  assemble?: boolean;
  onEvent?: (ev: DecodeEvent) => void | Promise<void>;
  progress?: ProgressLine;
  /** Decode chunks on this worker pool instead of inline (not with verifyOnly). */
  pool?: CodingPool;
}

/** Reads `source` to its end. On failure the error carries what was read so far as `stats`. */
export async function readStream(source: AsyncIterable<Uint8Array>, o: ReadOptions): Promise<StreamStats> {
  const dec = new StreamDecoder({ key: o.key, verifyOnly: o.verifyOnly, assemble: o.assemble, pool: o.verifyOnly ? undefined : o.pool });
  const stats = new StatsCollector();
  let phase = "header";
  let raw = 0;
  const handle = async (ev: DecodeEvent) => {
    stats.add(ev);
    if (ev.type === "phase") phase = phaseLabel(ev.phase, ev.iteration);
    else if (ev.type === "chunk") raw += ev.rawLength;
    const r = o.onEvent?.(ev);
    if (r) await r;
  };
  try {
    for await (const piece of source) {
      for await (const ev of dec.writeAsync(piece)) await handle(ev);
      o.progress?.update({ phase, bytes: raw, wire: dec.offset });
    }
    for await (const ev of dec.end()) await handle(ev);
  } catch (e) {
    if (e !== null && typeof e === "object" && Object.isExtensible(e)) Object.defineProperty(e, "stats", { value: stats.result(dec.offset), enumerable: false });
    throw e;
  } finally {
    o.progress?.clear();
  }
  return stats.result(dec.offset);
}

/** The partial stats a failed readStream attached to its error, if any. */
export function partialStats(e: unknown): StreamStats | undefined {
  return (e as { stats?: StreamStats } | null)?.stats;
}
