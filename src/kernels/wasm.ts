// Loads the kernel WebAssembly module (embedded, no file access) and manages its
// linear memory.
//
// Ownership rule (read this before using views):
// - Every kernel takes plain Uint8Arrays. If an array already lies in kernel memory
//   (`data.buffer === kernelMemory().buffer`, e.g. from `KernelBuffer.view()`), the
//   kernel runs on it in place with no copy; otherwise the bytes are copied into a
//   scratch slot first.
// - Any call that may allocate (a kernel call with an input outside kernel memory,
//   `allocBuffer`, a new streaming hasher) may grow memory. Growing detaches every
//   view into the old memory. Re-derive views (`KernelBuffer.view()`) after such
//   calls; never keep one across them.
// - Memory only grows (grow-only arena). Scratch slots are reused across calls;
//   buffers and states are recycled through size-class free lists.

// Errors: like everything else, MigstreamError — LIMIT when memory cannot
// grow, USAGE for a freed buffer, INTERNAL for a kernel abort (a bug).

import { MigstreamError } from "../errors.js";
import type { KernelExports } from "./kernel-exports.generated.js";
import { WASM_SCALAR_BASE64, WASM_SIMD_BASE64 } from "./wasm-binary.generated.js";

export type { KernelExports };

const PAGE = 65536;
/** Linear memory ceiling: 4 GiB (wasm32) minus one page of headroom. */
export const MAX_KERNEL_MEMORY = 65535 * PAGE;

let exportsRef: KernelExports | null = null;
let heapTop = 0;

function decodeBase64(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function imports(): WebAssembly.Imports {
  return {
    env: {
      abort(_msg: number, _file: number, line: number, col: number): never {
        throw new MigstreamError("INTERNAL", `kernel abort at ${line}:${col}`);
      },
    },
  };
}

function pickBinary(preferSimd: boolean): Uint8Array<ArrayBuffer> {
  const simd = decodeBase64(WASM_SIMD_BASE64);
  if (preferSimd && WebAssembly.validate(simd)) return simd;
  return decodeBase64(WASM_SCALAR_BASE64);
}

function adopt(instance: WebAssembly.Instance): KernelExports {
  // The instance is of the module the declarations were generated from (scripts/embed-wasm.mjs).
  const ex = instance.exports as unknown as KernelExports;
  exportsRef = ex;
  heapTop = align(ex.heapBase(), 64);
  return ex;
}

/** Options of the kernels' init() and initSync(). */
export interface InitOptions {
  /** Use the v128 SIMD build when the engine supports it (default true). */
  simd?: boolean;
}

/** Synchronous init (Node, Deno, workers). Idempotent. */
export function initSync(options: InitOptions = {}): KernelExports {
  if (exportsRef) return exportsRef;
  const mod = new WebAssembly.Module(pickBinary(options.simd ?? true) as BufferSource);
  return adopt(new WebAssembly.Instance(mod, imports()));
}

/** Asynchronous init (required on browser main threads for large modules). Idempotent. */
export async function init(options: InitOptions = {}): Promise<KernelExports> {
  if (exportsRef) return exportsRef;
  const { instance } = await WebAssembly.instantiate(pickBinary(options.simd ?? true) as BufferSource, imports());
  return exportsRef ?? adopt(instance);
}

/** The kernel exports, initialising synchronously on first use. */
export function kernels(): KernelExports {
  return exportsRef ?? initSync();
}

/** True when the loaded kernels use the SIMD build. */
export function simdActive(): boolean {
  return kernels().simdEnabled() === 1;
}

/** The kernel module's linear memory (views into it detach when it grows). */
export function kernelMemory(): WebAssembly.Memory {
  return kernels().memory;
}

/** A fresh byte view of all of kernel memory (re-derive after any growth). */
export function memU8(): Uint8Array {
  return new Uint8Array(kernels().memory.buffer);
}

/** n rounded up to a multiple of a (arithmetic, not bitwise: sizes reach 4 GiB). */
function align(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** Bump-allocates `n` bytes (64-byte aligned) from the grow-only arena. */
function bump(n: number): number {
  const k = kernels();
  const ptr = heapTop;
  const end = ptr + align(Math.max(n, 1), 64);
  if (end > MAX_KERNEL_MEMORY)
    throw new MigstreamError(
      "LIMIT",
      `kernel memory limit: cannot allocate ${n} bytes (at most ${MAX_KERNEL_MEMORY} in all)`,
    );
  const have = k.memory.buffer.byteLength;
  if (end > have) {
    try {
      k.memory.grow(Math.ceil((end - have) / PAGE));
    } catch (e) {
      throw new MigstreamError("LIMIT", `kernel memory could not grow to ${end} bytes: ${String(e)}`, { cause: e });
    }
  }
  heapTop = end;
  return ptr;
}

// Size classes are powers of two from 64 B; freed blocks go back to their class.
const freeLists = new Map<number, number[]>();

function sizeClass(n: number): number {
  let c = 64;
  while (c < n) c *= 2;
  return c;
}

/** Allocates a block of at least `n` bytes; release it with `freeBlock`. */
export function allocBlock(n: number): { ptr: number; capacity: number } {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new MigstreamError("USAGE", `cannot allocate ${n} bytes of kernel memory`);
  const capacity = sizeClass(n);
  const list = freeLists.get(capacity);
  const ptr = list && list.length > 0 ? (list.pop() as number) : bump(capacity);
  return { ptr, capacity };
}

export function freeBlock(ptr: number, capacity: number): void {
  let list = freeLists.get(capacity);
  if (!list) {
    list = [];
    freeLists.set(capacity, list);
  }
  list.push(ptr);
}

// Scratch slots: per-purpose regions reused by every call (inputs copied in,
// outputs produced before being copied out). A slot only ever grows.
const slots: { ptr: number; capacity: number }[] = [];

/** Pointer to scratch slot `id` with room for `n` bytes. May grow memory. */
export function scratch(id: number, n: number): number {
  const s = slots[id];
  if (s && s.capacity >= n) return s.ptr;
  if (s) freeBlock(s.ptr, s.capacity);
  const b = allocBlock(n);
  slots[id] = b;
  return b.ptr;
}

/** Scratch slot ids. Each kernel documents which it uses. */
export const SLOT_IN = 0;
export const SLOT_OUT = 2;
export const SLOT_AUX = 3;

/** True when `data` is a view into kernel memory (zero-copy path). */
export function inKernelMemory(data: Uint8Array): boolean {
  return exportsRef !== null && data.buffer === exportsRef.memory.buffer;
}

/**
 * Returns a pointer to `data` inside kernel memory: its own offset when it is
 * already there, else the start of scratch slot `slot` after copying it in.
 */
export function inputPtr(data: Uint8Array, slot: number = SLOT_IN): number {
  if (inKernelMemory(data)) return data.byteOffset;
  const ptr = scratch(slot, data.length);
  memU8().set(data, ptr);
  return ptr;
}

/**
 * A caller-owned buffer inside kernel memory, for the zero-copy path: fill
 * `view()` (e.g. read a device region straight into it), then pass `view()` to
 * kernels, which run in place. Call `view()` again after anything that may grow
 * memory; `free()` returns it to the arena.
 */
export class KernelBuffer {
  readonly ptr: number;
  readonly length: number;
  private capacity: number;
  private freed = false;

  constructor(length: number) {
    const b = allocBlock(length);
    this.ptr = b.ptr;
    this.capacity = b.capacity;
    this.length = length;
  }

  view(start = 0, end = this.length): Uint8Array {
    if (this.freed) throw new MigstreamError("USAGE", "KernelBuffer used after free");
    return new Uint8Array(kernels().memory.buffer, this.ptr + start, end - start);
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    freeBlock(this.ptr, this.capacity);
  }
}

/** Allocates a zero-copy buffer of `length` bytes in kernel memory. */
export function allocBuffer(length: number): KernelBuffer {
  return new KernelBuffer(length);
}
