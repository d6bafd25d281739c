// Independent LZ4 block implementations used as cross-checks: lz4js (pure JS),
// lz4-napi (native lz4_flex; size-prefixed blocks) and lz4-wasm (lz4_flex built to
// wasm; size-prefixed blocks). lz4-wasm's glue expects a bundler's wasm import,
// so it is instantiated here by hand with the one import it needs.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

interface Lz4js {
  compressBound(n: number): number;
  compressBlock(src: Uint8Array, dst: Uint8Array, sIndex: number, sLength: number, hashTable: Uint32Array): number;
  decompressBlock(src: Uint8Array, dst: Uint8Array, sIndex: number, sLength: number, dIndex: number): number;
}
interface Lz4Napi {
  compressSync(data: Buffer): Buffer;
  uncompressSync(data: Uint8Array): Buffer;
}

const lz4js = require("lz4js") as Lz4js;
const napi = require("lz4-napi") as Lz4Napi;

/** lz4js block compressor; returns a bare block, or null when lz4js found no match. */
export function lz4jsCompress(src: Uint8Array): Uint8Array | null {
  const dst = new Uint8Array(lz4js.compressBound(src.length) + 16);
  const n = lz4js.compressBlock(src, dst, 0, src.length, new Uint32Array(1 << 16));
  return n === 0 ? null : dst.slice(0, n);
}

/** lz4js block decoder into exactly `rawSize` bytes; returns the decoded length. */
export function lz4jsDecompress(block: Uint8Array, rawSize: number): Uint8Array {
  const dst = new Uint8Array(rawSize);
  const n = lz4js.decompressBlock(block, dst, 0, block.length, 0);
  return dst.subarray(0, n);
}

function prefixSize(block: Uint8Array, rawSize: number): Uint8Array {
  const out = new Uint8Array(block.length + 4);
  new DataView(out.buffer).setUint32(0, rawSize, true);
  out.set(block, 4);
  return out;
}

export function napiCompress(src: Uint8Array): Uint8Array {
  return new Uint8Array(napi.compressSync(Buffer.from(src))).subarray(4);
}

export function napiDecompress(block: Uint8Array, rawSize: number): Uint8Array {
  return new Uint8Array(napi.uncompressSync(prefixSize(block, rawSize)));
}

interface WasmBindgenLz4 {
  memory: WebAssembly.Memory;
  compress(retptr: number, ptr: number, len: number): void;
  decompress(retptr: number, ptr: number, len: number): void;
  __wbindgen_add_to_stack_pointer(delta: number): number;
  __wbindgen_malloc(n: number): number;
  __wbindgen_free(ptr: number, n: number): void;
}

let lz4wasm: WasmBindgenLz4 | null = null;
const wbStrings: string[] = [];

function loadLz4Wasm(): WasmBindgenLz4 {
  if (lz4wasm) return lz4wasm;
  const bytes = readFileSync(require.resolve("lz4-wasm/lz4_wasm_bg.wasm"));
  const imports = {
    "./lz4_wasm_bg.js": {
      __wbindgen_string_new(ptr: number, len: number): number {
        const mem = (lz4wasm as WasmBindgenLz4).memory.buffer;
        wbStrings.push(new TextDecoder().decode(new Uint8Array(mem, ptr, len)));
        return wbStrings.length - 1;
      },
    },
  };
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), imports);
  lz4wasm = inst.exports as unknown as WasmBindgenLz4;
  return lz4wasm;
}

function wasmCall(fn: "compress" | "decompress", input: Uint8Array): Uint8Array {
  const ex = loadLz4Wasm();
  const retptr = ex.__wbindgen_add_to_stack_pointer(-16);
  try {
    const p = ex.__wbindgen_malloc(input.length);
    new Uint8Array(ex.memory.buffer).set(input, p);
    ex[fn](retptr, p, input.length);
    const [r0, r1, r2, r3] = new Int32Array(ex.memory.buffer, retptr, 4);
    if (fn === "decompress" && r3) throw new Error(`lz4-wasm: ${wbStrings[r2]}`);
    const out = new Uint8Array(ex.memory.buffer).slice(r0, r0 + r1);
    ex.__wbindgen_free(r0, r1);
    return out;
  } finally {
    ex.__wbindgen_add_to_stack_pointer(16);
  }
}

export function lz4wasmCompress(src: Uint8Array): Uint8Array {
  return wasmCall("compress", src).subarray(4);
}

export function lz4wasmDecompress(block: Uint8Array, rawSize: number): Uint8Array {
  return wasmCall("decompress", prefixSize(block, rawSize));
}
