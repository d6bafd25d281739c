// LZ4, zero map and CDC kernels from the built package under Deno, no permissions.
import {
  CdcChunker,
  cdcBoundaries,
  countZeroPages,
  isZero,
  lz4Compress,
  lz4Decompress,
  zeroPageMap,
} from "../../dist/kernels.js";
import { assert, sample as sampleOf } from "./helpers.ts";

const sample = (n: number) => sampleOf(n, 12345);

Deno.test("lz4 round trip", () => {
  const data = sample(100_000);
  const c = lz4Compress(data);
  assert(c.length < data.length, "compresses");
  const d = lz4Decompress(c, data.length);
  assert(d.length === data.length && d.every((b: number, i: number) => b === data[i]), "round trip");
  let code = "";
  try {
    lz4Decompress(c, data.length + 1);
  } catch (e) {
    code = (e as { code?: string }).code ?? "";
  }
  assert(code === "CODEC", "wrong size is a CODEC error");
});

Deno.test("zero page map", () => {
  const data = sample(10 * 4096 + 100);
  const map = zeroPageMap(data);
  assert(map.length === 11, "one byte per page");
  assert(Array.from(map).join("") === "10010010010", `map ${Array.from(map).join("")}`);
  assert(countZeroPages(data) === 4, "count");
  assert(isZero(new Uint8Array(777)) && !isZero(data), "isZero");
});

Deno.test("cdc boundaries, one shot and streaming", () => {
  const data = sample(300_000);
  const opts = { minSize: 1024, avgSize: 4096, maxSize: 16384 };
  const ends = cdcBoundaries(data, opts);
  assert(ends[ends.length - 1] === data.length, "last boundary is the length");
  for (let i = 1; i < ends.length; i++) assert(ends[i] > ends[i - 1], "increasing");
  const c = new CdcChunker(opts);
  const got = [...c.push(data.subarray(0, 12345)), ...c.push(data.subarray(12345)), ...c.finish()];
  assert(got.join() === Array.from(ends).join(), "streaming equals one shot");
});
