// Memory layout shared with the TypeScript binding (src/kernels/wasm.ts).
// Kernels never allocate: every buffer is a (pointer, length) pair into linear
// memory that the binding's arena handed out above __heap_base.

/** First byte the binding may use for its arena (end of static data). */
export function heapBase(): usize {
  return __heap_base;
}

/** 1 when this build uses v128 SIMD paths, 0 for the scalar build. */
export function simdEnabled(): i32 {
  return ASC_FEATURE_SIMD ? 1 : 0;
}
