// Our zstd WebAssembly build from the built package under Deno, no permissions:
// a synchronous instance from the embedded bytes, round trips at several
// levels, zero-copy input, and a corrupt frame as a typed error.
import { zstdCompress, zstdDecompress, zstdInput, zstdVersion } from "../../dist/kernels.js";
import { assert, sample as sampleOf } from "./helpers.ts";

const sample = (n: number) => sampleOf(n, 4242);

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);

Deno.test("zstd 1.5.7 round trips at levels 1, 3, 19", () => {
  assert(zstdVersion() === 10507, `version ${zstdVersion()}`);
  const data = sample(200_000);
  for (const level of [1, 3, 19]) {
    const frame = zstdCompress(data, level);
    assert(frame.length < data.length / 2, `level ${level} compresses`);
    assert(same(zstdDecompress(frame, data.length), data), `level ${level} round trip`);
  }
  assert(zstdDecompress(zstdCompress(new Uint8Array(0), 1), 0).length === 0, "empty input");
});

Deno.test("zstd compresses in place from its input buffer", () => {
  const data = sample(100_000);
  zstdInput(data.length).set(data);
  const inPlace = zstdCompress(zstdInput(data.length), 3);
  assert(same(inPlace, zstdCompress(data, 3)), "same frame as from a copy");
});

Deno.test("zstd corrupt frame is a CODEC error", () => {
  const data = sample(50_000);
  const frame = zstdCompress(data, 3);
  let code = "";
  try {
    zstdDecompress(frame.subarray(0, frame.length - 5), data.length);
  } catch (e) {
    code = (e as { code?: string }).code ?? String(e);
  }
  assert(code === "CODEC", `truncated frame gave ${code}`);
});
