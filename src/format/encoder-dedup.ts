// The dedup plan of one transaction: the units it is sent as. Units are the
// content-defined chunks (chunking.ts), with two refinements once part of
// the transaction turned out to repeat recorded data (a later phase sending
// mostly the same state):
//  - Resync: in a run of chunks the index does not know, the first position
//    (in the run's last RESYNC_SCAN bytes) where a recorded chunk starts
//    again (found by its first ANCHOR_SIZE bytes, then compared whole) ends
//    the run; that chunk is a unit of its own and chunking restarts right
//    after it — as it did when it was recorded, so the following chunks line
//    up with the recorded ones again.
//    Without it, content-defined cuts take a chunk or two to fall back into
//    step after a change, and those chunks are sent in full.
//  - Merge: such a run of unknown bytes next to known ones — the bytes around
//    a change — is sent as one unit (one frame, one LZ4 block) when it is at
//    most the largest chunk.
// Data that is new throughout is sent in content-defined chunks, each
// recorded alone, so that a later phase can refer to any part of it.
// With `auto`, the last phase (stop-and-copy, and any after it), which no
// later phase refers back to, takes only what dedup finds: a transaction in
// which no chunk is known is sent in the fixed chunks it would have without
// dedup, and in one with known chunks, a run of new data goes in units of up
// to the largest chunk (joined at chunk ends) — so where there is nothing to
// dedup, auto with dedup sends what auto without does, compressed as well. A
// repeat inside the last phase is then found only as a whole unit. Fixed
// codecs keep the small units there too (the format's dedup vector is coded
// that way).
// The plan only asks the index; units are decided and recorded in stream
// order when they are coded (codec/coder.ts), so a wrong guess costs size,
// never correctness.

import type { ChunkFacts } from "../codec/coder.js";
import { ANCHOR_SIZE, type DedupIndex } from "../codec/dedup.js";
import { xxh3_64 } from "../kernels/xxh3.js";
import { isZero } from "../kernels/zero.js";
import { type ByteSource, type Chunker, zeroRuns } from "./chunking.js";

/**
 * A resync is looked for in the last this many bytes of a run of unknown
 * chunks: where a change ends, content-defined cuts fall back into step
 * within a chunk or two, so the recorded chunk that starts again lies there.
 */
const RESYNC_SCAN = 16 << 10;
/** A known chunk this long (or longer) switches resync on for the rest of the transaction (tiny repeats do not). */
const RESYNC_MIN_KNOWN = 256;

/** A unit ending at `end` (the previous unit's end, or 0, is its start). */
export interface Unit {
  end: number;
  /** null when coding must look at the bytes itself (merged units). */
  facts: ChunkFacts | null;
}

/** Units of plain fixed or content-defined chunks, no dedup. */
export function plainUnits(ends: readonly number[]): Unit[] {
  return ends.map((end) => ({ end, facts: null }));
}

/** One content-defined chunk as the planner sees it. */
interface Piece {
  end: number;
  facts: ChunkFacts;
  known: boolean;
}

class Planner {
  readonly units: Unit[] = [];
  /** A known chunk was met in this transaction: unknown runs are probed for resync. */
  private repeating = false;
  /** Some chunk of this transaction is known (found by hash or by resync). */
  found = false;

  constructor(
    private readonly src: ByteSource,
    private readonly chunker: Chunker,
    private readonly index: DedupIndex,
    private readonly maxUnit: number,
    /** Runs of new data go in units of up to maxUnit (auto's last phase). */
    private readonly lastPhase: boolean,
  ) {}

  private piece(start: number, end: number): Piece {
    const zero = isZero(this.src.view(start, end));
    const hash = zero ? 0n : xxh3_64(this.src.view(start, end));
    const known = !zero && this.index.has(hash);
    if (known) this.found = true;
    if (known && end - start >= RESYNC_MIN_KNOWN) this.repeating = true;
    return { end, facts: { zero, hash }, known };
  }

  /** Units of the data segment [from, to) (no zero run inside). */
  segment(from: number, to: number): void {
    let at = from;
    while (at < to) {
      const ends: number[] = [];
      this.chunker.contentDefinedEnds(this.src, at, to, ends);
      at = this.pieces(at, to, ends);
    }
  }

  /**
   * Walks the chunks ending at `ends` (from `start`); returns `to` when done,
   * or where chunking must restart after a resync.
   */
  private pieces(start: number, to: number, ends: number[]): number {
    let prev = start;
    let i = 0;
    let leftKnown = false;
    while (i < ends.length) {
      const p = this.piece(prev, ends[i]);
      if (p.facts.zero || p.known) {
        this.units.push({ end: p.end, facts: p.facts });
        leftKnown = p.known;
        prev = p.end;
        i++;
        continue;
      }
      // A run of unknown chunks: gather it up to the next zero or known chunk.
      const run: Piece[] = [p];
      let next: Piece | null = null;
      for (i++; i < ends.length; i++) {
        const q = this.piece(run[run.length - 1].end, ends[i]);
        if (q.facts.zero || q.known) {
          next = q;
          i++;
          break;
        }
        run.push(q);
      }
      const runEnd = run[run.length - 1].end;
      if (this.repeating) {
        const found = this.resync(prev, runEnd, to);
        if (found !== null) {
          this.found = true;
          this.run(
            prev,
            run.filter((r) => r.end < found.at),
            found.at,
            true,
          );
          this.units.push({
            end: found.at + found.length,
            facts: { zero: false, hash: xxh3_64(this.src.view(found.at, found.at + found.length)) },
          });
          return found.at + found.length;
        }
      }
      this.run(prev, run, runEnd, leftKnown || (next?.known ?? false));
      if (next !== null) {
        this.units.push({ end: next.end, facts: next.facts });
        leftKnown = next.known;
        prev = next.end;
      } else prev = runEnd;
    }
    return to;
  }

  /**
   * The first position in (from, runEnd), within the last RESYNC_SCAN bytes,
   * where a recorded chunk starts again and fits before `to`, with its
   * length; null if none.
   */
  private resync(from: number, runEnd: number, to: number): { at: number; length: number } | null {
    const first = Math.max(from + 1, runEnd - RESYNC_SCAN);
    if (runEnd - first <= ANCHOR_SIZE) return null;
    const found = this.index.findAnchored(this.src.view(first, to), 0, runEnd - first);
    return found === null ? null : { at: first + found.at, length: found.length };
  }

  /**
   * Units for unknown bytes [from, end) made of the chunks `run` (their ends;
   * the last may stop short of `end`): one merged unit when `besideKnown` and
   * short enough; in the last phase, units of whole chunks up to maxUnit;
   * else the chunks (and the rest up to `end`).
   */
  private run(from: number, run: Piece[], end: number, besideKnown: boolean): void {
    if (end <= from) return;
    const whole = run.length === 1 && run[0].end === end;
    if (whole) {
      this.units.push({ end, facts: run[0].facts });
      return;
    }
    if ((besideKnown || this.lastPhase) && end - from <= this.maxUnit) {
      this.units.push({ end, facts: null });
      return;
    }
    if (this.lastPhase) {
      this.grouped(from, run, end);
      return;
    }
    for (const r of run) this.units.push({ end: r.end, facts: r.facts });
    if (run.length === 0 || run[run.length - 1].end < end) this.units.push({ end, facts: null });
  }

  /** Units of consecutive chunks of `run`, each as long as fits in maxUnit, ending at a chunk end (and the rest up to `end`). */
  private grouped(from: number, run: Piece[], end: number): void {
    let start = from;
    let taken: Piece[] = [];
    const unit = (to: number) => {
      this.units.push({ end: to, facts: taken.length === 1 && taken[0].end === to ? taken[0].facts : null });
      start = to;
      taken = [];
    };
    for (const r of run) {
      if (r.end - start > this.maxUnit && taken.length > 0) unit(taken[taken.length - 1].end);
      taken.push(r);
    }
    if (end - start > this.maxUnit && taken.length > 0) unit(taken[taken.length - 1].end);
    if (end > start) unit(end);
  }
}

/**
 * The units of a transaction `src` with dedup: content-defined chunks and
 * zero runs, resynced and merged as described above; no unit longer than
 * `maxUnit`. `lastPhase`: new data goes in large units (auto, stop-and-copy or later).
 */
export function planUnits(
  src: ByteSource,
  chunker: Chunker,
  index: DedupIndex,
  maxUnit: number,
  lastPhase: boolean,
): Unit[] {
  const p = new Planner(src, chunker, index, maxUnit, lastPhase);
  const zeroFacts: ChunkFacts = { zero: true, hash: 0n };
  const runs = zeroRuns(src);
  let at = 0;
  for (let r = 0; r < runs.length; r += 2) {
    p.segment(at, runs[r]);
    const ends: number[] = [];
    chunker.zeroRunEnds(runs[r], runs[r + 1], ends);
    for (const end of ends) p.units.push({ end, facts: zeroFacts });
    at = runs[r + 1];
  }
  p.segment(at, src.length);
  // The last phase with nothing known: the chunks it would be sent in without dedup.
  return lastPhase && !p.found ? plainUnits(chunker.fixedEnds(src.length)) : p.units;
}
