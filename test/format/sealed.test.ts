// Sealed streams (FORMAT.md §7.2, AES-256-GCM) and streams bound to a
// connection's challenge (§7.1): round trips, confidentiality, fresh keys and
// nonces, and every kind of tamper failing at the frame where it happens —
// before anything from that frame comes out.
import { describe, expect, it } from "vitest";
import { isMigstreamError } from "../../src/errors.js";
import { nonceOf } from "../../src/format/aead.js";
import { crcSmall } from "../../src/format/crc.js";
import {
  type DecodeEvent,
  type DeviceInput,
  decodeStreamAsync,
  type EncoderOptions,
  encodeStream,
  encodeStreamAsync,
  MigrationDecoderStream,
  StreamDecoder,
} from "../../src/format/index.js";
import { ALL_CODES, errorOfAsync, expectSameDevices, image, KEY, prng, splitRandom } from "./helpers.js";

const CHALLENGE = Uint8Array.from({ length: 16 }, (_, i) => 0x50 + i);
const OTHER = Uint8Array.from({ length: 16 }, (_, i) => 0x70 + i);
const phase = (p: "precopy" | "stopcopy", iteration = 0) => ({ kind: "phase" as const, phase: p, iteration });
const txn = (data: Uint8Array) => ({ kind: "transaction" as const, data });

function devices(): DeviceInput[] {
  const a = image(300_000, 3);
  return [
    {
      id: 1,
      name: "nic0 secret-name",
      metadata: new TextEncoder().encode("metadata: key=4242"),
      items: [
        phase("precopy"),
        txn(a.subarray(0, 100_000)),
        phase("stopcopy"),
        txn(a.subarray(100_000)),
        txn(new Uint8Array(0)),
      ],
    },
    { id: 9, name: "gpu", items: [phase("stopcopy"), txn(a.subarray(0, 50_000)), txn(a.subarray(0, 50_000))] },
  ];
}

/** A stream's frames: where each starts and how long it is. */
function frameSpans(s: Uint8Array): { at: number; size: number }[] {
  const dv = new DataView(s.buffer, s.byteOffset, s.byteLength);
  const tag = s[11] === 0 ? 0 : 16;
  const out: { at: number; size: number }[] = [];
  for (let at = 64; at < s.length; ) {
    const size = 16 + dv.getUint32(at + 8, true) + 8 + tag;
    out.push({ at, size });
    at += size;
  }
  return out;
}

/** A frame with its seq set and header CRC recomputed for the stream whose header is `header`. */
function reseq(frame: Uint8Array, seq: number, header: Uint8Array): Uint8Array {
  const f = frame.slice();
  const dv = new DataView(f.buffer);
  dv.setUint32(4, seq, true);
  const crc = Number(new DataView(header.buffer, header.byteOffset, 64).getBigUint64(56, true) & 0xffffffffn);
  dv.setUint32(12, crcSmall(f, 0, 12, crc), true);
  return f;
}

/** Decodes `s`; returns the events it let out and the error that stopped it (null: it succeeded). */
async function attempt(
  s: Uint8Array,
  o: { key?: Uint8Array; challenge?: Uint8Array; allowUnbound?: boolean; requireEncryption?: boolean } = { key: KEY },
) {
  const dec = new StreamDecoder({ ...o, assemble: true });
  const events: DecodeEvent[] = [];
  try {
    for await (const ev of dec.writeAsync(s)) events.push(ev);
    dec.finish();
    return { events, error: null };
  } catch (e) {
    if (!isMigstreamError(e)) throw e;
    return { events, error: e };
  }
}

describe("sealed streams (AES-256-GCM)", () => {
  it("round-trip across codecs, dedup, several devices and any split; verify and the Web Streams decoder too", async () => {
    const input = devices();
    for (const o of [
      { codec: "raw" },
      { codec: "lz4" },
      { codec: "zstd", level: 3 },
      { codec: "lz4", dedup: true, chunkSize: 4096 },
    ] as EncoderOptions[]) {
      const s = await encodeStreamAsync(input, { ...o, key: KEY, encrypt: true });
      expect(s[11]).toBe(2);
      expect(s[9]).toBe(1);
      expectSameDevices(await decodeStreamAsync(s, { key: KEY }), input);
      expectSameDevices(await decodeStreamAsync(splitRandom(s, prng(s.length), 333), { key: KEY }), input);
      const verified = await attempt(s, { key: KEY });
      expect(verified.error).toBeNull();
      expect(verified.events.at(-1)?.type).toBe("end");
    }
    const s = await encodeStreamAsync(input, { codec: "lz4", key: KEY, encrypt: true });
    const parts: Uint8Array[] = [];
    await new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(s);
        c.close();
      },
    })
      .pipeThrough(new MigrationDecoderStream({ key: KEY, device: 9 }))
      .pipeTo(new WritableStream({ write: (b) => void parts.push(b.slice()) }));
    const want = input[1].items.flatMap((i) => (i.kind === "transaction" ? [i.data] : []));
    expect(Buffer.compare(Buffer.concat(parts), Buffer.concat(want))).toBe(0);
  });

  it("hide device data, names and metadata, which an HMAC-keyed stream shows", async () => {
    const input = devices();
    const has = (s: Uint8Array, t: string | Uint8Array) =>
      Buffer.from(s).includes(typeof t === "string" ? Buffer.from(t) : Buffer.from(t));
    const raw = input[0].items[1] as { data: Uint8Array };
    const mac = await encodeStreamAsync(input, { codec: "raw", key: KEY });
    const sealed = await encodeStreamAsync(input, { codec: "raw", key: KEY, encrypt: true });
    for (const secret of ["secret-name", "key=4242", raw.data.subarray(5000, 5064)]) {
      expect(has(mac, secret)).toBe(true);
      expect(has(sealed, secret)).toBe(false);
    }
    expect(sealed.length).toBe(mac.length); // the same frames, the same sizes: only their contents differ
  });

  it("draw a fresh stream id, so fresh keys and nonces, every time; refuse a given one; nonce n = IV xor n", async () => {
    const input = devices();
    const a = await encodeStreamAsync(input, { codec: "raw", key: KEY, encrypt: true });
    const b = await encodeStreamAsync(input, { codec: "raw", key: KEY, encrypt: true });
    expect(Buffer.compare(a.subarray(16, 32), b.subarray(16, 32))).not.toBe(0);
    // Same plaintext, other keys: no 16-byte block of ciphertext in common past the headers.
    const first = frameSpans(a).find((f) => a[f.at] === 4)!;
    expect(Buffer.from(b).includes(Buffer.from(a.subarray(first.at + 40, first.at + 56)))).toBe(false);
    const e = await errorOfAsync(() =>
      encodeStreamAsync(input, { key: KEY, encrypt: true, streamId: new Uint8Array(16) }),
    );
    expect(e.code).toBe("USAGE");
    expect(e.message).toMatch(/always drawn at random/);
    const iv = Uint8Array.from({ length: 12 }, (_, i) => 0xf0 + i);
    expect(Buffer.from(nonceOf(iv, 0)).toString("hex")).toBe(Buffer.from(iv).toString("hex"));
    expect(Buffer.from(nonceOf(iv, 0x01020304)).toString("hex")).toBe("f0f1f2f3" + "f0f6f4f6" + "f8f9fafb"); // bytes 4..11 xor 04 03 02 01 00 00 00 00
  });

  it("every flipped byte fails the stream, and nothing from the damaged frame or after it comes out", async () => {
    const input: DeviceInput[] = [
      { id: 0, name: "s", items: [phase("stopcopy"), txn(image(3000, 5)), txn(image(2000, 6))] },
    ];
    const s = await encodeStreamAsync(input, { codec: "lz4", chunkSize: 4096, key: KEY, encrypt: true });
    const spans = frameSpans(s);
    const rnd = prng(11);
    for (let i = 0; i < s.length; i++) {
      const bad = s.slice();
      bad[i] ^= 1 << Math.floor(rnd() * 8);
      const r = await attempt(bad);
      expect(r.error, `byte ${i}`).not.toBeNull();
      expect(ALL_CODES).toContain(r.error!.code);
      const frame = spans.findIndex((f) => i >= f.at && i < f.at + f.size);
      if (frame < 0) expect(r.events, `byte ${i} (header)`).toEqual([]);
      else {
        for (const ev of r.events)
          if ("frame" in ev) expect(ev.frame, `byte ${i} in frame ${frame}`).toBeLessThan(frame);
        // In the ciphertext or tag the cause is the tag; in the clear frame header its CRC.
        const inHeader = i - spans[frame].at < 16;
        expect(r.error!.code, `byte ${i}`).toBe(inHeader ? "CHECKSUM" : "MAC");
      }
    }
  });

  it("an early end is TRUNCATED at every frame boundary", async () => {
    const s = await encodeStreamAsync(devices(), { codec: "lz4", key: KEY, encrypt: true });
    for (const f of frameSpans(s)) {
      const r = await attempt(s.subarray(0, f.at));
      expect(r.error?.code).toBe("TRUNCATED");
    }
  });

  it("frames dropped, repeated, reordered or spliced in from another stream fail their tag, even with seq and CRC fixed", async () => {
    const input = devices();
    const s = await encodeStreamAsync(input, { codec: "lz4", key: KEY, encrypt: true });
    const other = await encodeStreamAsync(input, { codec: "lz4", key: KEY, encrypt: true }); // same key and input, another stream
    const header = s.subarray(0, 64);
    const spans = frameSpans(s);
    const frame = (src: Uint8Array, f: { at: number; size: number }) => src.subarray(f.at, f.at + f.size);
    const build = (list: Uint8Array[]) =>
      new Uint8Array(Buffer.concat([header, ...list.map((f, i) => reseq(f, i, header))]));
    const all = spans.map((f) => frame(s, f));
    const k = 4;
    const cases: [string, Uint8Array[]][] = [
      ["dropped", [...all.slice(0, k), ...all.slice(k + 1)]],
      ["repeated", [...all.slice(0, k + 1), all[k], ...all.slice(k + 1)]],
      ["reordered", [...all.slice(0, k), all[k + 1], all[k], ...all.slice(k + 2)]],
      ["spliced from another stream", [...all.slice(0, k), frame(other, frameSpans(other)[k]), ...all.slice(k + 1)]],
    ];
    for (const [what, list] of cases) {
      const at = what === "repeated" ? k + 1 : k; // the repeat is the frame out of place
      const r = await attempt(build(list));
      expect(r.error?.code, what).toBe("MAC");
      expect(r.error?.frame, what).toBe(at);
      for (const ev of r.events) if ("frame" in ev) expect(ev.frame, what).toBeLessThan(at);
    }
    // Without the seq fixed, the frame layer names it first.
    const r = await attempt(new Uint8Array(Buffer.concat([header, ...all.slice(0, k), ...all.slice(k + 1)])));
    expect(r.error?.code).toBe("SEQUENCE");
  });

  it("need a key, and the asynchronous API", async () => {
    const input = devices();
    expect((await errorOfAsync(async () => encodeStream(input, { key: KEY, encrypt: true }))).code).toBe("USAGE");
    expect((await errorOfAsync(() => encodeStreamAsync(input, { encrypt: true }))).message).toMatch(
      /encrypt needs a key/,
    );
    const s = await encodeStreamAsync(input, { key: KEY, encrypt: true });
    expect((await attempt(s, {})).error?.code).toBe("MAC");
    expect((await attempt(s, { key: new Uint8Array(32).fill(1) })).error).toMatchObject({ code: "MAC", frame: 0 });
  });
});

describe("streams bound to a connection's challenge", () => {
  it("decode only with their challenge: not from a file, not on another connection", async () => {
    const input = devices();
    for (const encrypt of [false, true]) {
      const s = await encodeStreamAsync(input, { codec: "lz4", key: KEY, encrypt, challenge: CHALLENGE });
      expect(s[12] & 1).toBe(1);
      expectSameDevices(await decodeStreamAsync(s, { key: KEY, challenge: CHALLENGE }), input);
      const file = await attempt(s, { key: KEY });
      expect(file.error?.code).toBe("MAC");
      expect(file.error?.message).toMatch(/bound to a network connection's challenge/);
      expect(file.events.filter((e) => e.type !== "header")).toEqual([]);
      const elsewhere = await attempt(s, { key: KEY, challenge: OTHER });
      expect(elsewhere.error).toMatchObject({ code: "MAC", frame: 0 });
      expect(elsewhere.events.map((e) => e.type)).toEqual(["header"]); // not a frame out
    }
  });

  it("a reader with a challenge refuses a keyed stream bound to none, unless told to take one; unkeyed streams need no binding", async () => {
    const input = devices();
    const saved = await encodeStreamAsync(input, { codec: "lz4", key: KEY });
    const r = await attempt(saved, { key: KEY, challenge: CHALLENGE });
    expect(r.error?.code).toBe("MAC");
    expect(r.error?.message).toMatch(/not bound to this connection.*--allow-replay/);
    expect(r.events).toEqual([]);
    expect((await attempt(saved, { key: KEY, challenge: CHALLENGE, allowUnbound: true })).error).toBeNull();
    const plain = await encodeStreamAsync(input, { codec: "lz4" });
    expect((await attempt(plain, { challenge: CHALLENGE })).error).toBeNull();
  });

  it("requireEncryption takes a sealed stream only", async () => {
    const input = devices();
    const mac = await encodeStreamAsync(input, { key: KEY, challenge: CHALLENGE });
    const sealed = await encodeStreamAsync(input, { key: KEY, encrypt: true, challenge: CHALLENGE });
    expect((await attempt(mac, { key: KEY, challenge: CHALLENGE, requireEncryption: true })).error?.message).toMatch(
      /only an encrypted stream/,
    );
    expect((await attempt(sealed, { key: KEY, challenge: CHALLENGE, requireEncryption: true })).error).toBeNull();
  });

  it("refuses bad binding options", async () => {
    const input = devices();
    expect((await errorOfAsync(() => encodeStreamAsync(input, { challenge: CHALLENGE }))).message).toMatch(
      /binds a keyed stream/,
    );
    expect((await errorOfAsync(() => encodeStreamAsync(input, { key: KEY, challenge: new Uint8Array(8) }))).code).toBe(
      "USAGE",
    );
    expect((await errorOfAsync(async () => new StreamDecoder({ key: KEY, challenge: new Uint8Array(3) }))).code).toBe(
      "USAGE",
    );
  });
});
