// zstd chunks through our own WebAssembly build of zstd 1.5.7
// (src/kernels/zstd.ts): synchronous, one instance per thread. `loadZstd()`
// (or init()) imports the binding — a separate module, so that
// streams without zstd never parse its ~0.5 MB — and creates the instance,
// or records why a runtime cannot run it: zstd is then unavailable and
// everything else works.
//
// A payload's frame header is checked before decoding (checkZstdFrame: one
// frame, content size equal to the expected raw length, no dictionary), so
// decoding allocates nothing beyond that length.

import { MigstreamError } from "../errors.js";
import { outputFor } from "./output.js";
import { checkZstdFrame, zstdCompressBound } from "./zstd-frame.js";

export const ZSTD_MIN_LEVEL = 1;
export const ZSTD_MAX_LEVEL = 19;
export const ZSTD_DEFAULT_LEVEL = 3;

/**
 * Largest chunk compressed in one call, by level band. These are the limits of
 * the earlier engine (zstd-codec's fixed 16 MiB heap), kept so that streams
 * stay decodable by readers that still use it; they also bound the tables one
 * call needs (a few MiB at most, ZSTD_WASM_MAX_MEMORY is the hard cap).
 */
export const ZSTD_LEVEL_MAX_CHUNK: readonly number[] = [
  0, // level 0: unused
  ...Array<number>(7).fill(2 << 20), // 1-7: 2 MiB
  ...Array<number>(2).fill(1 << 20), // 8-9: 1 MiB
  ...Array<number>(3).fill(512 << 10), // 10-12: 512 KiB
  ...Array<number>(7).fill(256 << 10), // 13-19: 256 KiB
];
/** Largest zstd chunk accepted for decoding (as with the earlier engine: the format's readers agree on it). */
export const ZSTD_MAX_DECODE_SIZE = 4 << 20;

/** Throws USAGE unless `level` is a zstd level: an integer in ZSTD_MIN_LEVEL..ZSTD_MAX_LEVEL. */
export function checkZstdLevel(level: number): void {
  if (!Number.isInteger(level) || level < ZSTD_MIN_LEVEL || level > ZSTD_MAX_LEVEL) {
    throw new MigstreamError(
      "USAGE",
      `zstd level must be an integer in ${ZSTD_MIN_LEVEL}..${ZSTD_MAX_LEVEL}, got ${level}`,
      { field: "level" },
    );
  }
}

/** Highest level ≤ `level` whose chunk limit (ZSTD_LEVEL_MAX_CHUNK) admits n bytes, or 0 if none. */
export function zstdLevelFor(n: number, level: number): number {
  for (let l = level; l >= ZSTD_MIN_LEVEL; l--) if (n <= ZSTD_LEVEL_MAX_CHUNK[l]) return l;
  return 0;
}

type Engine = typeof import("../kernels/zstd.js");
let engine: Engine | null = null;
let failure: unknown = null;
let pending: Promise<void> | null = null;

/** Imports the binding and creates this thread's zstd instance (once; later calls wait for the first). */
export function loadZstd(): Promise<void> {
  if (engine !== null || failure !== null) return Promise.resolve();
  pending ??= import("../kernels/zstd.js").then(
    (m) => {
      try {
        m.initZstdSync();
        engine = m;
      } catch (e) {
        failure = e; // e.g. an engine without WebAssembly SIMD
      }
    },
    (e) => {
      failure = e;
    },
  );
  return pending;
}

/** True once zstd is loaded (loadZstd() or init()) and usable in this runtime (an instance that trapped is replaced on the next call). */
export function zstdAvailable(): boolean {
  return engine !== null;
}

/** The CODEC error for zstd work in a runtime where zstd did not load. */
export function zstdUnavailable(): MigstreamError {
  return new MigstreamError("CODEC", "zstd is unavailable in this runtime (await init() first)", {
    cause: failure ?? undefined,
  });
}

/**
 * One zstd frame (content size declared) for `raw`, at a level already
 * checked (coding.ts); into `into` when given (LIMIT, nothing written, if it
 * does not fit).
 */
export function encodeZstd(raw: Uint8Array, level: number, into?: Uint8Array): Uint8Array {
  const max = ZSTD_LEVEL_MAX_CHUNK[level];
  if (raw.length > max) {
    throw new MigstreamError("LIMIT", `zstd level ${level} takes chunks up to ${max} bytes, got ${raw.length}`);
  }
  if (engine === null) throw zstdUnavailable();
  return engine.zstdCompress(raw, level, into);
}

/** Decodes one zstd frame to exactly `rawLength` bytes, or throws CODEC (LIMIT above ZSTD_MAX_DECODE_SIZE). */
export function decodeZstd(payload: Uint8Array, rawLength: number, into?: Uint8Array): Uint8Array {
  if (engine === null) throw zstdUnavailable();
  if (rawLength > ZSTD_MAX_DECODE_SIZE) {
    throw new MigstreamError("LIMIT", `zstd chunk of ${rawLength} bytes exceeds ${ZSTD_MAX_DECODE_SIZE}`);
  }
  if (payload.length > zstdCompressBound(rawLength)) {
    throw new MigstreamError("CODEC", `zstd payload of ${payload.length} bytes is too large for ${rawLength} bytes`);
  }
  checkZstdFrame(payload, rawLength);
  return engine.zstdDecompress(payload, rawLength, into === undefined ? undefined : outputFor(rawLength, into));
}
