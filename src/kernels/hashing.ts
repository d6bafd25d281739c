// Shared plumbing of the checksum bindings (xxh64, xxh3, crc32c): argument
// checks, feeding an input to a kernel in place or through a bounded scratch
// slot, and streaming states in kernel memory that are recycled when freed or
// garbage-collected. Internal: not exported from the package.

import { MigstreamError } from "../errors.js";
import { allocBlock, freeBlock, inKernelMemory, memU8, SLOT_IN, scratch } from "./wasm.js";

/** Inputs outside kernel memory are copied in at most this many bytes at a time. */
export const CHUNK_BYTES = 1 << 20;

const U64_MAX = (1n << 64n) - 1n;
const U32_MAX = 0xffffffff;

export function checkBytes(data: unknown, where: string): asserts data is Uint8Array {
  if (!(data instanceof Uint8Array))
    throw new MigstreamError("USAGE", `${where}: data must be a Uint8Array`, { field: "data" });
}

/** Validates an unsigned 64-bit seed. */
export function checkSeed(seed: unknown, where: string): bigint {
  if (typeof seed !== "bigint" || seed < 0n || seed > U64_MAX) {
    throw new MigstreamError("USAGE", `${where}: seed must be a bigint in [0, 2^64)`, { field: "seed" });
  }
  return seed;
}

/** Validates an unsigned 32-bit value (a CRC to continue). */
export function checkU32(value: unknown, where: string, field: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > U32_MAX) {
    throw new MigstreamError("USAGE", `${where}: ${field} must be an integer in [0, 2^32)`, { field });
  }
  return value;
}

/** A signed i64 from the kernel as the unsigned 64-bit value it stands for. */
export function u64(x: bigint): bigint {
  return BigInt.asUintN(64, x);
}

/**
 * Pointer to `data` in kernel memory when it fits one piece: its own offset
 * when it already lies there (no copy), else a copy in scratch slot SLOT_IN.
 * Returns -1 when `data` is foreign and longer than CHUNK_BYTES.
 */
export function wholeInputPtr(data: Uint8Array): number {
  if (inKernelMemory(data)) return data.byteOffset;
  if (data.length > CHUNK_BYTES) return -1;
  const ptr = scratch(SLOT_IN, data.length);
  memU8().set(data, ptr);
  return ptr;
}

/**
 * Calls `run(ptr, len)` over all of `data`: once in place when it lies in
 * kernel memory, else over copies of at most CHUNK_BYTES in scratch slot
 * SLOT_IN (so a huge foreign input never grows kernel memory by its size).
 * An empty foreign input makes no call.
 */
export function feed(data: Uint8Array, run: (ptr: number, len: number) => void): void {
  if (inKernelMemory(data)) {
    run(data.byteOffset, data.length);
    return;
  }
  for (let off = 0; off < data.length; off += CHUNK_BYTES) {
    const piece = data.subarray(off, Math.min(off + CHUNK_BYTES, data.length));
    const ptr = scratch(SLOT_IN, piece.length);
    memU8().set(piece, ptr);
    run(ptr, piece.length);
  }
}

/** A streaming state block in kernel memory. */
export interface StateBlock {
  ptr: number;
  capacity: number;
}

// A hasher that is dropped without free() returns its block when collected.
const registry = new FinalizationRegistry<StateBlock>((b) => freeBlock(b.ptr, b.capacity));

/** Allocates a state block of `size` bytes owned by `owner`. May grow memory. */
export function allocState(owner: object, size: number): StateBlock {
  const b = allocBlock(size);
  registry.register(owner, b, owner);
  return b;
}

/** Returns `owner`'s state block to the arena now. */
export function releaseState(owner: object, b: StateBlock): void {
  registry.unregister(owner);
  freeBlock(b.ptr, b.capacity);
}

export function usedAfterFree(where: string): MigstreamError {
  return new MigstreamError("USAGE", `${where} used after free()`);
}
