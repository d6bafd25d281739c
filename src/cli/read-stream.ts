// Reading a whole stream for verify, inspect and decode: decoder events are
// counted (StatsCollector), shown on the progress line, and handed on.
import type { CodingPool } from "../format/chunk-coders.js";
import { StreamDecoder } from "../format/decoder.js";
import type { DecodeEvent } from "../format/types.js";
import { StatsCollector, type StreamStats } from "../migrate/stats.js";
import { type ProgressLine, phaseLabel } from "./progress.js";

export interface ReadOptions {
  key?: Uint8Array;
  /** Check without decompressing (verify, inspect). */
  verifyOnly: boolean;
  /** Hand out whole transactions (decode). */
  assemble?: boolean;
  /** Each event's data is a view of a reused buffer, valid until onEvent's promise settles (DecoderOptions.reuseOutput). */
  reuseOutput?: boolean;
  onEvent?: (ev: DecodeEvent) => void | Promise<void>;
  progress?: ProgressLine;
  /** Decode chunks on this worker pool instead of inline (not with verifyOnly). */
  pool?: CodingPool;
  /** A network receiver's binding rules (FORMAT.md §7.1): its connection's challenge, and what else it takes. */
  challenge?: Uint8Array;
  allowUnbound?: boolean;
  requireEncryption?: boolean;
  /**
   * Stop at the verified STREAM_END instead of reading the input to its end
   * (a network receiver: the source may keep its connection open); the bytes
   * already read past it are counted in `trailing.bytes`.
   */
  stopAtEnd?: { trailingBytes: number };
}

/** Reads `source` to its end (or its verified STREAM_END, see `stopAtEnd`). On failure the error carries what was read so far as `stats`. */
export async function readStream(source: AsyncIterable<Uint8Array>, o: ReadOptions): Promise<StreamStats> {
  const binding = { challenge: o.challenge, allowUnbound: o.allowUnbound, requireEncryption: o.requireEncryption };
  const dec = new StreamDecoder({
    key: o.key,
    verifyOnly: o.verifyOnly,
    assemble: o.assemble,
    reuseOutput: o.reuseOutput,
    pool: o.verifyOnly ? undefined : o.pool,
    ...binding,
  });
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
  let read = 0;
  let ended = false;
  try {
    input: for await (const piece of source) {
      read += piece.length;
      for await (const ev of dec.writeAsync(piece)) {
        await handle(ev);
        if (ev.type === "end" && o.stopAtEnd) {
          ended = true;
          break input;
        }
      }
      o.progress?.update({ phase, bytes: raw, wire: dec.offset });
    }
    if (ended) o.stopAtEnd!.trailingBytes = read - dec.offset;
    else for await (const ev of dec.end()) await handle(ev);
  } catch (e) {
    if (e !== null && typeof e === "object" && Object.isExtensible(e))
      Object.defineProperty(e, "stats", { value: stats.result(dec.offset), enumerable: false });
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
