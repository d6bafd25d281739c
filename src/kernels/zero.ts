// Zero detection over byte buffers: whole-buffer test, zero-prefix length and
// per-page zero maps (v128 in the SIMD build). Scratch slots: SLOT_IN, SLOT_OUT.

import { MigstreamError } from "../errors.js";
import { inputPtr, kernels, memU8, SLOT_IN, SLOT_OUT, scratch } from "./wasm.js";

/** Default page size for page maps: the x86/arm64 base page. */
export const ZERO_PAGE_SIZE = 4096;
/** Largest page size accepted (1 GiB, the largest huge page). */
export const ZERO_MAX_PAGE_SIZE = 1 << 30;

function checkPageSize(pageSize: number): void {
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > ZERO_MAX_PAGE_SIZE) {
    throw new MigstreamError("USAGE", `page size must be an integer in 1..${ZERO_MAX_PAGE_SIZE}, got ${pageSize}`);
  }
}

/** True when every byte of `data` is zero (true for an empty array). */
export function isZero(data: Uint8Array): boolean {
  return kernels().zero_isZero(inputPtr(data, SLOT_IN), data.length) === 1;
}

/** Number of leading zero bytes (== data.length when all are zero). */
export function zeroPrefixLength(data: Uint8Array): number {
  return kernels().zero_prefixLength(inputPtr(data, SLOT_IN), data.length) >>> 0;
}

/**
 * One byte per page of `pageSize` bytes: 1 when the page is entirely zero, else
 * 0. The last page may be short (it is judged on the bytes it has).
 */
export function zeroPageMap(data: Uint8Array, pageSize = ZERO_PAGE_SIZE): Uint8Array {
  checkPageSize(pageSize);
  const pages = Math.ceil(data.length / pageSize);
  const ptr = inputPtr(data, SLOT_IN);
  const out = scratch(SLOT_OUT, pages);
  kernels().zero_pageMap(ptr, data.length, pageSize, out);
  return memU8().slice(out, out + pages);
}

/** Number of entirely-zero pages of `pageSize` bytes (the last may be short). */
export function countZeroPages(data: Uint8Array, pageSize = ZERO_PAGE_SIZE): number {
  checkPageSize(pageSize);
  return kernels().zero_countPages(inputPtr(data, SLOT_IN), data.length, pageSize) >>> 0;
}
