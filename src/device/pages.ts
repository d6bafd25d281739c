// Seeded generator of realistic device-state pages: zero pages, code-like pages
// (repetitive instruction-ish byte patterns), heap-like pages (pointer-heavy
// 8-byte words with small integers between), and random pages (already
// compressed or encrypted content). Used by the simulated device, the tests and
// the benchmarks so they all see the same kinds of data.

export const PAGE_SIZE = 4096;

export type PageKind = "zero" | "code" | "heap" | "random";
export const PAGE_KINDS: readonly PageKind[] = ["zero", "code", "heap", "random"];

/** Share of each page kind; need not sum to 1 (normalised). */
export interface PageMix {
  zero: number;
  code: number;
  heap: number;
  random: number;
}

/** A typical device-state image: 40% zero pages, 20% code, 25% heap, 15% random. */
export const DEFAULT_MIX: PageMix = { zero: 0.4, code: 0.2, heap: 0.25, random: 0.15 };

/** xorshift32 step; never returns 0 for a non-zero state. */
function next(s: number): number {
  s ^= s << 13;
  s ^= s >>> 17;
  s ^= s << 5;
  return s >>> 0;
}

/** Seed for page `index` of an image seeded with `seed` (splitmix-style). */
function pageSeed(seed: number, index: number): number {
  let h = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  return h || 1;
}

/** The kind of page `index` in an image with this seed and mix (deterministic). */
export function pageKindAt(seed: number, index: number, mix: PageMix = DEFAULT_MIX): PageKind {
  const total = mix.zero + mix.code + mix.heap + mix.random;
  const u = next(pageSeed(seed, index)) / 0x100000000;
  let acc = mix.zero / total;
  if (u < acc) return "zero";
  acc += mix.code / total;
  if (u < acc) return "code";
  acc += mix.heap / total;
  if (u < acc) return "heap";
  return "random";
}

/** Fills `out` (any length, usually one page) with content of `kind`. */
export function fillPage(out: Uint8Array, kind: PageKind, seed: number): void {
  let s = seed || 1;
  const n = out.length;
  switch (kind) {
    case "zero":
      out.fill(0);
      return;
    case "code": {
      // A small vocabulary of "instructions" (3–7 byte sequences) repeated with
      // variations: compresses about 2–4× with LZ4, like real text segments.
      const vocab: Uint8Array[] = [];
      for (let v = 0; v < 24; v++) {
        s = next(s);
        const len = 3 + (s % 5);
        const ins = new Uint8Array(len);
        for (let j = 0; j < len; j++) {
          s = next(s);
          ins[j] = s & 0xff;
        }
        vocab.push(ins);
      }
      let i = 0;
      while (i < n) {
        s = next(s);
        const ins = vocab[s % vocab.length];
        for (let j = 0; j < ins.length && i < n; j++) out[i++] = ins[j];
        if ((s & 7) === 0 && i < n) out[i++] = (s >>> 8) & 0xff; // an immediate
      }
      return;
    }
    case "heap": {
      // 8-byte little-endian words: canonical user-space pointers into a few
      // arenas, small integers, and zero words.
      s = next(s);
      const base = 0x7f00_0000 + (s & 0xff_f000);
      const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
      let i = 0;
      for (; i + 8 <= n; i += 8) {
        s = next(s);
        const r = s & 3;
        if (r <= 1) {
          dv.setUint32(i, (base + ((s >>> 4) & 0xfff8)) >>> 0, true); // low half of a pointer
          dv.setUint32(i + 4, 0x5555, true); // high half: 0x00005555xxxxxxxx
        } else if (r === 2) {
          dv.setUint32(i, (s >>> 20) & 0xff, true);
          dv.setUint32(i + 4, 0, true);
        } else {
          dv.setUint32(i, 0, true);
          dv.setUint32(i + 4, 0, true);
        }
      }
      for (; i < n; i++) out[i] = 0;
      return;
    }
    case "random": {
      let i = 0;
      for (; i + 4 <= n; i += 4) {
        s = next(s);
        out[i] = s & 0xff;
        out[i + 1] = (s >>> 8) & 0xff;
        out[i + 2] = (s >>> 16) & 0xff;
        out[i + 3] = s >>> 24;
      }
      for (; i < n; i++) {
        s = next(s);
        out[i] = s & 0xff;
      }
      return;
    }
  }
}

/**
 * Fills `out` with a device-state image: page `i` (of PAGE_SIZE bytes, the last
 * possibly short) has kind `pageKindAt(seed, firstPage + i, mix)`. Deterministic
 * in (seed, page index), so any window of an image can be regenerated alone.
 */
export function fillImage(out: Uint8Array, seed: number, mix: PageMix = DEFAULT_MIX, firstPage = 0): void {
  for (let off = 0, p = firstPage; off < out.length; off += PAGE_SIZE, p++) {
    const page = out.subarray(off, Math.min(off + PAGE_SIZE, out.length));
    fillPage(page, pageKindAt(seed, p, mix), pageSeed(seed ^ 0x5bd1e995, p));
  }
}

/** Convenience: a new image of `size` bytes. */
export function makeImage(size: number, seed = 1, mix: PageMix = DEFAULT_MIX): Uint8Array {
  const out = new Uint8Array(size);
  fillImage(out, seed, mix);
  return out;
}
