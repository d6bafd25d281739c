// Test helpers: fixed inputs, a plain frame splitter, and a re-framer that
// rebuilds a stream (new header fields, frames added, dropped or altered) with
// every check recomputed from the spec, so tests can craft streams the
// encoder would never write.
import { expect } from "vitest";
import { makeImage } from "../../src/device/pages.js";
import { type ErrorCode, isMigstreamError, type MigstreamError, STREAM_ERROR_CODES } from "../../src/errors.js";
import { crcSmall } from "../../src/format/crc.js";
import { payloadSeed } from "../../src/format/frames.js";
import type { DecodedStream, DeviceInput } from "../../src/format/index.js";
import { frameKey, tagOf } from "../../src/format/mac.js";
import { xxh3_64 } from "../../src/kernels/xxh3.js";

export const SID = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);
export const KEY = Uint8Array.from({ length: 32 }, (_, i) => i * 7 + 1);

/** The codes a damaged or foreign stream may fail with. */
export const ALL_CODES: readonly ErrorCode[] = STREAM_ERROR_CODES;

/** Runs `f`; returns its MigstreamError (fails the test if it returns or throws anything else). */
export function errorOf(f: () => unknown): MigstreamError {
  try {
    f();
  } catch (e) {
    if (!isMigstreamError(e)) throw e;
    return e;
  }
  throw new Error("expected a MigstreamError, got success");
}

export async function errorOfAsync(f: () => Promise<unknown>): Promise<MigstreamError> {
  try {
    await f();
  } catch (e) {
    if (!isMigstreamError(e)) throw e;
    return e;
  }
  throw new Error("expected a MigstreamError, got success");
}

export function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/** Concatenated transaction bytes of each device, for comparing a decode with its input. */
export function flatten(items: DeviceInput["items"]): { sizes: number[]; phases: string[]; bytes: Uint8Array } {
  const sizes: number[] = [];
  const phases: string[] = [];
  const parts: Uint8Array[] = [];
  for (const it of items) {
    if (it.kind === "phase") phases.push(`${it.phase}:${it.iteration}`);
    else {
      sizes.push(it.data.length);
      parts.push(it.data);
    }
  }
  return { sizes, phases, bytes: Buffer.concat(parts) };
}

/** Asserts the decode reproduces the input devices exactly (ids, names, metadata, phases, transactions). */
export function expectSameDevices(decoded: DecodedStream, input: DeviceInput[], anyOrder = false): void {
  const devices = anyOrder ? [...decoded.devices].sort((a, b) => a.id - b.id) : decoded.devices;
  const inputs = anyOrder ? [...input].sort((a, b) => a.id - b.id) : input;
  expect(devices.map((d) => d.id)).toEqual(inputs.map((d) => d.id));
  devices.forEach((d, i) => {
    const want = inputs[i];
    expect(d.name).toBe(want.name ?? "");
    expect(same(d.metadata, want.metadata ?? new Uint8Array(0))).toBe(true);
    expect(d.protocol).toEqual(want.protocol ?? { generation: 1 });
    expect(d.items.map((x) => x.kind)).toEqual(want.items.map((x) => x.kind));
    const a = flatten(d.items);
    const b = flatten(want.items);
    expect(a.sizes).toEqual(b.sizes);
    expect(a.phases).toEqual(b.phases);
    expect(same(a.bytes, b.bytes)).toBe(true);
  });
}

/** A small deterministic mix of page kinds. */
export function image(size: number, seed = 1): Uint8Array {
  return makeImage(size, seed);
}

export interface RawFrame {
  type: number;
  flags: number;
  device: number;
  seq: number;
  payload: Uint8Array;
  /** Offset of the frame in the stream it was split from. */
  offset: number;
  /** Total bytes of the frame there (header, payload, check, tag). */
  size: number;
}

/** Splits a well-formed stream into its header and frames (no checks). */
export function splitFrames(s: Uint8Array): { header: Uint8Array; frames: RawFrame[] } {
  const dv = new DataView(s.buffer, s.byteOffset, s.byteLength);
  const tag = s[11] === 0 ? 0 : 16; // an HMAC tag (mac_alg 1) or an AES-GCM one (2)
  const frames: RawFrame[] = [];
  let at = 64;
  while (at < s.length) {
    const length = dv.getUint32(at + 8, true);
    const size = 16 + length + 8 + tag;
    frames.push({
      type: s[at],
      flags: s[at + 1],
      device: dv.getUint16(at + 2, true),
      seq: dv.getUint32(at + 4, true),
      payload: Uint8Array.prototype.slice.call(s, at + 16, at + 16 + length),
      offset: at,
      size,
    });
    at += size;
  }
  return { header: Uint8Array.prototype.slice.call(s, 0, 64), frames };
}

/** Header bytes with fields changed and header_check recomputed (unless `keepCheck`). */
export function editHeader(h: Uint8Array, edit: (dv: DataView, b: Uint8Array) => void, keepCheck = false): Uint8Array {
  const b = Uint8Array.prototype.slice.call(h);
  const dv = new DataView(b.buffer);
  edit(dv, b);
  if (!keepCheck) dv.setBigUint64(56, xxh3_64(b.subarray(0, 56)), true);
  return b;
}

export interface ReframeOptions {
  /** Recompute STREAM_END's frames count and frames digest (default true). */
  fixTrailer?: boolean;
  /** Renumber seq 0, 1, 2... (default true). */
  renumber?: boolean;
  key?: Uint8Array;
}

/** Builds a stream from a header and frames, sealing each frame per FORMAT.md §4 (and §7 with a key). */
export async function reframe(
  header: Uint8Array,
  frames: Omit<RawFrame, "offset" | "size">[],
  o: ReframeOptions = {},
): Promise<Uint8Array> {
  const hdv = new DataView(header.buffer, header.byteOffset, 64);
  const seed = hdv.getBigUint64(56, true);
  const crc = Number(seed & 0xffffffffn);
  const keyed = header[11] === 1;
  const k = keyed ? await frameKey(o.key ?? KEY, header) : null;
  const parts: Uint8Array[] = [header];
  const checks: bigint[] = [];
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i];
    let payload = f.payload;
    const seq = o.renumber === false ? f.seq : i;
    if (f.type === 0x06 && o.fixTrailer !== false) {
      payload = payload.slice();
      const pdv = new DataView(payload.buffer);
      pdv.setBigUint64(0, BigInt(seq), true);
      const all = new Uint8Array(checks.length * 8);
      const adv = new DataView(all.buffer);
      checks.forEach((c, j) => {
        adv.setBigUint64(j * 8, c, true);
      });
      pdv.setBigUint64(48, xxh3_64(all), true);
    }
    const b = new Uint8Array(16 + payload.length + 8 + (keyed ? 16 : 0));
    const dv = new DataView(b.buffer);
    b[0] = f.type;
    b[1] = f.flags;
    dv.setUint16(2, f.device, true);
    dv.setUint32(4, seq, true);
    dv.setUint32(8, payload.length, true);
    const hcrc = crcSmall(b, 0, 12, crc);
    dv.setUint32(12, hcrc, true);
    b.set(payload, 16);
    const check = xxh3_64(payload, payloadSeed(seed, payload.length, hcrc));
    dv.setBigUint64(16 + payload.length, check, true);
    checks.push(check);
    if (k !== null) b.set(await tagOf(k, b.subarray(0, 16 + payload.length + 8)), 16 + payload.length + 8);
    parts.push(b);
  }
  return new Uint8Array(Buffer.concat(parts)); // a plain Uint8Array: Buffer#slice would share memory
}

/** Deterministic PRNG (xorshift32) returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

/** Random split of `s` into pieces (some empty). */
export function splitRandom(s: Uint8Array, rnd: () => number, maxPiece = 97): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < s.length) {
    const n = rnd() < 0.1 ? 0 : 1 + Math.floor(rnd() * Math.min(maxPiece, s.length - at));
    out.push(s.subarray(at, at + n));
    at += n;
  }
  return out;
}
