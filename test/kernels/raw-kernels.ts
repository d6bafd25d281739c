// Fresh instances of the built kernel binaries (build/kernels.wasm and
// build/kernels-scalar.wasm), outside the library's loader, so tests can compare
// the SIMD and scalar builds and place buffers at exact addresses (e.g. flush
// against the end of linear memory, where any over-read traps).
import { readFileSync } from "node:fs";

// biome-ignore lint: raw export table
export type RawKernels = Record<string, any> & {
  memory: WebAssembly.Memory;
  heapBase(): number;
  simdEnabled(): number;
};

export type Build = "simd" | "scalar";
export const BUILDS: readonly Build[] = ["simd", "scalar"];

export function rawKernels(build: Build): RawKernels {
  const file = build === "simd" ? "kernels.wasm" : "kernels-scalar.wasm";
  const bytes = readFileSync(new URL(`../../build/${file}`, import.meta.url));
  const imports = {
    env: {
      abort(): never {
        throw new Error("kernel abort");
      },
    },
  };
  return new WebAssembly.Instance(new WebAssembly.Module(bytes), imports).exports as unknown as RawKernels;
}

/** A simple bump layout in a raw instance: returns 64-aligned pointers, growing memory. */
export class RawArena {
  private top: number;
  constructor(readonly k: RawKernels) {
    this.top = (k.heapBase() + 63) & ~63;
  }
  alloc(n: number): number {
    const p = this.top;
    this.top = (p + n + 63) & ~63;
    const have = this.k.memory.buffer.byteLength;
    if (this.top > have) this.k.memory.grow(Math.ceil((this.top - have) / 65536));
    return p;
  }
  put(data: Uint8Array): number {
    const p = this.alloc(data.length);
    this.u8().set(data, p);
    return p;
  }
  /** Copies `data` so that it ends exactly at the end of linear memory, above every allocation. */
  atMemoryEnd(data: Uint8Array): number {
    const have = this.k.memory.buffer.byteLength;
    if (have - data.length < this.top) this.k.memory.grow(Math.ceil((this.top + data.length - have) / 65536));
    const end = this.k.memory.buffer.byteLength;
    this.u8().set(data, end - data.length);
    return end - data.length;
  }
  u8(): Uint8Array {
    return new Uint8Array(this.k.memory.buffer);
  }
  reset(): void {
    this.top = (this.k.heapBase() + 63) & ~63;
  }
}
