// Golden vectors (test/vectors/*.mstream, written by scripts/make-vectors.mjs
// from test/vectors/cases.mjs): each decodes to its input, re-encoding the
// input with the same options reproduces it byte for byte, an independent
// reading of the spec (hash-wasm XXH3, a bitwise CRC-32C, node:crypto HMAC)
// accepts every check in it, and FORMAT.md §13 shows the minimal one exactly.
import { createDecipheriv, createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { createXXHash3 } from "hash-wasm";
import { beforeAll, describe, expect, it } from "vitest";
import { init } from "../../src/codec/index.js";
import {
  type DeviceInput,
  decodeStreamAsync,
  type EncoderOptions,
  encodeStream,
  encodeStreamAsync,
  verifyStream,
} from "../../src/format/index.js";
// @ts-expect-error plain JS module shared with scripts/make-vectors.mjs
import { KEY, vectorCases } from "../vectors/cases.mjs";
import { expectSameDevices, same } from "./helpers.js";

const dir = new URL("../vectors/", import.meta.url);
const cases = vectorCases() as {
  name: string;
  input: DeviceInput[];
  options: EncoderOptions;
  decode?: { key: Uint8Array; challenge?: Uint8Array };
}[];
/** How a vector is read: its `decode` options, else its key. */
const reading = (c: (typeof cases)[number]) => c.decode ?? (c.options.key ? { key: c.options.key } : {});
const load = (name: string) => new Uint8Array(readFileSync(new URL(`${name}.mstream`, dir)));

beforeAll(async () => {
  await init();
});

describe("golden vectors", () => {
  for (const c of cases) {
    it(`${c.name}: decodes to its input and re-encodes byte for byte`, async () => {
      const bytes = load(c.name);
      const key = c.options.key;
      expectSameDevices(await decodeStreamAsync(bytes, reading(c)), c.input);
      expect(same(await encodeStreamAsync(c.input, c.options), bytes)).toBe(true);
      if (!key) {
        expect(same(encodeStream(c.input, c.options), bytes)).toBe(true);
        expect(verifyStream(bytes).frames).toBeGreaterThan(2);
      }
    });
  }

  it("cover every codec, several devices, dedup, MAC, sealed frames and binding", () => {
    const codecs = new Set<number>();
    let multi = false;
    const macAlgs = new Set<number>();
    let bound = false;
    for (const c of cases) {
      const s = load(c.name);
      for (const f of reference(s, reading(c)).chunks) codecs.add(f);
      multi ||= c.input.length > 1;
      macAlgs.add(s[11]);
      bound ||= (s[12] & 1) === 1;
    }
    expect([...codecs].sort()).toEqual([0, 1, 2, 3, 4]);
    expect(multi && bound).toBe(true);
    expect([...macAlgs].sort()).toEqual([0, 1, 2]);
  });

  it("v1.1 features set version_minor 1; every other vector is a 1.0 stream", () => {
    for (const c of cases) {
      const s = load(c.name);
      expect(s[9], c.name).toBe(s[11] === 2 || (s[12] & 1) === 1 ? 1 : 0);
    }
  });
});

// ---- an independent reading of FORMAT.md ----

/** Bitwise CRC-32C continuing `crc` (FORMAT.md §1). */
function crc32c(b: Uint8Array, crc: number): number {
  let c = ~crc >>> 0;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

let xxh3: (d: Uint8Array, seed: bigint) => bigint = () => 0n;
beforeAll(async () => {
  const hashers = new Map<bigint, Awaited<ReturnType<typeof createXXHash3>>>();
  // Every seed the vectors need is created up front (hash-wasm hashers are async to create).
  const seeds = new Set<bigint>([0n]);
  for (const c of cases) for (const s of reference(load(c.name), reading(c), true).seeds) seeds.add(s);
  for (const s of seeds) hashers.set(s, await createXXHash3(Number(s & 0xffffffffn), Number(s >> 32n)));
  xxh3 = (d, seed) => {
    const h = hashers.get(seed)!;
    h.init();
    h.update(d);
    return BigInt(`0x${h.digest("hex")}`);
  };
});

const le64 = (b: Uint8Array, at: number) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).readBigUInt64LE(at);
const le32 = (b: Uint8Array, at: number) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).readUInt32LE(at);
const u64 = (v: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
};

/**
 * Checks every check of a stream per the spec; with `seedsOnly`, just lists
 * the payload-check seeds (to create peer hashers before checking). Keys are
 * derived with node:crypto HMAC, and sealed frames opened with node:crypto's
 * AES-256-GCM: OpenSSL, not the WebCrypto calls the library makes.
 */
function reference(s: Uint8Array, o: { key?: Uint8Array; challenge?: Uint8Array }, seedsOnly = false) {
  const seed = le64(s, 56);
  const seeds: bigint[] = [];
  const chunks: number[] = [];
  if (!seedsOnly) expect(xxh3(s.subarray(0, 56), 0n)).toBe(seed);
  const macAlg = s[11];
  const tag = macAlg === 0 ? 0 : 16;
  const binding = (le32(s, 12) & 1) === 1 ? Buffer.from(o.challenge!) : Buffer.alloc(0);
  const derive = (label: string) =>
    createHmac("sha256", o.key!)
      .update(Buffer.concat([Buffer.from(label), s.subarray(0, 64), binding]))
      .digest();
  const ks = o.key && macAlg === 1 && !seedsOnly ? derive("migstream/1 frame-mac") : null;
  const ke = o.key && macAlg === 2 && !seedsOnly ? derive("migstream/1 aes-256-gcm key") : null;
  const iv = o.key && macAlg === 2 && !seedsOnly ? derive("migstream/1 aes-256-gcm iv").subarray(0, 12) : null;
  const checks: Buffer[] = [];
  const records = new Map<number, Buffer[]>();
  const txnIndex = new Map<number, number>();
  let at = 64;
  let seq = 0;
  while (at < s.length) {
    const len = le32(s, at + 8);
    const hcrc = le32(s, at + 12);
    const pseed = seed ^ (BigInt(len) | (BigInt(hcrc) << 32n));
    seeds.push(pseed);
    let payload = s.subarray(at + 16, at + 16 + len);
    let checkBytes = s.subarray(at + 16 + len, at + 24 + len);
    if (ke && iv) {
      // nonce = IV XOR (0^4 ‖ u64le(seq))
      const nonce = Buffer.from(iv);
      nonce.writeBigUInt64LE(nonce.readBigUInt64LE(4) ^ BigInt(seq), 4);
      const d = createDecipheriv("aes-256-gcm", ke, nonce);
      d.setAAD(s.subarray(at, at + 16));
      d.setAuthTag(s.subarray(at + 24 + len, at + 40 + len));
      const plain = Buffer.concat([d.update(s.subarray(at + 16, at + 24 + len)), d.final()]);
      payload = plain.subarray(0, len);
      checkBytes = plain.subarray(len);
    }
    const type = s[at];
    const dev = s[at + 2] | (s[at + 3] << 8);
    if (type === 4 && !(seedsOnly && macAlg === 2)) chunks.push(payload[0]);
    if (!seedsOnly) {
      expect(crc32c(s.subarray(at, at + 12), Number(seed & 0xffffffffn))).toBe(hcrc);
      expect(le32(s, at + 4)).toBe(seq);
      const check = le64(checkBytes, 0);
      expect(xxh3(payload, pseed)).toBe(check);
      if (ks) {
        const t = createHmac("sha256", ks)
          .update(s.subarray(at, at + 24 + len))
          .digest()
          .subarray(0, 16);
        expect(Buffer.compare(t, s.subarray(at + 24 + len, at + 40 + len))).toBe(0);
      }
      if (type === 3) txnIndex.set(dev, (txnIndex.get(dev) ?? -1) + 1);
      // DEVICE_PROTOCOL (§5.8): generation 2, flags bit 0 only, six zero bytes.
      if (type === 7) {
        expect(len).toBe(8);
        expect(payload[0]).toBe(2);
        expect(payload[1] & ~1).toBe(0);
        expect([...payload.subarray(2)]).toEqual([0, 0, 0, 0, 0, 0]);
      }
      if (type === 4) {
        const rec = Buffer.concat([
          u64(le64(payload, 12)),
          payload.subarray(4, 8),
          Buffer.from(Uint32Array.of(txnIndex.get(dev)!).buffer),
        ]);
        records.set(dev, [...(records.get(dev) ?? []), rec]);
      }
      if (type === 5) expect(le64(payload, 40)).toBe(xxh3(Buffer.concat(records.get(dev) ?? []), 0n));
      if (type === 6) {
        expect(le64(payload, 0)).toBe(BigInt(seq));
        expect(le64(payload, 48)).toBe(xxh3(Buffer.concat(checks), 0n));
        expect(Buffer.from(payload.subarray(56)).toString("latin1")).toBe("\x89END\r\n\x1a\n");
      }
      checks.push(u64(check));
    }
    at += 24 + len + tag;
    seq++;
  }
  return { seeds, chunks };
}

describe("the vectors against an independent reading of the spec", () => {
  for (const c of cases) {
    it(`${c.name}: header check, frame CRCs, payload checks, MACs or sealed frames, digests`, () => {
      const s = load(c.name);
      expect(Buffer.from(s.subarray(0, 8)).toString("latin1")).toBe("\x89MIG\r\n\x1a\n");
      reference(s, reading(c));
    });
  }
  it("the MAC vector's key is the documented one", () => {
    expect(new TextDecoder().decode(KEY)).toBe("migstream test vector key, 32 B!");
  });
});

describe("FORMAT.md §13", () => {
  it("shows the minimal vector byte for byte", () => {
    const doc = readFileSync(new URL("../../docs/FORMAT.md", import.meta.url), "utf8");
    const block = doc.split("<!-- minimal.mstream -->")[1]?.split("```")[1];
    expect(block, "FORMAT.md needs the dump after <!-- minimal.mstream -->").toBeDefined();
    const bytes: number[] = [];
    for (const line of block!.split("\n")) {
      const m = /^([0-9a-f]{4}) {2}((?:[0-9a-f]{2} ?)+)/.exec(line);
      if (!m) continue;
      expect(Number.parseInt(m[1], 16)).toBe(bytes.length);
      for (const h of m[2].trim().split(" ")) bytes.push(Number.parseInt(h, 16));
    }
    expect(same(Uint8Array.from(bytes), load("minimal"))).toBe(true);
  });
});
