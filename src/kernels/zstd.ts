// zstd 1.5.7 compiled to WebAssembly (scripts/build-zstd.mjs, C glue in
// native/zstd/glue.c), embedded as base64: no file access, no imports, so it
// loads the same way in Node, Deno and browsers.
//
// One instance per realm (each worker gets its own), created lazily and
// synchronously on first use. It keeps one compression and one decompression
// context and two scratch buffers (input, output) in its own linear memory,
// all reused across calls. Synchronous compilation is fine in Node, Deno and
// any worker; browsers may refuse it on the main thread for a module of this
// size, so call `await initZstd()` there first.
//
// Zero-copy input: `zstdInput(n)` is a view of the input scratch buffer; fill
// it (e.g. read a region straight into it) and pass it to zstdCompress, which
// then compresses in place. Any zstd call may grow memory, which detaches
// earlier views: take the view again after each call.

import { MigstreamError } from "../errors.js";
import { ZSTD_WASM_BASE64 } from "./zstd-wasm.generated.js";

/** Linear memory ceiling of the module (scripts/build-zstd.mjs links with this maximum). */
export const ZSTD_WASM_MAX_MEMORY = 64 << 20;
/** Largest input or output of one call; the rest of memory holds zstd's tables. */
export const ZSTD_WASM_MAX_BUFFER = 16 << 20;
/** Lowest compression level the module is built and tested for. */
export const ZSTD_WASM_MIN_LEVEL = 1;
/** Highest compression level the module is built and tested for. */
export const ZSTD_WASM_MAX_LEVEL = 19;

interface ZstdExports {
  memory: WebAssembly.Memory;
  zs_malloc(n: number): number;
  zs_free(ptr: number): void;
  zs_compress(level: number, src: number, srcLen: number, dst: number, dstCap: number): number;
  zs_decompress(src: number, srcLen: number, dst: number, dstCap: number): number;
  zs_compress_bound(n: number): number;
  zs_is_error(code: number): number;
  zs_error_name(code: number): number;
  zs_version(): number;
  zs_contexts_size(): number;
  zs_reset(): void;
}

interface Scratch {
  ptr: number;
  capacity: number;
}

let ex: ZstdExports | null = null;
let input: Scratch = { ptr: 0, capacity: 0 };
let output: Scratch = { ptr: 0, capacity: 0 };

function wasmBytes(): Uint8Array<ArrayBuffer> {
  const bin = atob(ZSTD_WASM_BASE64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function adopt(instance: WebAssembly.Instance): ZstdExports {
  ex = instance.exports as unknown as ZstdExports;
  input = { ptr: 0, capacity: 0 };
  output = { ptr: 0, capacity: 0 };
  return ex;
}

/** The instance, compiled synchronously on first use. */
function wasm(): ZstdExports {
  return ex ?? adopt(new WebAssembly.Instance(new WebAssembly.Module(wasmBytes()), {}));
}

/** Creates the instance synchronously (Node, Deno, workers). Idempotent. */
export function initZstdSync(): void {
  wasm();
}

/** Creates the instance asynchronously (browser main threads). Idempotent. */
export async function initZstd(): Promise<void> {
  if (ex !== null) return;
  const { instance } = await WebAssembly.instantiate(wasmBytes(), {});
  if (ex === null) adopt(instance);
}

/** zstd's version number (10507 for 1.5.7). */
export function zstdVersion(): number {
  return wasm().zs_version();
}

/** The module's memory (tests and diagnostics: its size only grows, up to ZSTD_WASM_MAX_MEMORY). */
export function zstdMemory(): WebAssembly.Memory {
  return wasm().memory;
}

/** Worst-case frame size for n input bytes. */
export function zstdWasmBound(n: number): number {
  return wasm().zs_compress_bound(n) >>> 0;
}

function checkSize(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new MigstreamError("USAGE", `zstd ${what} size ${n} is invalid`);
  if (n > ZSTD_WASM_MAX_BUFFER) {
    throw new MigstreamError("LIMIT", `zstd ${what} of ${n} bytes exceeds ${ZSTD_WASM_MAX_BUFFER}`);
  }
}

/** Makes `s` hold at least n bytes (contents kept only when it is already large enough). */
function ensure(x: ZstdExports, s: Scratch, n: number, what: string): Scratch {
  if (s.capacity >= n && s.ptr !== 0) return s;
  if (s.ptr !== 0) x.zs_free(s.ptr);
  s.ptr = 0;
  s.capacity = 0;
  const cap = Math.max(n, 64);
  const ptr = x.zs_malloc(cap) >>> 0;
  if (ptr === 0) {
    throw new MigstreamError(
      "LIMIT",
      `zstd ${what} buffer of ${n} bytes does not fit in ${ZSTD_WASM_MAX_MEMORY >>> 20} MiB of wasm memory`,
    );
  }
  s.ptr = ptr;
  s.capacity = cap;
  return s;
}

/**
 * A view of n bytes at the start of the input scratch buffer, for zero-copy
 * compression (see the header). LIMIT above ZSTD_WASM_MAX_BUFFER.
 */
export function zstdInput(n: number): Uint8Array {
  checkSize(n, "input");
  const x = wasm();
  const s = ensure(x, input, n, "input");
  return new Uint8Array(x.memory.buffer, s.ptr, n);
}

/** Pointer to `data` in the instance: in place when it lies in the input buffer, else copied there. */
function place(x: ZstdExports, data: Uint8Array): number {
  if (
    data.buffer === x.memory.buffer &&
    data.byteOffset >= input.ptr &&
    data.byteOffset + data.length <= input.ptr + input.capacity &&
    input.ptr !== 0
  ) {
    return data.byteOffset;
  }
  // A view elsewhere in this memory would be detached by a growth below: take a copy first.
  const src = data.buffer === x.memory.buffer ? data.slice() : data;
  const s = ensure(x, input, src.length, "input");
  new Uint8Array(x.memory.buffer, s.ptr, src.length).set(src);
  return s.ptr;
}

function errorName(x: ZstdExports, code: number): string {
  const at = x.zs_error_name(code) >>> 0;
  const mem = new Uint8Array(x.memory.buffer);
  let end = at;
  while (end < mem.length && mem[end] !== 0) end++;
  return new TextDecoder().decode(mem.subarray(at, end));
}

const ERROR_MEMORY = -64 >>> 0; // (size_t)-ZSTD_error_memory_allocation

/** Runs one call; a zstd error code becomes CODEC (LIMIT when out of memory), a trap retires the instance. */
function run(what: string, f: (x: ZstdExports) => number): number {
  const x = wasm();
  let r: number;
  try {
    r = f(x) >>> 0;
  } catch (e) {
    if (e instanceof MigstreamError) throw e;
    // A trap leaves the C heap in an unknown state: the next call starts afresh.
    if (ex === x) ex = null;
    throw new MigstreamError("CODEC", `zstd ${what} trapped: ${String(e).slice(0, 80)}`, { cause: e });
  }
  if (x.zs_is_error(r) === 0) return r;
  const name = errorName(x, r);
  if (r === ERROR_MEMORY) {
    throw new MigstreamError(
      "LIMIT",
      `zstd ${what}: ${name} (wasm memory is limited to ${ZSTD_WASM_MAX_MEMORY >>> 20} MiB)`,
    );
  }
  throw new MigstreamError("CODEC", `zstd ${what}: ${name}`);
}

/** Copies n bytes at ptr out of the instance: into `into` (its prefix is returned) or a new array. */
function takeOut(x: ZstdExports, ptr: number, n: number, into: Uint8Array | undefined, what: string): Uint8Array {
  const src = new Uint8Array(x.memory.buffer, ptr, n);
  if (into === undefined) return src.slice();
  if (into.buffer === x.memory.buffer)
    throw new MigstreamError("USAGE", `zstd ${what} cannot be written into zstd's own memory`);
  if (into.length < n)
    throw new MigstreamError("LIMIT", `zstd ${what} of ${n} bytes does not fit the ${into.length}-byte output`);
  const out = into.subarray(0, n);
  out.set(src);
  return out;
}

function checkLevel(level: number): void {
  if (!Number.isInteger(level) || level < ZSTD_WASM_MIN_LEVEL || level > ZSTD_WASM_MAX_LEVEL) {
    throw new MigstreamError(
      "USAGE",
      `zstd level must be an integer in ${ZSTD_WASM_MIN_LEVEL}..${ZSTD_WASM_MAX_LEVEL}, got ${level}`,
    );
  }
}

/**
 * One zstd frame for `raw` at `level`: content size declared, no checksum, no
 * dictionary ID. Written into `into` when given (LIMIT if it is too small).
 */
export function zstdCompress(raw: Uint8Array, level: number, into?: Uint8Array): Uint8Array {
  checkLevel(level);
  checkSize(raw.length, "input");
  const x = wasm();
  const n = raw.length;
  const src = place(x, raw);
  const cap = x.zs_compress_bound(n) >>> 0;
  const dst = ensure(x, output, cap, "output").ptr;
  const size = run("compress", (w) => w.zs_compress(level, src, n, dst, cap));
  return takeOut(x, dst, size, into, "frame");
}

/**
 * Decodes one frame that must produce exactly `rawLength` bytes (CODEC
 * otherwise; callers check the frame header first, see codec/zstd-frame.ts).
 * Written into `into` when given.
 */
export function zstdDecompress(frame: Uint8Array, rawLength: number, into?: Uint8Array): Uint8Array {
  checkSize(frame.length, "frame");
  checkSize(rawLength, "output");
  const x = wasm();
  const src = place(x, frame);
  const dst = ensure(x, output, rawLength, "output").ptr;
  const size = run("decompress", (w) => w.zs_decompress(src, frame.length, dst, rawLength));
  if (size !== rawLength)
    throw new MigstreamError("CODEC", `zstd frame decoded to ${size} bytes, expected ${rawLength}`);
  return takeOut(x, dst, size, into, "output");
}

/** Frees the contexts' tables and the scratch buffers (memory itself never shrinks). */
export function zstdRelease(): void {
  if (ex === null) return;
  ex.zs_reset();
  for (const s of [input, output]) if (s.ptr !== 0) ex.zs_free(s.ptr);
  input = { ptr: 0, capacity: 0 };
  output = { ptr: 0, capacity: 0 };
}
