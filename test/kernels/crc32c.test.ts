import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { isMigstreamError } from "../../src/errors.js";
import { Crc32c, crc32c } from "../../src/kernels/crc32c.js";
import { CHUNK_BYTES } from "../../src/kernels/hashing.js";
import { allocBuffer, kernelMemory } from "../../src/kernels/wasm.js";
import { ascii, LENGTHS, loadPeers, type Peers, pattern, splitAt } from "./checksum-peers.js";
import { randomBytes } from "./data.js";
import { BUILDS, RawArena, rawKernels } from "./raw-kernels.js";

let peers: Peers;
beforeAll(async () => {
  peers = await loadPeers([]);
});

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

describe("crc32c", () => {
  // First in the file: the arena's scratch slots are still empty, so any copy
  // of a kernel-memory input would have to grow memory.
  it("checksums kernel-memory input in place (no copy, no growth)", () => {
    const n = 4 << 20;
    const buf = allocBuffer(n);
    buf.view().set(randomBytes(n, 7));
    const before = kernelMemory().buffer.byteLength;
    const one = crc32c(buf.view());
    const streamed = new Crc32c().update(buf.view(0, 12345)).update(buf.view(12345)).digest();
    expect(kernelMemory().buffer.byteLength).toBe(before);
    expect(one).toBe(peers.crc32c(buf.view().slice()));
    expect(streamed).toBe(one);
    buf.free();
  });

  it("matches published values (check value, RFC 3720 iSCSI vectors)", () => {
    expect(crc32c(new Uint8Array(0))).toBe(0);
    expect(crc32c(ascii("123456789"))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
  });

  it("matches hash-wasm for every length, foreign and in place, fresh and continued", () => {
    const prefix = randomBytes(1000, 5);
    const start = crc32c(prefix);
    expect(start).toBe(peers.crc32c(prefix));
    for (const len of LENGTHS) {
      const data = pattern(len);
      const want = peers.crc32c(data);
      const wantContinued = peers.crc32c(concat(prefix, data));
      expect(crc32c(data), `foreign ${len}`).toBe(want);
      expect(crc32c(data, start), `continued ${len}`).toBe(wantContinued);
      const buf = allocBuffer(len);
      buf.view().set(data);
      expect(crc32c(buf.view()), `in place ${len}`).toBe(want);
      expect(crc32c(buf.view(), start), `in place continued ${len}`).toBe(wantContinued);
      buf.free();
    }
  });

  it("streaming equals one-shot equals the peer for random data, splits and alignments", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 13000, size: "max" }),
        fc.array(fc.nat(13100), { maxLength: 6 }),
        fc.nat(63),
        fc.boolean(),
        (data, cuts, misalign, inPlace) => {
          const buf = allocBuffer(data.length + misalign);
          const view = buf.view(misalign);
          view.set(data);
          const h = new Crc32c();
          for (const piece of splitAt(inPlace ? view : data, cuts)) h.update(piece);
          const one = crc32c(buf.view(misalign));
          buf.free();
          const want = peers.crc32c(data);
          return h.digest() === want && one === want;
        },
      ),
      { numRuns: 300 },
    );
  });

  it("digest does not consume the state; reset starts over", () => {
    const data = randomBytes(5000, 3);
    const h = new Crc32c();
    h.update(data.subarray(0, 4097));
    expect(h.digest()).toBe(peers.crc32c(data.subarray(0, 4097)));
    expect(h.digest()).toBe(h.digest());
    h.update(data.subarray(4097));
    expect(h.digest()).toBe(peers.crc32c(data));
    expect(h.reset().digest()).toBe(0);
    expect(h.update(data.subarray(0, 9)).digest()).toBe(peers.crc32c(data.subarray(0, 9)));
  });

  it("checksums a large foreign buffer in bounded pieces", () => {
    const data = randomBytes(3 * CHUNK_BYTES + 5, 11);
    const before = kernelMemory().buffer.byteLength;
    expect(crc32c(data)).toBe(peers.crc32c(data));
    expect(kernelMemory().buffer.byteLength - before).toBeLessThanOrEqual(2 * CHUNK_BYTES);
  });

  it("rejects bad arguments with USAGE errors", () => {
    const usage = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isMigstreamError(e, "USAGE");
      }
      return false;
    };
    expect(usage(() => crc32c([1, 2, 3] as unknown as Uint8Array))).toBe(true);
    expect(usage(() => crc32c(new Uint8Array(1), -1))).toBe(true);
    expect(usage(() => crc32c(new Uint8Array(1), 2 ** 32))).toBe(true);
    expect(usage(() => crc32c(new Uint8Array(1), 1.5))).toBe(true);
    expect(usage(() => crc32c(new Uint8Array(1), 1n as unknown as number))).toBe(true);
    expect(usage(() => new Crc32c().update("x" as unknown as Uint8Array))).toBe(true);
  });

  it("gives identical results in the scalar and SIMD builds (also flush against the end of memory)", () => {
    const raw = BUILDS.map((b) => {
      const k = rawKernels(b);
      return { k, arena: new RawArena(k) };
    });
    for (const len of LENGTHS) {
      const data = pattern(len);
      const want = peers.crc32c(data);
      for (const { k, arena } of raw) {
        arena.reset();
        const p = arena.put(data);
        expect(k.crc32c_update(0, p, len) >>> 0, `build simd=${k.simdEnabled()} len ${len}`).toBe(want);
        const half = k.crc32c_update(0, p, len >> 1) >>> 0;
        expect(k.crc32c_update(half, p + (len >> 1), len - (len >> 1)) >>> 0).toBe(want);
        const end = arena.atMemoryEnd(data);
        expect(k.crc32c_update(0, end, len) >>> 0).toBe(want);
      }
    }
  });
});
