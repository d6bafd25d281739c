// What the v1 and v2 drivers share while a save or resume runs: the cancel
// check before every step, progress delivery, and where saved data is read
// into (a driver-owned buffer, the caller's factory, or one the sink lends).
import { MigstreamError } from "../errors.js";
import { describe } from "./failure.js";
import type { Progress, ProgressListener } from "./progress.js";
import type { SaveSink } from "./types.js";

/** Throws ABORTED naming `step` when `signal` fired. */
export function checkAbort(signal: AbortSignal | undefined, step: string, direction: "save" | "resume"): void {
  if (signal?.aborted) throw new MigstreamError("ABORTED", `${step}: ${direction} cancelled`, { step, cause: signal.reason });
}

/** Delivers one progress event; a listener that throws fails the run with USAGE. */
export function emitProgress(listener: ProgressListener | undefined, p: Progress): void {
  if (!listener) return;
  try {
    listener(p);
  } catch (e) {
    throw new MigstreamError("USAGE", `${p.direction}: onProgress threw: ${describe(e)}`, { cause: e });
  }
}

/**
 * Buffers for saved data: the `buffer` save option wins, then the sink's
 * lent buffers (taken over by transaction()), else one reused buffer.
 */
export class SaveBuffers {
  #own = new Uint8Array(0);
  readonly #make: ((n: number) => Uint8Array) | undefined;

  constructor(sink: SaveSink, factory: ((n: number) => Uint8Array) | undefined) {
    this.#make = factory ?? (sink.buffer ? (n: number) => sink.buffer!(n) : undefined);
  }

  /** A buffer of at least `size` bytes (a factory's is checked). */
  take(size: number): Uint8Array {
    if (this.#make) {
      const b = this.#make(size);
      if (!(b instanceof Uint8Array) || b.length < size) {
        throw new MigstreamError("USAGE", `save: the buffer factory returned ${b instanceof Uint8Array ? `${b.length} bytes` : "no Uint8Array"} for a ${size}-byte buffer`);
      }
      return b;
    }
    if (this.#own.length < size) this.#own = new Uint8Array(size);
    return this.#own;
  }
}
