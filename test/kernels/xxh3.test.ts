import fc from "fast-check";
import { createXXHash3 } from "hash-wasm";
import { beforeAll, describe, expect, it } from "vitest";
import { isMigstreamError } from "../../src/errors.js";
import { CHUNK_BYTES } from "../../src/kernels/hashing.js";
import { allocBuffer, kernelMemory } from "../../src/kernels/wasm.js";
import { Xxh3, xxh3_64 } from "../../src/kernels/xxh3.js";
import { ascii, LENGTHS, loadPeers, type Peers, pattern, SEEDS, splitAt } from "./checksum-peers.js";
import { randomBytes } from "./data.js";
import { BUILDS, RawArena, rawKernels } from "./raw-kernels.js";

let peers: Peers;
beforeAll(async () => {
  peers = await loadPeers();
});

const U64 = (1n << 64n) - 1n;

describe("xxh3_64", () => {
  // First in the file: the arena's scratch slots are still empty, so any copy
  // of a kernel-memory input would have to grow memory.
  it("hashes kernel-memory input in place (no copy, no growth)", () => {
    const n = 4 << 20;
    const buf = allocBuffer(n);
    buf.view().set(randomBytes(n, 7));
    const h = new Xxh3(42n);
    const before = kernelMemory().buffer.byteLength;
    const one = xxh3_64(buf.view(), 42n);
    const streamed = h.update(buf.view(0, 12345)).update(buf.view(12345)).digest();
    expect(kernelMemory().buffer.byteLength).toBe(before);
    expect(one).toBe(peers.xxh3(buf.view().slice(), 42n));
    expect(streamed).toBe(one);
    h.free();
    buf.free();
  });

  it("matches published values", () => {
    expect(xxh3_64(new Uint8Array(0))).toBe(0x2d06800538d394c2n);
    expect(xxh3_64(ascii("a"))).toBe(0xe6c632b61e964e1fn);
    expect(xxh3_64(ascii("abc"))).toBe(0x78af5f94892f3950n);
  });

  it("matches hash-wasm for every length class and seed, foreign and in place", () => {
    for (const seed of SEEDS) {
      for (const len of LENGTHS) {
        const data = pattern(len);
        const want = peers.xxh3(data, seed);
        expect(xxh3_64(data, seed), `foreign ${len} seed ${seed}`).toBe(want);
        const buf = allocBuffer(len);
        buf.view().set(data);
        expect(xxh3_64(buf.view(), seed), `in place ${len} seed ${seed}`).toBe(want);
        expect(new Xxh3(seed).update(buf.view()).digest()).toBe(want);
        buf.free();
        expect(want >= 0n && want <= U64).toBe(true);
      }
    }
  });

  it("streaming equals one-shot equals the peer for random data, splits and seeds", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 3000, size: "max" }),
        fc.array(fc.nat(3100), { maxLength: 8 }),
        fc.bigInt({ min: 0n, max: U64 }),
        fc.boolean(),
        async (data, cuts, seed, inPlace) => {
          const buf = allocBuffer(data.length);
          buf.view().set(data);
          const src = inPlace ? buf.view() : data;
          const h = new Xxh3(seed);
          for (const piece of splitAt(src, cuts)) h.update(piece);
          const streamed = h.digest();
          h.free();
          const one = xxh3_64(buf.view(), seed);
          buf.free();
          const peer = await createXXHash3(Number(seed & 0xffffffffn), Number(seed >> 32n));
          const want = BigInt(`0x${peer.init().update(data).digest("hex")}`);
          return streamed === want && one === want;
        },
      ),
      { numRuns: 200 },
    );
  });

  it("digests correctly after every update across the 256-byte buffer and block edges", () => {
    const data = randomBytes(6000, 21);
    const sizes = [1, 63, 64, 65, 127, 192, 255, 256, 257, 0, 3, 511, 512, 1023, 1024, 1025, 2];
    for (const seed of [0n, 0x9e3779b97f4a7c15n]) {
      const h = new Xxh3(seed);
      let at = 0;
      for (let i = 0; at < data.length; i++) {
        const n = Math.min(sizes[i % sizes.length], data.length - at);
        h.update(data.subarray(at, at + n));
        at += n;
        expect(h.digest(), `prefix ${at} seed ${seed}`).toBe(peers.xxh3(data.subarray(0, at), seed));
      }
      h.free();
    }
  });

  it("digest does not consume the state; reset starts over", () => {
    const data = randomBytes(777, 3);
    const h = new Xxh3(9n);
    h.update(data.subarray(0, 100));
    const d1 = h.digest();
    expect(h.digest()).toBe(d1);
    expect(d1).toBe(xxh3_64(data.subarray(0, 100), 9n));
    h.update(data.subarray(100));
    expect(h.digest()).toBe(xxh3_64(data, 9n));
    h.reset().update(data.subarray(0, 5));
    expect(h.digest()).toBe(xxh3_64(data.subarray(0, 5), 9n));
    h.free();
  });

  it("hashes a large foreign buffer in bounded pieces", () => {
    const data = randomBytes(3 * CHUNK_BYTES + 5, 11);
    const before = kernelMemory().buffer.byteLength;
    expect(xxh3_64(data, 42n)).toBe(peers.xxh3(data, 42n));
    const twice = new Uint8Array(2 * data.length);
    twice.set(data);
    twice.set(data, data.length);
    const h = new Xxh3();
    expect(h.update(data).update(data).digest()).toBe(peers.xxh3(twice, 0n));
    h.free();
    expect(kernelMemory().buffer.byteLength - before).toBeLessThanOrEqual(2 * CHUNK_BYTES);
  });

  it("rejects bad arguments and use after free with USAGE errors", () => {
    const usage = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isMigstreamError(e, "USAGE");
      }
      return false;
    };
    expect(usage(() => xxh3_64("abc" as unknown as Uint8Array))).toBe(true);
    expect(usage(() => xxh3_64(new Uint8Array(1), -1n))).toBe(true);
    expect(usage(() => xxh3_64(new Uint8Array(1), 1n << 64n))).toBe(true);
    expect(usage(() => xxh3_64(new Uint8Array(1), 1 as unknown as bigint))).toBe(true);
    expect(usage(() => new Xxh3(-5n))).toBe(true);
    const h = new Xxh3();
    h.free();
    h.free();
    expect(usage(() => h.update(new Uint8Array(1)))).toBe(true);
    expect(usage(() => h.digest())).toBe(true);
    expect(usage(() => h.reset())).toBe(true);
  });

  it("gives identical results in the scalar and SIMD builds (also flush against the end of memory)", () => {
    const raw = BUILDS.map((b) => {
      const k = rawKernels(b);
      return { k, arena: new RawArena(k) };
    });
    for (const seed of SEEDS) {
      for (const len of LENGTHS) {
        const data = pattern(len);
        const want = peers.xxh3(data, seed);
        for (const { k, arena } of raw) {
          arena.reset();
          const state = arena.alloc(k.xxh3_state_size());
          const p = arena.put(data);
          expect(BigInt.asUintN(64, k.xxh3_oneshot(p, len, seed)), `build simd=${k.simdEnabled()} len ${len}`).toBe(
            want,
          );
          k.xxh3_init(state, seed);
          k.xxh3_update(state, p, len >> 1);
          k.xxh3_update(state, p + (len >> 1), len - (len >> 1));
          expect(BigInt.asUintN(64, k.xxh3_digest(state))).toBe(want);
          const end = arena.atMemoryEnd(data);
          expect(BigInt.asUintN(64, k.xxh3_oneshot(end, len, seed))).toBe(want);
        }
      }
    }
  });
});
