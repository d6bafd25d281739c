// The progress line on stderr: drawn only on a terminal, redrawn in place at
// most every PROGRESS_INTERVAL_MS (and at once when the phase changes, so a
// short phase is still seen), erased when the command ends so the report
// that follows starts on a clean line.
//   save  pre-copy #2  48.0 MiB  312.5 MiB/s  ratio 3.10x  pending 4.0 MiB
import type { Style } from "./style.js";
import { paint } from "./style.js";
import { bytes, rate } from "./units.js";

/** Least time between two redraws, ms. */
export const PROGRESS_INTERVAL_MS = 150;
/** Window of the rate estimate, ms. */
export const RATE_WINDOW_MS = 1000;
/**
 * Without `coded`, raw over wire is shown once this much went out: before
 * that an encoder still holds its first output block and the ratio reads like
 * 6853x.
 */
export const RATIO_MIN_WIRE = 1 << 20;

export interface ProgressState {
  /** Phase label, e.g. "pre-copy #2" or "stop-and-copy". */
  phase: string;
  /** Raw bytes moved. */
  bytes: number;
  /** Stream bytes on the wire (for the ratio). */
  wire?: number;
  /** The device's last pending_bytes. */
  pending?: number;
  /**
   * An encoder's own counts (raw bytes it coded, stream bytes it made from
   * them): the ratio of what was coded so far, unskewed by what is still in
   * flight between the device and the wire.
   */
  coded?: { raw: number; stream: number };
}

const ERASE = "\r\x1b[K";

export class ProgressLine {
  #last = 0;
  #drawn = false;
  #samples: Array<[number, number]> = [];
  #state: ProgressState | null = null;

  constructor(
    private readonly out: { write(s: string): unknown },
    private readonly style: Style,
    private readonly label: string,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get enabled(): boolean {
    return this.style.progress;
  }

  /** Records the state; redraws when the phase changed or the last draw is old enough. */
  update(s: ProgressState): void {
    if (!this.enabled) return;
    const newPhase = this.#state?.phase !== s.phase;
    this.#state = s;
    const t = this.now();
    if (this.#drawn && !newPhase && t - this.#last < PROGRESS_INTERVAL_MS) return;
    this.#last = t;
    this.#samples.push([t, s.bytes]);
    while (this.#samples.length > 2 && t - this.#samples[0][0] > RATE_WINDOW_MS) this.#samples.shift();
    this.#draw(s, t);
  }

  #draw(s: ProgressState, t: number): void {
    const [t0, b0] = this.#samples[0];
    const parts = [
      paint(this.style.colorErr, "bold", this.label),
      paint(this.style.colorErr, "cyan", s.phase),
      bytes(s.bytes),
      t > t0 ? rate(s.bytes - b0, t - t0) : "",
    ];
    const ratio = s.coded
      ? s.coded.raw > 0
        ? s.coded.raw / s.coded.stream
        : 0
      : s.wire !== undefined && s.wire >= RATIO_MIN_WIRE
        ? s.bytes / s.wire
        : 0;
    if (ratio > 0) parts.push(`ratio ${ratio.toFixed(2)}x`);
    if (s.pending !== undefined) parts.push(`pending ${bytes(s.pending)}`);
    this.out.write(`${ERASE}${parts.filter(Boolean).join("  ")}`);
    this.#drawn = true;
  }

  /** Erases the line (call before printing anything else, and at the end). */
  clear(): void {
    if (!this.#drawn) return;
    this.out.write(ERASE);
    this.#drawn = false;
  }

  /** The last state recorded (for tests and reports). */
  get state(): ProgressState | null {
    return this.#state;
  }
}

/** What an encoder has coded so far (its stats), for the ratio. */
export function coded(stats: { rawBytes: number; streamBytes: number } | undefined): ProgressState["coded"] {
  return stats && { raw: stats.rawBytes, stream: stats.streamBytes };
}

/** "pre-copy #2", "stop-and-copy", ... */
export function phaseLabel(phase: string, iteration: number): string {
  switch (phase) {
    case "precopy":
      return `pre-copy #${iteration}`;
    case "stopcopy":
      return "stop-and-copy";
    default:
      return phase;
  }
}
