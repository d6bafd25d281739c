/// <reference path="./zstd-codec.d.ts" />
// zstd chunks through the `zstd-codec` package (zstd 1.3.6 compiled by
// emscripten into a fixed 16 MiB heap). Loaded lazily by `loadZstd()`; where
// the package cannot load (browsers) zstd is simply unavailable.
//
// The heap is the constraint: one call holds the input, the output and zstd's
// work tables, and running out aborts the instance (it prints "OOM" and
// throws). So every call is kept far below the measured limits (see
// ZSTD_LEVEL_MAX_CHUNK), a payload's frame header is checked before decoding
// (checkZstdFrame: no allocation beyond the expected raw length), and an
// instance that throws anyway is retired and replaced in the background.

import type { ZstdApi, ZstdSimple } from "zstd-codec";
import { MigstreamError } from "../errors.js";
import { outputFor } from "./output.js";
import { checkZstdFrame, zstdCompressBound } from "./zstd-frame.js";

export const ZSTD_MIN_LEVEL = 1;
export const ZSTD_MAX_LEVEL = 19;
export const ZSTD_DEFAULT_LEVEL = 3;

/**
 * Largest chunk compressed in one call, by level band. Measured on random data
 * (worst case) with a fresh instance, the largest input that still fits is
 * 5.2 MiB at level 1, 4.2 MiB at 5, 3.2 MiB at 8, 2.2 MiB at 9 and 512 KiB at
 * 10-19 (above 512 KiB zstd picks a 1 MiB window whose tables fill the heap).
 * Each value here leaves at least ZSTD_HEAP_HEADROOM free at its band's worst level.
 */
export const ZSTD_LEVEL_MAX_CHUNK: readonly number[] = [
  0, // level 0: unused
  ...Array<number>(7).fill(2 << 20), // 1-7: 2 MiB (headroom 3.4 MiB at level 7)
  ...Array<number>(2).fill(1 << 20), // 8-9: 1 MiB (2.4 MiB at level 9)
  ...Array<number>(3).fill(512 << 10), // 10-12: 512 KiB (3.4 MiB at level 12)
  ...Array<number>(7).fill(256 << 10), // 13-19: 256 KiB (5.2 MiB at level 19)
];
/** Free heap left by the chunk limits above, as measured (documentation of the margin). */
export const ZSTD_HEAP_HEADROOM = 2 << 20;
/** Largest zstd chunk accepted for decoding: 4 MiB output + its frame leave 2.8 MiB free. */
export const ZSTD_MAX_DECODE_SIZE = 4 << 20;
/** Give up loading the package after this long. */
export const ZSTD_LOAD_TIMEOUT_MS = 30_000;

/** Largest chunk `encodeZstd` takes at `level` (levels 1..19). */
export function zstdMaxChunk(level: number): number {
  checkZstdLevel(level);
  return ZSTD_LEVEL_MAX_CHUNK[level];
}

export function checkZstdLevel(level: number): void {
  if (!Number.isInteger(level) || level < ZSTD_MIN_LEVEL || level > ZSTD_MAX_LEVEL) {
    throw new MigstreamError("USAGE", `zstd level must be an integer in ${ZSTD_MIN_LEVEL}..${ZSTD_MAX_LEVEL}, got ${level}`);
  }
}

// Module state: the loaded package, the live instance, and a pending
// (re)load. `failure` records why the package could not load.
let api: { ZstdCodec: { run(onReady: (zstd: ZstdApi) => void): void } } | null = null;
let instance: ZstdSimple | null = null;
let pending: Promise<void> | null = null;
let failure: unknown = null;
let restarts = 0;
let loadedOnce = false;

function newInstance(): Promise<ZstdSimple> {
  const run = api!.ZstdCodec.run;
  return new Promise<ZstdSimple>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("zstd-codec did not initialise")), ZSTD_LOAD_TIMEOUT_MS);
    try {
      // The callback gets a plain object; never resolve with the emscripten
      // Module itself (it is a thenable and would never settle).
      run((zstd) => {
        clearTimeout(timer);
        resolve(new zstd.Simple());
      });
    } catch (e) {
      clearTimeout(timer);
      reject(e);
    }
  });
}

/** Loads the package and an instance once; later calls wait for a pending restart. */
export function loadZstd(): Promise<void> {
  if (instance !== null || failure !== null) return Promise.resolve();
  pending ??= (async () => {
    try {
      if (api === null) {
        const m = await import("zstd-codec");
        api = m.ZstdCodec ? m : m.default;
        if (!api?.ZstdCodec) throw new Error("zstd-codec has no ZstdCodec export");
      }
      instance = await newInstance();
      loadedOnce = true;
    } catch (e) {
      failure = e;
    } finally {
      pending = null;
    }
  })();
  return pending;
}

/** True once zstd is loaded and its instance is live. */
export function zstdAvailable(): boolean {
  return instance !== null;
}

/** True once the package loaded (an instance may be restarting: zstdAvailable() says if one is live). */
export function zstdLoaded(): boolean {
  return loadedOnce && failure === null;
}

/** Times an instance was retired after an abort (for tests and diagnostics). */
export function zstdRestarts(): number {
  return restarts;
}

function unavailable(): MigstreamError {
  if (loadedOnce && failure === null) {
    return new MigstreamError("CODEC", "zstd is restarting after a failed call; await ready() and retry");
  }
  return new MigstreamError("CODEC", "zstd is unavailable in this runtime", { cause: failure ?? undefined });
}

/** Runs `f` on the live instance; an exception (heap abort) retires the instance. */
function call<T>(what: string, f: (z: ZstdSimple) => T | null): T | null {
  const z = instance;
  if (z === null) throw unavailable();
  try {
    return f(z);
  } catch (e) {
    // An emscripten abort leaves the heap in an unknown state: replace it.
    if (instance === z) {
      instance = null;
      restarts++;
      void loadZstd();
    }
    throw new MigstreamError("CODEC", `zstd ${what} aborted: ${String(e).slice(0, 80)}`, { cause: e });
  }
}

/** One zstd frame (content size declared) for `raw`, at `level` 1..19. */
export function encodeZstd(raw: Uint8Array, level: number): Uint8Array {
  checkZstdLevel(level);
  const max = ZSTD_LEVEL_MAX_CHUNK[level];
  if (raw.length > max) {
    throw new MigstreamError("LIMIT", `zstd level ${level} takes chunks up to ${max} bytes, got ${raw.length}`);
  }
  return compressUnchecked(raw, level);
}

/** Compresses without the size guard. Exported for the restart test only. */
export function compressUnchecked(raw: Uint8Array, level: number): Uint8Array {
  const out = call("compress", (z) => z.compress(raw, level));
  if (out === null) throw new MigstreamError("CODEC", `zstd compress failed on ${raw.length} bytes`);
  return out;
}

/** Decodes one zstd frame to exactly `rawLength` bytes, or throws CODEC (LIMIT above ZSTD_MAX_DECODE_SIZE). */
export function decodeZstd(payload: Uint8Array, rawLength: number, into?: Uint8Array): Uint8Array {
  if (instance === null) throw unavailable();
  if (rawLength > ZSTD_MAX_DECODE_SIZE) {
    throw new MigstreamError("LIMIT", `zstd chunk of ${rawLength} bytes exceeds ${ZSTD_MAX_DECODE_SIZE}`);
  }
  if (payload.length > zstdCompressBound(rawLength)) {
    throw new MigstreamError("CODEC", `zstd payload of ${payload.length} bytes is too large for ${rawLength} bytes`);
  }
  checkZstdFrame(payload, rawLength);
  const out = outputFor(rawLength, into);
  if (rawLength === 0) return out; // zstd-codec refuses empty frames; the check above proved it empty
  const got = call("decompress", (z) => z.decompress(payload));
  if (got === null) throw new MigstreamError("CODEC", "zstd frame is corrupt");
  if (got.length !== rawLength) {
    throw new MigstreamError("CODEC", `zstd frame decoded to ${got.length} bytes, expected ${rawLength}`);
  }
  if (into === undefined) return got;
  out.set(got);
  return out;
}
