// Checksums: XXH3-64, XXH64, CRC32C against hash-wasm and xxhash-wasm, on
// 1 MiB calls and one whole 64 MiB buffer. Results are cross-checked first.
import { createCRC32, createXXHash3, createXXHash64 } from "hash-wasm";
import xxhash from "xxhash-wasm";
import { allocBuffer, crc32c, xxh3_64, xxh64 } from "../../dist/kernels.js";
import { measure, printTable, summary } from "../lib.mjs";
import { makeImage } from "./image.mjs";

const SMALL = 1 << 20;
const BIG = 64 << 20;
const CASTAGNOLI = 0x82f63b78;

/** hash-wasm hashers reused across calls (their fastest form); digest as bigint / u32. */
async function peers() {
  const h3 = await createXXHash3(0, 0);
  const h64 = await createXXHash64(0, 0);
  const c = await createCRC32(CASTAGNOLI);
  const { h64Raw } = await xxhash();
  const big = (hex) => BigInt(`0x${hex}`);
  return {
    xxh3: (d) => big(h3.init().update(d).digest("hex")),
    xxh64: (d) => big(h64.init().update(d).digest("hex")),
    crc: (d) => Number.parseInt(c.init().update(d).digest("hex"), 16),
    xxh64wasm: (d) => h64Raw(d, 0n),
  };
}

function check(name, a, b) {
  if (a !== b) throw new Error(`${name}: ours ${a} vs peer ${b}`);
}

export async function run() {
  const p = await peers();
  const rows = [];
  for (const size of [SMALL, BIG]) {
    const img = makeImage(size, 11);
    const buf = allocBuffer(size);
    buf.view().set(img);
    check("xxh3", xxh3_64(img), p.xxh3(img));
    check("xxh64", xxh64(img), p.xxh64(img));
    check("xxh64/xxhash-wasm", xxh64(img), p.xxh64wasm(img));
    check("crc32c", crc32c(img), p.crc(img));
    const runs = size === SMALL ? { warmup: 10, reps: 31 } : { warmup: 1, reps: 5 };
    const label = size === SMALL ? "1 MiB" : "64 MiB";
    const add = (algo, impl, fn) => rows.push({ algo, size: label, impl, ...measure(fn, size, runs) });
    add("XXH3-64", "ours (in place)", () => xxh3_64(buf.view()));
    add("XXH3-64", "ours (copy in)", () => xxh3_64(img));
    add("XXH3-64", "hash-wasm", () => p.xxh3(img));
    add("XXH64", "ours (in place)", () => xxh64(buf.view()));
    add("XXH64", "ours (copy in)", () => xxh64(img));
    add("XXH64", "hash-wasm", () => p.xxh64(img));
    add("XXH64", "xxhash-wasm", () => p.xxh64wasm(img));
    add("CRC32C", "ours (in place)", () => crc32c(buf.view()));
    add("CRC32C", "ours (copy in)", () => crc32c(img));
    add("CRC32C", "hash-wasm", () => p.crc(img));
    buf.free();
  }
  const peerOf = (r) => rows.find((x) => x.algo === r.algo && x.size === r.size && x.impl === "hash-wasm").gbps;
  printTable(
    "checksums (process image: zero, code, heap, random pages)",
    rows.map((r) => ({
      algo: r.algo,
      size: r.size,
      impl: r.impl,
      "GB/s": r.gbps,
      "vs hash-wasm": `${(r.gbps / peerOf(r)).toFixed(2)}x`,
    })),
  );
  const at = (algo, impl) => rows.find((r) => r.algo === algo && r.size === "64 MiB" && r.impl === impl).gbps;
  for (const [algo, peer] of [
    ["XXH3-64", "hash-wasm"],
    ["XXH64", "xxhash-wasm"],
    ["CRC32C", "hash-wasm"],
  ]) {
    summary({
      figure: `${algo}, 64 MiB`,
      ours: at(algo, "ours (in place)"),
      peer,
      theirs: at(algo, peer),
      unit: "GB/s",
    });
  }
}
