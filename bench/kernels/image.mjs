// Tiny page-mix generator for the kernel benchmarks: the same pages as
// src/device/pages.ts (40% zero, 20% code, 25% heap, 15% random; seeded), which
// plain Node cannot import from the TypeScript source.
const PAGE = 4096;
const MIX = [
  ["zero", 0.4],
  ["code", 0.2],
  ["heap", 0.25],
  ["random", 0.15],
];

function next(s) {
  s ^= s << 13;
  s ^= s >>> 17;
  s ^= s << 5;
  return s >>> 0;
}

function pageSeed(seed, index) {
  let h = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  return h || 1;
}

function kindAt(seed, index) {
  const u = next(pageSeed(seed, index)) / 0x100000000;
  let acc = 0;
  for (const [kind, share] of MIX) if (u < (acc += share)) return kind;
  return "random";
}

function fillPage(out, kind, s) {
  const n = out.length;
  if (kind === "zero") return out.fill(0);
  if (kind === "code") {
    const vocab = [];
    for (let v = 0; v < 24; v++) {
      s = next(s);
      const ins = new Uint8Array(3 + (s % 5));
      for (let j = 0; j < ins.length; j++) ins[j] = (s = next(s)) & 0xff;
      vocab.push(ins);
    }
    for (let i = 0; i < n; ) {
      s = next(s);
      const ins = vocab[s % vocab.length];
      for (let j = 0; j < ins.length && i < n; j++) out[i++] = ins[j];
      if ((s & 7) === 0 && i < n) out[i++] = (s >>> 8) & 0xff;
    }
    return;
  }
  if (kind === "heap") {
    s = next(s);
    const base = 0x7f00_0000 + (s & 0xff_f000);
    const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
    let i = 0;
    for (; i + 8 <= n; i += 8) {
      s = next(s);
      const r = s & 3;
      const lo = r <= 1 ? (base + ((s >>> 4) & 0xfff8)) >>> 0 : r === 2 ? (s >>> 20) & 0xff : 0;
      dv.setUint32(i, lo, true);
      dv.setUint32(i + 4, r <= 1 ? 0x5555 : 0, true);
    }
    out.fill(0, i);
    return;
  }
  for (let i = 0; i < n; i++) {
    if ((i & 3) === 0) s = next(s);
    out[i] = (s >>> ((i & 3) * 8)) & 0xff;
  }
}

/** A device-state-like image of `size` bytes. */
export function makeImage(size, seed = 1) {
  const out = new Uint8Array(size);
  for (let off = 0, p = 0; off < size; off += PAGE, p++) {
    fillPage(out.subarray(off, Math.min(off + PAGE, size)), kindAt(seed, p), pageSeed(seed ^ 0x5bd1e995, p));
  }
  return out;
}
