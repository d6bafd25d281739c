import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { makeImage } from "../../src/device/pages.js";
import { isMigstreamError, type MigstreamError } from "../../src/errors.js";
import {
  LZ4_MAX_INPUT_SIZE,
  lz4Compress,
  lz4CompressBound,
  lz4CompressInto,
  lz4Decompress,
  lz4DecompressInto,
} from "../../src/kernels/lz4.js";
import { allocBuffer } from "../../src/kernels/wasm.js";
import { corpus, firstDiff, randomBytes, rng, textBytes } from "./data.js";
import {
  lz4jsCompress,
  lz4jsDecompress,
  lz4wasmCompress,
  lz4wasmDecompress,
  napiCompress,
  napiDecompress,
} from "./lz4-peers.js";

const require = createRequire(import.meta.url);
const xxh32 = require("lz4js/xxh32.js") as { hash(seed: number, src: Uint8Array, index: number, len: number): number };

function roundTrip(data: Uint8Array, acceleration = 1): Uint8Array {
  const c = lz4Compress(data, acceleration);
  expect(c.length).toBeLessThanOrEqual(lz4CompressBound(data.length));
  expect(firstDiff(lz4Decompress(c, data.length), data)).toBe(-1);
  return c;
}

/** Expects `fn` to throw MigstreamError with `code`; returns it. */
function expectCode(fn: () => unknown, code: string): MigstreamError {
  try {
    fn();
  } catch (e) {
    if (!isMigstreamError(e)) throw e;
    expect(e.code).toBe(code);
    return e;
  }
  throw new Error(`expected MigstreamError ${code}, nothing thrown`);
}

/** Data with repeats: random fragments copied from earlier positions. */
const repetitive = fc
  .tuple(
    fc.uint8Array({ minLength: 1, maxLength: 64 }),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 300 })), { maxLength: 40 }),
  )
  .map(([seed, ops]) => {
    const out: number[] = Array.from(seed);
    for (const [at, len] of ops) {
      const start = at % out.length;
      for (let i = 0; i < len; i++) out.push(out[start + (i % (out.length - start))]);
    }
    return Uint8Array.from(out);
  });

describe("lz4 block round trips", () => {
  it("round-trips every corpus at 64 KiB + 1 and 300 KiB", () => {
    for (const n of [65537, 300 * 1024]) {
      for (const [name, data] of corpus(n, n)) {
        const c = roundTrip(data);
        if (name === "zeros") expect(c.length).toBeLessThan(n / 200);
        if (name === "random") expect(c.length).toBeGreaterThan(n);
      }
    }
  });

  it("round-trips every length 0..64 of every corpus", () => {
    for (const [, data] of corpus(64, 5)) {
      for (let n = 0; n <= 64; n++) roundTrip(data.subarray(0, n));
    }
  });

  it("keeps inputs under 13 bytes all literals (end-of-block rule)", () => {
    for (let n = 0; n < 13; n++) {
      const c = lz4Compress(new Uint8Array(n));
      expect(c.length).toBe(n + 1);
      expect(c[0]).toBe(n << 4);
    }
  });

  it("ends every block with at least 5 literals and no match in the last 12 bytes", () => {
    for (const [, data] of corpus(5000, 9)) {
      const c = lz4Compress(data);
      // Walk the sequences; remember where the last match started in the output.
      let ip = 0;
      let op = 0;
      let lastMatchStart = -1;
      let lastLiterals = 0;
      while (true) {
        const token = c[ip++];
        let lit = token >> 4;
        if (lit === 15) for (let b = 255; b === 255; lit += b) b = c[ip++];
        ip += lit;
        op += lit;
        lastLiterals = lit;
        if (ip === c.length) break;
        ip += 2;
        let ml = token & 15;
        if (ml === 15) for (let b = 255; b === 255; ml += b) b = c[ip++];
        lastMatchStart = op;
        op += ml + 4;
      }
      expect(op).toBe(data.length);
      expect(lastLiterals).toBeGreaterThanOrEqual(Math.min(5, data.length));
      if (lastMatchStart >= 0) expect(lastMatchStart).toBeLessThanOrEqual(data.length - 12);
    }
  });

  it("round-trips a 1 MiB device image with every acceleration 1..24 and some large ones", () => {
    const img = makeImage(1 << 20, 3);
    const sizes: number[] = [];
    for (const a of [...Array.from({ length: 24 }, (_, i) => i + 1), 100, 1000, 65537, 1_000_000]) {
      sizes.push(roundTrip(img, a).length);
    }
    // Faster settings search less: never smaller than acceleration 1 here.
    for (const s of sizes) expect(s).toBeGreaterThanOrEqual(sizes[0]);
    expect(sizes[sizes.length - 1]).toBeGreaterThan(sizes[0]);
  });

  it("round-trips arbitrary and repetitive inputs (property)", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.uint8Array({ maxLength: 3000 }), repetitive),
        fc.integer({ min: 1, max: 20 }),
        (data, a) => {
          expect(firstDiff(lz4Decompress(lz4Compress(data, a), data.length), data)).toBe(-1);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("handles matches of every offset 1..40 and long overlapping runs", () => {
    for (let period = 1; period <= 40; period++) {
      const pat = randomBytes(period, period);
      const data = new Uint8Array(5000 + period);
      for (let i = 0; i < data.length; i++) data[i] = pat[i % period];
      const c = roundTrip(data);
      expect(c.length).toBeLessThan(200);
    }
  });

  it("keeps working across the hash table's generation wrap-around", () => {
    // Each call with >= 13 bytes advances the u32 generation by length + 64 KiB,
    // so 70 000 small calls wrap it (and force one table reset) at least once.
    const small = textBytes(40, 8);
    const ref = lz4Compress(small);
    const img = makeImage(100_000, 9);
    const imgRef = lz4Compress(img);
    for (let i = 0; i < 70_000; i++) {
      const c = lz4Compress(small);
      if (c.length !== ref.length || firstDiff(c, ref) !== -1) throw new Error(`call ${i} differs`);
    }
    expect(firstDiff(lz4Compress(img), imgRef)).toBe(-1);
  });

  it("compresses the same input to the same bytes on every call (no state leaks)", () => {
    const a = makeImage(200_000, 11);
    const b = textBytes(70_000, 4);
    const first = lz4Compress(a);
    lz4Compress(b);
    expect(firstDiff(lz4Compress(a), first)).toBe(-1);
  });
});

describe("lz4CompressInto", () => {
  it("returns 0 exactly when dst is smaller than the compressed size, else the same bytes", () => {
    for (const [, data] of corpus(3000, 21)) {
      const ref = lz4Compress(data);
      for (const cap of [0, 1, ref.length - 1, ref.length, ref.length + 1, lz4CompressBound(data.length)]) {
        if (cap < 0) continue;
        const dst = new Uint8Array(cap);
        const n = lz4CompressInto(data, dst);
        if (cap < ref.length) expect(n).toBe(0);
        else expect(firstDiff(dst.subarray(0, n), ref)).toBe(-1);
      }
    }
  });

  it("never writes past a too-small dst inside kernel memory", () => {
    const data = textBytes(4000, 2);
    const ref = lz4Compress(data);
    for (let cap = 0; cap <= ref.length + 2; cap += cap < ref.length - 40 ? 37 : 1) {
      const buf = allocBuffer(cap + 64);
      buf.view().fill(0xa5);
      const n = lz4CompressInto(data, buf.view(0, cap));
      expect(n).toBe(cap >= ref.length ? ref.length : 0);
      expect(buf.view(cap).every((b) => b === 0xa5)).toBe(true);
      if (n) expect(firstDiff(buf.view(0, n), ref)).toBe(-1);
      buf.free();
    }
  });

  it("compresses in place from and to kernel buffers", () => {
    const data = makeImage(100_000, 8);
    const src = allocBuffer(data.length);
    src.view().set(data);
    const dst = allocBuffer(lz4CompressBound(data.length));
    const n = lz4CompressInto(src.view(), dst.view());
    expect(n).toBe(lz4Compress(data).length);
    const out = allocBuffer(data.length);
    expect(lz4DecompressInto(dst.view(0, n), out.view())).toBe(data.length);
    expect(firstDiff(out.view(), data)).toBe(-1);
    for (const b of [src, dst, out]) b.free();
  });
});

describe("lz4 interoperability", () => {
  const inputs = [...corpus(70_000, 31), ...corpus(777, 32), ["short", textBytes(20, 1)] as [string, Uint8Array]];

  it("our blocks decode with lz4js, lz4-napi and lz4-wasm", () => {
    for (const [name, data] of inputs) {
      const c = lz4Compress(data);
      expect(firstDiff(lz4jsDecompress(c, data.length), data), `lz4js ${name}`).toBe(-1);
      expect(firstDiff(napiDecompress(c, data.length), data), `lz4-napi ${name}`).toBe(-1);
      expect(firstDiff(lz4wasmDecompress(c, data.length), data), `lz4-wasm ${name}`).toBe(-1);
    }
  });

  it("we decode blocks from lz4js, lz4-napi and lz4-wasm", () => {
    let fromLz4js = 0;
    for (const [name, data] of inputs) {
      // lz4js declines (returns no block) when it finds no match at all.
      const js = lz4jsCompress(data);
      if (js) {
        expect(firstDiff(lz4Decompress(js, data.length), data), `lz4js ${name}`).toBe(-1);
        fromLz4js++;
      }
      expect(firstDiff(lz4Decompress(napiCompress(data), data.length), data), `lz4-napi ${name}`).toBe(-1);
      expect(firstDiff(lz4Decompress(lz4wasmCompress(data), data.length), data), `lz4-wasm ${name}`).toBe(-1);
    }
    expect(fromLz4js).toBeGreaterThanOrEqual(inputs.length - 3);
  });

  it("peers decode our output for arbitrary inputs (property)", () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 2000 }), repetitive), (data) => {
        const c = lz4Compress(data);
        expect(firstDiff(lz4jsDecompress(c, data.length), data)).toBe(-1);
        expect(firstDiff(lz4wasmDecompress(c, data.length), data)).toBe(-1);
      }),
      { numRuns: 200 },
    );
  });

  // The lz4 CLI (installed by .ci/run) reads frames: wrap our block in one
  // (independent blocks, 4 MiB max block, no checksums), and unwrap its blocks.
  const LZ4_FRAME_MAGIC = 0x184d2204;
  const FLG = 0x60; // version 01, independent blocks
  const BD = 0x70; // 4 MiB max block size

  function frame(block: Uint8Array): Uint8Array {
    const out = new Uint8Array(7 + 4 + block.length + 4);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, LZ4_FRAME_MAGIC, true);
    out[4] = FLG;
    out[5] = BD;
    out[6] = (xxh32.hash(0, out, 4, 2) >>> 8) & 0xff;
    dv.setUint32(7, block.length, true);
    out.set(block, 11);
    dv.setUint32(11 + block.length, 0, true);
    return out;
  }

  function lz4cli(args: string[], input: Uint8Array): Uint8Array {
    const r = spawnSync("lz4", args, { input, maxBuffer: 64 << 20 });
    if (r.error) throw r.error;
    expect(r.status, r.stderr.toString()).toBe(0);
    return new Uint8Array(r.stdout);
  }

  it("the lz4 CLI decodes our blocks, and we decode its blocks", () => {
    for (const [name, data] of corpus(1 << 20, 41).filter(([n]) => n !== "random")) {
      expect(firstDiff(lz4cli(["-d", "-c"], frame(lz4Compress(data))), data), `cli decodes ${name}`).toBe(-1);
      const f = lz4cli(["-c", "-B7", "--no-frame-crc"], data);
      const dv = new DataView(f.buffer, f.byteOffset);
      expect(dv.getUint32(0, true)).toBe(LZ4_FRAME_MAGIC);
      const size = dv.getUint32(7, true);
      expect(size >>> 31, "block stored compressed").toBe(0);
      expect(firstDiff(lz4Decompress(f.subarray(11, 11 + size), data.length), data), `we decode cli ${name}`).toBe(-1);
    }
  });
});

describe("lz4 malformed input", () => {
  it("rejects hand-made bad blocks with CODEC and the failing offset", () => {
    const cases: [number[], number, number][] = [
      [[], 0, 0], // no token
      [[0x10, 0x61, 0x00, 0x00], 4, 2], // offset 0
      [[0x10, 0x61, 0x02, 0x00], 8, 2], // offset 2 > 1 byte of output
      [[0x00, 0x01, 0x00], 4, 1], // match before any output
      [[0x50, 0x61, 0x62], 5, 1], // literals run past the end
      [[0xf0, 0xff, 0xff], 600, 2], // literal length continuation runs past the end
      [[0x10, 0x61, 0x01], 10, 2], // offset cut in half
      [[0x1f, 0x61, 0x01, 0x00, 0xff], 400, 5], // match length continuation runs past the end
      [[0x10, 0x61, 0x01, 0x00], 5, 4], // ends after a match: the last sequence must be literals
    ];
    for (const [bytes, rawSize, offset] of cases) {
      const e = expectCode(() => lz4Decompress(Uint8Array.from(bytes), rawSize), "CODEC");
      expect(e.offset, `${bytes}`).toBe(offset);
    }
  });

  it("says expected vs produced when the declared size is wrong", () => {
    const data = textBytes(1000, 3);
    const c = lz4Compress(data);
    const big = expectCode(() => lz4Decompress(c, 1001), "CODEC");
    expect(big.message).toMatch(/1000 bytes, expected 1001/);
    const small = expectCode(() => lz4Decompress(c, 999), "CODEC");
    expect(small.message).toMatch(/more than the expected 999 bytes/);
    expectCode(() => lz4Decompress(c, 0), "CODEC");
    expectCode(() => lz4Decompress(c, c.length * 255 + 1), "CODEC");
    expectCode(() => lz4Decompress(c, -1), "USAGE");
    expectCode(() => lz4Decompress(c, 1.5), "USAGE");
    expectCode(() => lz4Decompress(c, LZ4_MAX_INPUT_SIZE + 1), "LIMIT");
    expectCode(() => lz4DecompressInto(c, new Uint8Array(999)), "CODEC");
    expect(lz4DecompressInto(c, new Uint8Array(1200))).toBe(1000);
  });

  it("every strict prefix of a block fails with CODEC", () => {
    const data = makeImage(20_000, 6);
    const c = lz4Compress(data);
    for (let n = 0; n < c.length; n += n < 200 || n > c.length - 200 ? 1 : 97) {
      expectCode(() => lz4Decompress(c.subarray(0, n), data.length), "CODEC");
    }
  });

  it("mutated blocks decode to the declared size or fail with CODEC, never anything else (property)", () => {
    const sources = [makeImage(16_384, 12), textBytes(3000, 12), new Uint8Array(2048), randomBytes(500, 12)];
    const blocks = sources.map((d) => ({ raw: d.length, block: lz4Compress(d) }));
    let rejected = 0;
    fc.assert(
      fc.property(
        fc.nat({ max: blocks.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        fc.nat(),
        fc.integer({ min: -3, max: 3 }),
        (which, edits, cut, sizeDelta) => {
          const { raw, block } = blocks[which];
          const m = block.slice(0, block.length - (cut % 4 === 0 ? cut % block.length : 0));
          for (const [at, v] of edits) if (m.length) m[at % m.length] = v;
          const rawSize = Math.max(0, raw + sizeDelta);
          try {
            expect(lz4Decompress(m, rawSize).length).toBe(rawSize);
          } catch (e) {
            if (!isMigstreamError(e, "CODEC")) throw e;
            rejected++;
          }
        },
      ),
      { numRuns: 3000 },
    );
    expect(rejected).toBeGreaterThan(1000); // the mutations do reach the error paths
  });

  it("stays inside src and dst for mutated blocks placed at the end of a kernel buffer", () => {
    const r = rng(77);
    const data = makeImage(8192, 13);
    const block = lz4Compress(data);
    const GUARD = 64;
    for (let t = 0; t < 300; t++) {
      const m = block.slice(0, block.length - (r() % 3 === 0 ? r() % block.length : 0));
      for (let e = r() % 6; e >= 0; e--) if (m.length) m[r() % m.length] = r() & 0xff;
      const cap = data.length - 64 + (r() % 128);
      const src = allocBuffer(m.length);
      src.view().set(m);
      const dst = allocBuffer(cap + GUARD);
      dst.view(cap).fill(0xa5);
      try {
        const n = lz4DecompressInto(src.view(), dst.view(0, cap));
        expect(n).toBeLessThanOrEqual(cap);
      } catch (e) {
        if (!isMigstreamError(e, "CODEC")) throw e;
      }
      expect(dst.view(cap).every((b) => b === 0xa5)).toBe(true);
      src.free();
      dst.free();
    }
  });
});

describe("lz4 API checks", () => {
  it("computes the bound like lz4.h", () => {
    expect(lz4CompressBound(0)).toBe(16);
    expect(lz4CompressBound(255)).toBe(255 + 1 + 16);
    expect(lz4CompressBound(1 << 20)).toBe((1 << 20) + Math.floor((1 << 20) / 255) + 16);
    expect(lz4CompressBound(LZ4_MAX_INPUT_SIZE + 1)).toBe(0);
    expect(lz4CompressBound(-1)).toBe(0);
  });

  it("rejects bad accelerations with USAGE", () => {
    const d = textBytes(100, 1);
    for (const a of [0, -1, 1.5, Number.NaN]) expectCode(() => lz4Compress(d, a), "USAGE");
    expectCode(() => lz4CompressInto(d, new Uint8Array(200), 0), "USAGE");
  });
});
