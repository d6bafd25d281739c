// Independent implementations for cross-checks: lz4js (pure JS LZ4 block
// decoder) and the zstd command-line tool (reference C implementation).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fillPage, type PageKind } from "../../src/device/pages.js";

const require = createRequire(import.meta.url);
const lz4js = require("lz4js") as {
  decompressBlock(src: Uint8Array, dst: Uint8Array, sIndex: number, sLength: number, dIndex: number): number;
};

/** lz4js's decoding of one block into a buffer of `rawSize` (+ slack) bytes. */
export function lz4jsDecode(block: Uint8Array, rawSize: number): Uint8Array {
  const dst = new Uint8Array(rawSize + 64);
  const n = lz4js.decompressBlock(block, dst, 0, block.length, 0);
  return dst.slice(0, n);
}

/** `zstd -d -c` on a frame (stdin → stdout). */
export function zstdCliDecode(frame: Uint8Array): Uint8Array {
  return new Uint8Array(execFileSync("zstd", ["-d", "-c", "-q"], { input: frame, maxBuffer: 64 << 20 }));
}

/** `zstd -<level> -c file`: from a file, so the frame declares its content size. */
export function zstdCliEncode(data: Uint8Array, args: string[]): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), "migstream-zstd-"));
  try {
    const file = join(dir, "chunk");
    writeFileSync(file, data);
    return new Uint8Array(execFileSync("zstd", [...args, "-c", "-q", file], { maxBuffer: 64 << 20 }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `zstd -<level> -c` reading stdin: the frame does not declare its content size. */
export function zstdCliEncodeStdin(data: Uint8Array, level: number): Uint8Array {
  return new Uint8Array(execFileSync("zstd", [`-${level}`, "-c", "-q"], { input: data, maxBuffer: 64 << 20 }));
}

/** A chunk of `size` bytes made of pages of one kind. */
export function chunkOf(kind: PageKind, size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  for (let off = 0, p = 0; off < size; off += 4096, p++)
    fillPage(out.subarray(off, Math.min(size, off + 4096)), kind, seed * 7919 + p + 1);
  return out;
}

export const SIZES = [1, 7, 100, 4095, 4096, 4097, 65539, 1 << 20];
