// Content-defined chunking: ours against a plain JS gear chunker (32-bit state,
// same FastCDC scheme), on a 1 MiB image and 1 MiB of random bytes.
import { allocBuffer, CdcChunker, cdcBoundaries, fixedBoundaries } from "../../dist/kernels.js";
import { measure, printTable, rng, summary } from "../lib.mjs";
import { makeImage } from "./image.mjs";

const SIZE = 1 << 20;
const OPTS = { minSize: 2048, avgSize: 8192, maxSize: 65536 };
const RUNS = { warmup: 5, reps: 21 };

// JS peer: 32-bit gear, masks on the top bits, same skip/normalization rules.
const r = rng(99);
const GEAR32 = Uint32Array.from({ length: 256 }, () => r());
function jsCdc(data, { minSize, avgSize, maxSize }) {
  const bits = 31 - Math.clz32(avgSize);
  const maskS = (~0 << (32 - (bits + 2))) >>> 0;
  const maskL = (~0 << (32 - (bits - 2))) >>> 0;
  const ends = [];
  let start = 0;
  while (start < data.length) {
    const end = Math.min(start + maxSize, data.length);
    const mid = Math.min(start + avgSize, end);
    let cut = end;
    let fp = 0;
    let i = start + minSize;
    for (; i < mid; i++) {
      fp = ((fp << 1) + GEAR32[data[i]]) >>> 0;
      if ((fp & maskS) === 0) break;
    }
    if (i < mid) cut = i + 1;
    else {
      for (; i < end; i++) {
        fp = ((fp << 1) + GEAR32[data[i]]) >>> 0;
        if ((fp & maskL) === 0) break;
      }
      if (i < end) cut = i + 1;
    }
    ends.push(cut);
    start = cut;
  }
  return ends;
}

function randomBytes(n, seed) {
  const x = rng(seed);
  return Uint8Array.from({ length: n }, () => x() & 0xff);
}

export async function run() {
  const inputs = [
    ["image", makeImage(SIZE, 7)],
    ["random", randomBytes(SIZE, 5)],
  ];
  const rows = [];
  for (const [name, data] of inputs) {
    const buf = allocBuffer(SIZE);
    buf.view().set(data);
    const chunks = cdcBoundaries(data, OPTS).length;
    const js = measure(() => jsCdc(data, OPTS), SIZE, RUNS);
    const add = (impl, m) =>
      rows.push({ data: name, impl, chunks, "GB/s": m.gbps, "vs JS": `${(m.gbps / js.gbps).toFixed(1)}x` });
    add(
      "ours cdcBoundaries (in place)",
      measure(() => cdcBoundaries(buf.view(), OPTS), SIZE, RUNS),
    );
    add(
      "ours cdcBoundaries (copy in)",
      measure(() => cdcBoundaries(data, OPTS), SIZE, RUNS),
    );
    add(
      "ours CdcChunker, 64 KiB pushes",
      measure(
        () => {
          const c = new CdcChunker(OPTS);
          for (let o = 0; o < SIZE; o += 65536) c.push(buf.view(o, o + 65536));
          c.finish();
        },
        SIZE,
        RUNS,
      ),
    );
    add("JS gear (32-bit)", js);
    buf.free();
  }
  const fixed = measure(() => fixedBoundaries(SIZE, 4096), SIZE, RUNS);
  rows.push({ data: "any", impl: "fixedBoundaries 4 KiB", chunks: SIZE / 4096, "GB/s": fixed.gbps, "vs JS": "" });
  printTable(`content-defined chunking, 1 MiB (min ${OPTS.minSize} / avg ${OPTS.avgSize} / max ${OPTS.maxSize})`, rows);
  const at = (impl) => rows.find((r) => r.data === "image" && r.impl === impl)["GB/s"];
  summary({
    figure: "content-defined chunking, 1 MiB image",
    ours: at("ours cdcBoundaries (in place)"),
    peer: "JS gear (32-bit)",
    theirs: at("JS gear (32-bit)"),
    unit: "GB/s",
  });
}
