// Our zstd WebAssembly build (src/kernels/zstd.ts): round trips, the frame
// shape the format expects, cross-checks against the zstd CLI and zstd-codec
// (zstd 1.3.6, emscripten) in both directions, corrupt input, memory limits.

import { createRequire } from "node:module";
import { beforeAll, describe, expect, it } from "vitest";
import type { ZstdSimple } from "zstd-codec";
import { ZSTD_LEVEL_MAX_CHUNK } from "../../src/codec/zstd.js";
import { checkZstdFrame } from "../../src/codec/zstd-frame.js";
import { makeImage } from "../../src/device/pages.js";
import { isMigstreamError } from "../../src/errors.js";
import {
  ZSTD_WASM_MAX_BUFFER,
  ZSTD_WASM_MAX_MEMORY,
  zstdCompress,
  zstdDecompress,
  zstdInput,
  zstdMemory,
  zstdVersion,
  zstdWasmBound,
} from "../../src/kernels/zstd.js";
import { zstdCliDecode, zstdCliEncode } from "../codec/peers.js";
import { firstDiff, randomBytes, rng, textBytes } from "./data.js";

const LEVELS = [1, 3, 9, 19];

function data(kind: string, n: number, seed: number): Uint8Array {
  switch (kind) {
    case "zero":
      return new Uint8Array(n);
    case "random":
      return randomBytes(n, seed);
    case "text":
      return textBytes(n, seed);
    default:
      return makeImage(n, seed);
  }
}
const KINDS = ["zero", "random", "text", "pages"];

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isMigstreamError(e)) return e.code;
    throw e;
  }
  return "none";
}

let codec: ZstdSimple;
beforeAll(async () => {
  const { ZstdCodec } = createRequire(import.meta.url)("zstd-codec") as typeof import("zstd-codec");
  codec = await new Promise<ZstdSimple>((resolve) => ZstdCodec.run((z) => resolve(new z.Simple())));
});

describe("zstd wasm build", () => {
  it("is zstd 1.5.7", () => {
    expect(zstdVersion()).toBe(10507);
  });

  it("round-trips every data kind at levels 1, 3, 9, 19 (0, 1 and odd sizes)", () => {
    for (const level of LEVELS) {
      for (const kind of KINDS) {
        for (const n of [0, 1, 2, 4095, 70_000]) {
          const raw = data(kind, n, n + level);
          const frame = zstdCompress(raw, level);
          expect(frame.length).toBeLessThanOrEqual(zstdWasmBound(n));
          const info = checkZstdFrame(frame, n);
          expect(info.checksum).toBe(false);
          const back = zstdDecompress(frame, n);
          expect(back.length).toBe(n);
          expect(firstDiff(back, raw), `${kind} ${n} at level ${level}`).toBe(-1);
        }
      }
    }
  });

  it("round-trips chunks at each level's size limit", () => {
    for (const level of LEVELS) {
      const n = ZSTD_LEVEL_MAX_CHUNK[level];
      for (const kind of level === 19 ? ["pages"] : ["pages", "random"]) {
        const raw = data(kind, n, level);
        const frame = zstdCompress(raw, level);
        checkZstdFrame(frame, n);
        expect(firstDiff(zstdDecompress(frame, n), raw), `${kind} at level ${level}`).toBe(-1);
        if (kind === "pages") expect(frame.length).toBeLessThan(n / 2);
      }
    }
  });

  it("compresses in place from its input buffer, with the same result as from a copy", () => {
    const raw = makeImage(300_000, 9);
    const copied = zstdCompress(raw, 3);
    zstdInput(raw.length).set(raw);
    const inPlace = zstdCompress(zstdInput(raw.length), 3);
    expect(firstDiff(inPlace, copied)).toBe(-1);
    // Anywhere inside the input buffer works in place too.
    zstdInput(raw.length + 100).set(raw, 100);
    expect(firstDiff(zstdCompress(zstdInput(raw.length + 100).subarray(100), 3), copied)).toBe(-1);
    // A frame placed in the input buffer decodes in place.
    zstdInput(copied.length).set(copied);
    expect(firstDiff(zstdDecompress(zstdInput(copied.length), raw.length), raw)).toBe(-1);
    // Output into the module's own memory is refused (it would overwrite zstd's state).
    expect(codeOf(() => zstdDecompress(copied, raw.length, zstdInput(raw.length)))).toBe("USAGE");
  });

  it("writes into a caller's buffer and refuses one that is too small", () => {
    const raw = textBytes(50_000, 4);
    const frame = zstdCompress(raw, 1);
    const into = new Uint8Array(frame.length + 10).fill(0xee);
    const got = zstdCompress(raw, 1, into);
    expect(got.buffer).toBe(into.buffer);
    expect(firstDiff(got, frame)).toBe(-1);
    expect(into[frame.length]).toBe(0xee);
    expect(codeOf(() => zstdCompress(raw, 1, new Uint8Array(frame.length - 1)))).toBe("LIMIT");
    const out = new Uint8Array(raw.length + 1);
    expect(firstDiff(zstdDecompress(frame, raw.length, out), raw)).toBe(-1);
    expect(codeOf(() => zstdDecompress(frame, raw.length, new Uint8Array(10)))).toBe("LIMIT");
  });

  it("rejects levels outside 1..19", () => {
    for (const level of [0, 20, 1.5, -1]) expect(codeOf(() => zstdCompress(new Uint8Array(10), level))).toBe("USAGE");
  });
});

describe("zstd wasm against independent implementations", () => {
  const sizes = [0, 1, 5000, 200_000];

  it("its frames decode with the zstd CLI", () => {
    for (const level of LEVELS) {
      const raws = sizes.map((n, i) => data(KINDS[i % KINDS.length], n, level + i));
      // Concatenated frames decode to the concatenated contents (one process per level).
      const out = zstdCliDecode(Buffer.concat(raws.map((r) => zstdCompress(r, level))));
      expect(firstDiff(out, Buffer.concat(raws)), `level ${level}`).toBe(-1);
    }
  });

  it("decodes the zstd CLI's frames", () => {
    for (const level of [1, 3, 19]) {
      for (const [i, n] of sizes.entries()) {
        const raw = data(KINDS[(i + 1) % KINDS.length], n, 7 * level + i);
        const frame = zstdCliEncode(raw, [`-${level}`]);
        expect(firstDiff(zstdDecompress(frame, n), raw), `${n} at level ${level}`).toBe(-1);
      }
    }
  });

  it("its frames decode with zstd-codec and zstd-codec's decode with it", () => {
    for (const level of LEVELS) {
      for (const [i, n] of sizes.entries()) {
        if (n === 0) continue; // zstd-codec refuses empty input both ways
        const raw = data(KINDS[(i + 2) % KINDS.length], n, 11 * level + i);
        const ours = zstdCompress(raw, level);
        expect(firstDiff(codec.decompress(ours)!, raw), `ours ${n} level ${level}`).toBe(-1);
        const theirs = codec.compress(raw, level)!;
        checkZstdFrame(theirs, n);
        expect(firstDiff(zstdDecompress(theirs, n), raw), `theirs ${n} level ${level}`).toBe(-1);
      }
    }
  });
});

describe("zstd wasm on bad input", () => {
  const raw = makeImage(64 << 10, 3);
  const frame = zstdCompress(raw, 3);

  it("garbage, truncated and mislabelled frames give CODEC", () => {
    expect(codeOf(() => zstdDecompress(new Uint8Array(0), 10))).toBe("CODEC");
    expect(codeOf(() => zstdDecompress(randomBytes(1000, 1), 10))).toBe("CODEC");
    for (const cut of [1, 4, 6, 20, frame.length >> 1, frame.length - 1]) {
      expect(
        codeOf(() => zstdDecompress(frame.subarray(0, cut), raw.length)),
        `cut at ${cut}`,
      ).toBe("CODEC");
    }
    expect(codeOf(() => zstdDecompress(frame, raw.length - 1))).toBe("CODEC"); // output does not fit
    expect(codeOf(() => zstdDecompress(frame, raw.length + 1))).toBe("CODEC"); // decodes short
    const twice = new Uint8Array([...frame, ...frame]);
    expect(codeOf(() => zstdDecompress(twice, raw.length * 2))).toBe("none");
    expect(codeOf(() => zstdDecompress(twice, raw.length))).toBe("CODEC");
  });

  it("random byte changes never crash: CODEC or exactly rawLength bytes", () => {
    const r = rng(77);
    let rejected = 0;
    for (let k = 0; k < 400; k++) {
      const bad = frame.slice();
      for (let j = 1 + (r() % 3); j > 0; j--) bad[r() % bad.length] ^= 1 + (r() % 255);
      try {
        expect(zstdDecompress(bad, raw.length).length).toBe(raw.length);
      } catch (e) {
        if (!isMigstreamError(e) || e.code !== "CODEC") throw e;
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(100);
    // The instance still works afterwards.
    expect(firstDiff(zstdDecompress(frame, raw.length), raw)).toBe(-1);
  });
});

describe("zstd wasm memory limit", () => {
  it("refuses buffers above ZSTD_WASM_MAX_BUFFER with LIMIT", () => {
    expect(codeOf(() => zstdInput(ZSTD_WASM_MAX_BUFFER + 1))).toBe("LIMIT");
    expect(codeOf(() => zstdDecompress(new Uint8Array(8), ZSTD_WASM_MAX_BUFFER + 1))).toBe("LIMIT");
    expect(zstdInput(1 << 20).length).toBe(1 << 20);
  });

  it("a call whose tables exceed ZSTD_WASM_MAX_MEMORY fails with LIMIT, and the instance keeps working", () => {
    // Level 19 on 16 MiB picks an 8 MiB window and a 64 MiB chain table: more
    // than the memory may hold.
    const big = zstdInput(ZSTD_WASM_MAX_BUFFER);
    big.fill(7);
    expect(codeOf(() => zstdCompress(zstdInput(ZSTD_WASM_MAX_BUFFER), 19))).toBe("LIMIT");
    expect(zstdMemory().buffer.byteLength).toBeLessThanOrEqual(ZSTD_WASM_MAX_MEMORY);
    const raw = textBytes(100_000, 5);
    expect(firstDiff(zstdDecompress(zstdCompress(raw, 19), raw.length), raw)).toBe(-1);
  });
});
