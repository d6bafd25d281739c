// One WebAssembly module, one linear memory: a buffer read from a device region
// can be chunked, hashed, zero-checked and compressed in place with no copies.
export { heapBase, simdEnabled } from "./memory";
export * from "./xxh64";
export * from "./xxh3";
export * from "./crc32c";
export * from "./zero";
export * from "./chunk";
export * from "./lz4";
