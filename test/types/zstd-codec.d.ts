// The part of the `zstd-codec` package (CommonJS, emscripten build of zstd
// 1.3.6) that the tests and benchmarks use as an independent cross-check.
declare module "zstd-codec" {
  export interface ZstdSimple {
    /** A frame with its content size declared, or null on failure. */
    compress(content: Uint8Array, level?: number): Uint8Array | null;
    /** The content of a frame that declares its size, or null on any failure. */
    decompress(frame: Uint8Array): Uint8Array | null;
  }
  export interface ZstdApi {
    Simple: new () => ZstdSimple;
  }
  export const ZstdCodec: { run(onReady: (zstd: ZstdApi) => void): void };
  const _default: { ZstdCodec: typeof ZstdCodec };
  export default _default;
}
