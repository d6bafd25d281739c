// Raw kernels: checksums, zero detection, chunking, LZ4 block codec, zstd frames.
// Import from "vfio-migstream/kernels". Call `initSync()` or `await init()` once;
// every kernel is synchronous afterwards (and initialises lazily if you forget).

export * from "./chunk.js";
export * from "./crc32c.js";
export * from "./lz4.js";
export {
  allocBuffer,
  type InitOptions,
  init,
  initSync,
  KernelBuffer,
  kernelMemory,
  MAX_KERNEL_MEMORY,
  simdActive,
} from "./wasm.js";
export * from "./xxh3.js";
export * from "./xxh64.js";
export * from "./zero.js";
