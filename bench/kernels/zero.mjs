// Zero detection: page maps and whole-buffer checks against plain JS loops.
import { allocBuffer, countZeroPages, isZero, zeroPageMap } from "../../dist/kernels.js";
import { measure, printTable, summary } from "../lib.mjs";
import { makeImage } from "./image.mjs";

const SIZE = 1 << 20;
const PAGE = 4096;
const RUNS = { warmup: 20, reps: 51 };

/** Plain JS page map over 64-bit words. */
function jsPageMap(data) {
  const words = new BigUint64Array(data.buffer, data.byteOffset, data.length >> 3);
  const per = PAGE >> 3;
  const out = new Uint8Array(data.length / PAGE);
  for (let p = 0; p < out.length; p++) {
    let z = 1;
    for (let i = p * per, e = i + per; i < e; i++) {
      if (words[i] !== 0n) {
        z = 0;
        break;
      }
    }
    out[p] = z;
  }
  return out;
}

/** Plain JS page map over 32-bit words (usually the faster JS form). */
function jsPageMap32(data) {
  const words = new Uint32Array(data.buffer, data.byteOffset, data.length >> 2);
  const per = PAGE >> 2;
  const out = new Uint8Array(data.length / PAGE);
  for (let p = 0; p < out.length; p++) {
    let acc = 0;
    for (let i = p * per, e = i + per; i < e && acc === 0; i += 8) {
      acc =
        words[i] |
        words[i + 1] |
        words[i + 2] |
        words[i + 3] |
        words[i + 4] |
        words[i + 5] |
        words[i + 6] |
        words[i + 7];
    }
    out[p] = acc === 0 ? 1 : 0;
  }
  return out;
}

export async function run() {
  const img = makeImage(SIZE, 7);
  const zeros = new Uint8Array(SIZE);
  const buf = allocBuffer(SIZE);
  buf.view().set(img);
  const zbuf = allocBuffer(SIZE);
  zbuf.view().fill(0);

  const ref = jsPageMap32(img);
  const ours = zeroPageMap(img);
  if (Buffer.compare(ref, ours) !== 0 || Buffer.compare(jsPageMap(img), ours) !== 0)
    throw new Error("zero map mismatch");

  const rows = [
    { op: "page map, image", impl: "ours (in place)", ...measure(() => zeroPageMap(buf.view()), SIZE, RUNS) },
    { op: "page map, image", impl: "ours (copy in)", ...measure(() => zeroPageMap(img), SIZE, RUNS) },
    { op: "page map, image", impl: "JS u32 loop", ...measure(() => jsPageMap32(img), SIZE, RUNS) },
    {
      op: "page map, image",
      impl: "JS BigUint64 loop",
      ...measure(() => jsPageMap(img), SIZE, { warmup: 3, reps: 7 }),
    },
    { op: "count pages, all zero", impl: "ours (in place)", ...measure(() => countZeroPages(zbuf.view()), SIZE, RUNS) },
    { op: "count pages, all zero", impl: "JS u32 loop", ...measure(() => jsPageMap32(zeros), SIZE, RUNS) },
    { op: "isZero, all zero", impl: "ours (in place)", ...measure(() => isZero(zbuf.view()), SIZE, RUNS) },
  ];
  buf.free();
  zbuf.free();
  const js = rows.find((r) => r.impl === "JS u32 loop").gbps;
  printTable(
    "zero detection, 1 MiB (image: 40% zero pages)",
    rows.map((r) => ({ op: r.op, impl: r.impl, "GB/s": r.gbps, "vs JS u32 (image)": `${(r.gbps / js).toFixed(1)}x` })),
  );
  summary({ figure: "zero page map, 1 MiB", ours: rows[0].gbps, peer: "JS u32 loop", theirs: js, unit: "GB/s" });
}
