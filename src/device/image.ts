// The simulated device's internal state: an image of pages with a dirty map
// (one byte per page) and the "running device" that keeps changing pages.
import { DEFAULT_MIX, fillPage, PAGE_SIZE, type PageKind, type PageMix, pageKindAt } from "./pages.js";

export class DeviceImage {
  readonly size: number;
  readonly pages: number;
  /** dirty[p] = 1: page p changed since it was last handed to a save session. */
  readonly dirty: Uint8Array;
  dirtyCount = 0;
  /** All zero (fresh or reset): nothing to clear on the next reset or resume. */
  pristine: boolean;
  /** Pages changed by `touch` so far (also varies the content they get). */
  generation = 0;
  #rng: number;

  constructor(
    readonly bytes: Uint8Array,
    readonly seed: number,
    readonly mix: PageMix = DEFAULT_MIX,
    pristine = false,
  ) {
    this.size = bytes.length;
    this.pages = Math.ceil(this.size / PAGE_SIZE);
    this.dirty = new Uint8Array(this.pages);
    this.pristine = pristine;
    this.#rng = (seed ^ 0x2545f491) >>> 0 || 1;
  }

  /** End of page `p` (the last page may be short). */
  pageEnd(p: number): number {
    return Math.min((p + 1) * PAGE_SIZE, this.size);
  }

  markAll(): void {
    this.dirty.fill(1);
    this.dirtyCount = this.pages;
  }

  mark(p: number): void {
    if (this.dirty[p] === 0) {
      this.dirty[p] = 1;
      this.dirtyCount++;
    }
  }

  /** Clears page p's dirty bit (it is being handed over). */
  take(p: number): void {
    if (this.dirty[p] === 1) {
      this.dirty[p] = 0;
      this.dirtyCount--;
    }
  }

  /** First dirty page at or after `from`, wrapping around; -1 when none. */
  nextDirty(from: number): number {
    if (this.dirtyCount === 0) return -1;
    const start = from < this.pages ? from : 0;
    const p = this.dirty.indexOf(1, start);
    return p >= 0 ? p : this.dirty.indexOf(1, 0);
  }

  /** The running device changes `n` pages (seeded choice and content); they become dirty. */
  touch(n: number): void {
    if (this.pages === 0) return;
    for (let i = 0; i < n; i++) {
      let s = this.#rng;
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      this.#rng = s >>> 0;
      const p = this.#rng % this.pages;
      const kind: PageKind = pageKindAt(this.seed, p, this.mix);
      this.generation++;
      const seed = (Math.imul(this.generation, 0x9e3779b1) ^ Math.imul(p + 1, 0x85ebca6b) ^ this.seed) >>> 0 || 1;
      fillPage(this.bytes.subarray(p * PAGE_SIZE, this.pageEnd(p)), kind === "zero" ? "heap" : kind, seed);
      this.mark(p);
    }
    if (n > 0) this.pristine = false;
  }

  /** Back to the reset state: all zero. */
  zero(): void {
    if (!this.pristine) this.bytes.fill(0);
    this.pristine = true;
    this.dirty.fill(0);
    this.dirtyCount = 0;
  }
}
