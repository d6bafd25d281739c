// LZ4 block codec: ours (SIMD build) against lz4-wasm (lz4_flex in wasm), lz4-napi
// (lz4_flex native) and lz4js, on a 1 MiB device-state-like image, one process run.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import {
  allocBuffer,
  lz4Compress,
  lz4CompressBound,
  lz4CompressInto,
  lz4Decompress,
  lz4DecompressInto,
} from "../../dist/kernels.js";
import { measure, printTable, summary } from "../lib.mjs";
import { makeImage } from "./image.mjs";

const require = createRequire(import.meta.url);
const SIZE = 1 << 20;
const RUNS = { warmup: 30, reps: 31 };

// lz4-wasm ships wasm-bindgen glue for bundlers; instantiate its wasm by hand with
// the one import it needs. Its blocks carry a 4-byte size prefix.
function loadLz4Wasm() {
  const bytes = readFileSync(require.resolve("lz4-wasm/lz4_wasm_bg.wasm"));
  const strings = [];
  let ex;
  const imports = {
    "./lz4_wasm_bg.js": {
      __wbindgen_string_new(ptr, len) {
        strings.push(new TextDecoder().decode(new Uint8Array(ex.memory.buffer, ptr, len)));
        return strings.length - 1;
      },
    },
  };
  ex = new WebAssembly.Instance(new WebAssembly.Module(bytes), imports).exports;
  // `copyOut` false: the codec alone (input copied into its memory, the output
  // left there and freed), without the glue's copy into a new JS array.
  const call = (fn, input, copyOut = true) => {
    const retptr = ex.__wbindgen_add_to_stack_pointer(-16);
    try {
      const p = ex.__wbindgen_malloc(input.length);
      new Uint8Array(ex.memory.buffer).set(input, p);
      ex[fn](retptr, p, input.length);
      const [r0, r1, r2, r3] = new Int32Array(ex.memory.buffer, retptr, 4);
      if (fn === "decompress" && r3) throw new Error(strings[r2]);
      const out = copyOut ? new Uint8Array(ex.memory.buffer).slice(r0, r0 + r1) : r1;
      ex.__wbindgen_free(r0, r1);
      return out;
    } finally {
      ex.__wbindgen_add_to_stack_pointer(16);
    }
  };
  return {
    compress: (x) => call("compress", x),
    decompress: (x) => call("decompress", x),
    compressCodec: (x) => call("compress", x, false),
    decompressCodec: (x) => call("decompress", x, false),
  };
}

function same(a, b) {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

export async function run() {
  const img = makeImage(SIZE, 7);
  const peers = [];

  // Ours: kernel buffers (in place), plain arrays into preallocated outputs
  // (copied in and out), and the allocating calls (new output arrays).
  const ours = lz4Compress(img);
  if (!same(lz4Decompress(ours, SIZE), img)) throw new Error("lz4 round trip failed");
  const src = allocBuffer(SIZE);
  src.view().set(img);
  const dst = allocBuffer(lz4CompressBound(SIZE));
  const raw = allocBuffer(SIZE);
  const n = lz4CompressInto(src.view(), dst.view());
  const plainDst = new Uint8Array(lz4CompressBound(SIZE));
  const plainRaw = new Uint8Array(SIZE);
  peers.push({
    impl: "ours, in place (kernel buffers)",
    size: n,
    c: measure(() => lz4CompressInto(src.view(), dst.view()), SIZE, RUNS),
    d: measure(() => lz4DecompressInto(dst.view(0, n), raw.view()), SIZE, RUNS),
  });
  peers.push({
    impl: "ours, *Into plain arrays",
    size: ours.length,
    c: measure(() => lz4CompressInto(img, plainDst), SIZE, RUNS),
    d: measure(() => lz4DecompressInto(ours, plainRaw), SIZE, RUNS),
  });
  peers.push({
    impl: "ours, new arrays",
    size: ours.length,
    c: measure(() => lz4Compress(img), SIZE, RUNS),
    d: measure(() => lz4Decompress(ours, SIZE), SIZE, RUNS),
  });

  const wasm = loadLz4Wasm();
  const wc = wasm.compress(img);
  if (!same(wasm.decompress(wc), img)) throw new Error("lz4-wasm round trip failed");
  peers.push({
    impl: "lz4-wasm, codec only",
    size: wc.length - 4,
    c: measure(() => wasm.compressCodec(img), SIZE, RUNS),
    d: measure(() => wasm.decompressCodec(wc), SIZE, RUNS),
  });
  peers.push({
    impl: "lz4-wasm, new arrays (its glue)",
    size: wc.length - 4,
    c: measure(() => wasm.compress(img), SIZE, RUNS),
    d: measure(() => wasm.decompress(wc), SIZE, RUNS),
  });

  const napi = require("lz4-napi");
  const buf = Buffer.from(img);
  const nc = napi.compressSync(buf);
  peers.push({
    impl: "lz4-napi (native), new arrays",
    size: nc.length - 4,
    c: measure(() => napi.compressSync(buf), SIZE, RUNS),
    d: measure(() => napi.uncompressSync(nc), SIZE, RUNS),
  });

  const lz4js = require("lz4js");
  const jsOut = new Uint8Array(lz4js.compressBound(SIZE));
  const jsRaw = new Uint8Array(SIZE);
  const jn = lz4js.compressBlock(img, jsOut, 0, SIZE, new Uint32Array(1 << 16));
  peers.push({
    impl: "lz4js, preallocated",
    size: jn,
    c: measure(() => lz4js.compressBlock(img, jsOut, 0, SIZE, new Uint32Array(1 << 16)), SIZE, { warmup: 2, reps: 7 }),
    d: measure(() => lz4js.decompressBlock(jsOut, jsRaw, 0, jn, 0), SIZE, { warmup: 2, reps: 7 }),
  });

  src.free();
  dst.free();
  raw.free();

  const ref = peers.find((p) => p.impl === "lz4-wasm, codec only");
  const rows = [];
  for (const op of ["compress", "decompress"]) {
    for (const p of peers) {
      const m = op === "compress" ? p.c : p.d;
      const r = op === "compress" ? ref.c : ref.d;
      rows.push({
        op,
        impl: p.impl,
        "GB/s": m.gbps,
        "vs lz4-wasm codec": `${(m.gbps / r.gbps).toFixed(2)}x`,
        ratio: (SIZE / p.size).toFixed(4),
      });
    }
  }
  printTable(`LZ4 block, 1 MiB device image (40% zero / 20% code / 25% heap / 15% random pages)`, rows);
  const inPlace = peers[0];
  summary({
    figure: "LZ4 block compress, 1 MiB",
    ours: inPlace.c.gbps,
    peer: ref.impl,
    theirs: ref.c.gbps,
    unit: "GB/s",
  });
  summary({
    figure: "LZ4 block decompress, 1 MiB",
    ours: inPlace.d.gbps,
    peer: ref.impl,
    theirs: ref.d.gbps,
    unit: "GB/s",
  });
}
