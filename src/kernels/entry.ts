// The "vfio-migstream/kernels" entry: every kernel, zstd included. The main
// entry re-exports ./index.js only, so that importing the library does not
// parse the embedded zstd module (~0.5 MB) until a stream needs zstd.
export * from "./index.js";
export {
  initZstd,
  initZstdSync,
  ZSTD_WASM_MAX_BUFFER,
  ZSTD_WASM_MAX_LEVEL,
  ZSTD_WASM_MAX_MEMORY,
  ZSTD_WASM_MIN_LEVEL,
  zstdCompress,
  zstdDecompress,
  zstdInput,
  zstdRelease,
  zstdVersion,
  zstdWasmBound,
} from "./zstd.js";
