// Crafted streams (every check recomputed, so only the rule under test is
// broken): versioning and skippable frames, the magic, declared and actual
// limits, and each structural rule of FORMAT.md §5–§6 with its error code and
// the frame where it is reported.
import { beforeAll, describe, expect, it } from "vitest";
import { CODEC_DEDUP_REF, CODEC_LZ4, CODEC_RAW, CODEC_ZERO, CODEC_ZSTD } from "../../src/codec/index.js";
import { type DecodeEvent, decodeStream, encodeStream, StreamDecoder, verifyStream } from "../../src/format/index.js";
import { xxh3_64 } from "../../src/kernels/xxh3.js";
import { editHeader, errorOf, expectSameDevices, type RawFrame, reframe, splitFrames } from "./helpers.js";
import { type SmallStream, smallStreams } from "./small-streams.js";

type Stream = SmallStream & { bytes: Uint8Array };
const byName: Record<string, Stream> = {};
beforeAll(async () => {
  for (const s of await smallStreams()) byName[s.name] = s;
});

type F = Omit<RawFrame, "offset" | "size">;

function le(n: number, bytes: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < bytes; i++) out.push(Number((BigInt(n) >> BigInt(8 * i)) & 0xffn));
  return out;
}
const u64 = (n: bigint) => le(Number(n & 0xffffffffn), 4).concat(le(Number(n >> 32n), 4));

const frame = (type: number, device: number, payload: ArrayLike<number>): F => ({
  type,
  flags: 0,
  device,
  seq: 0,
  payload: Uint8Array.from(payload),
});
const phaseF = (device: number, code: number, it = 0) => frame(2, device, [code, 0, 0, 0, ...le(it, 4)]);
const txnF = (device: number, size: number, chunks: number) => frame(3, device, [...le(size, 4), ...le(chunks, 4)]);
function chunkF(
  device: number,
  codec: number,
  raw: Uint8Array,
  coded: Uint8Array,
  o: { level?: number; rawLength?: number; hash?: bigint } = {},
): F {
  const head = [
    codec,
    o.level ?? 0,
    0,
    0,
    ...le(o.rawLength ?? raw.length, 4),
    ...le(coded.length, 4),
    ...u64(o.hash ?? xxh3_64(raw)),
  ];
  return frame(4, device, [...head, ...coded]);
}

/** DEVICE_END of a device that carried no chunks, after `frames` frames (this one included). */
const emptyDeviceEnd = (device: number, frames: number) =>
  frame(5, device, [...u64(BigInt(frames)), ...new Array(32).fill(0), ...u64(xxh3_64(new Uint8Array(0)))]);

/** Frames of the small lz4 stream, for editing. */
function lz4Frames(): { header: Uint8Array; frames: F[] } {
  return splitFrames(byName.lz4.bytes);
}

/** Decode and verify-only both fail with `code` at frame `at` (verify may be skipped for data-only checks). */
async function expectRejected(bytes: Uint8Array, code: string, at: number | undefined, verifyToo = true) {
  const e = errorOf(() => decodeStream(bytes));
  expect(e.code, e.message).toBe(code);
  if (at !== undefined) expect(e.frame, e.message).toBe(at);
  if (verifyToo) {
    const v = errorOf(() => verifyStream(bytes));
    expect(v.code, v.message).toBe(code);
    if (at !== undefined) expect(v.frame).toBe(at);
  }
  return e;
}

describe("versioning", () => {
  it("skippable frames of a newer minor version are skipped (and still counted)", async () => {
    const { header, frames } = lz4Frames();
    const h = editHeader(header, (dv, b) => {
      b[9] = 7; // minor 7
      dv.setUint32(12, 1 << 16, true); // an optional feature flag
    });
    const list = [...frames];
    list.splice(3, 0, frame(0x80, 0, []));
    list.splice(1, 0, frame(0xff, 1, new TextEncoder().encode("future metadata")));
    list.splice(list.length - 1, 0, frame(0xa5, 9, new Uint8Array(300).fill(9)));
    const s = await reframe(h, list);
    const d = decodeStream(s);
    expectSameDevices(d, byName.lz4.input);
    expect(d.header.versionMinor).toBe(7);
    expect(verifyStream(s).frames).toBe(list.length - 1);
    const skipped: number[] = [];
    const dec = new StreamDecoder();
    for (const ev of dec.write(s)) if (ev.type === "skipped") skipped.push(ev.frameType);
    dec.finish();
    expect(skipped).toEqual([0xff, 0x80, 0xa5]);
  });

  it("unknown non-skippable frame types are VERSION errors", async () => {
    const { header, frames } = lz4Frames();
    for (const type of [0x00, 0x08, 0x42, 0x7f]) {
      const list = [...frames];
      list.splice(2, 0, frame(type, 1, [1, 2, 3]));
      await expectRejected(await reframe(header, list), "VERSION", 2);
    }
  });

  it("DEVICE_PROTOCOL (0x07) right after DEVICE_BEGIN is read; after a PHASE or twice it is FORMAT", async () => {
    const { header, frames } = lz4Frames();
    const rec = () => frame(0x07, frames[0].device, [2, 0, 0, 0, 0, 0, 0, 0]);
    const ok = [...frames];
    ok.splice(1, 0, rec());
    expect((await reframe(header, ok)).length).toBeGreaterThan(0);
    const twice = [...frames];
    twice.splice(1, 0, rec(), rec());
    await expectRejected(await reframe(header, twice), "FORMAT", 2);
    const late = [...frames];
    late.splice(2, 0, rec());
    await expectRejected(await reframe(header, late), "FORMAT", 2);
  });

  it("another major version, checksum or MAC algorithm, or a required flag: VERSION", async () => {
    const { header, frames } = lz4Frames();
    const cases: [(dv: DataView, b: Uint8Array) => void, string][] = [
      [(_, b) => (b[8] = 2), "VERSION"],
      [(_, b) => (b[8] = 0), "VERSION"],
      [(_, b) => (b[10] = 2), "VERSION"],
      [(_, b) => (b[11] = 3), "VERSION"], // 1 and 2 (v1.1) are known
      [(dv) => dv.setUint32(12, 2, true), "VERSION"], // bit 0 (BOUND, v1.1) is known
      [(dv) => dv.setUint32(12, 0x8000, true), "VERSION"],
      [(dv) => dv.setUint32(12, 1, true), "FORMAT"], // BOUND without a key
      [(dv) => dv.setUint16(54, 1, true), "FORMAT"],
      [(dv) => dv.setUint32(32, 63, true), "FORMAT"],
      [(dv) => dv.setUint32(36, 0, true), "FORMAT"],
    ];
    for (const [edit, code] of cases) {
      const e = await expectRejected(await reframe(editHeader(header, edit), frames), code, undefined);
      expect(e.offset).toBeLessThan(64);
    }
    // The major version is checked before the header check: a v2 header is VERSION even if its check is stale.
    expect(
      errorOf(() =>
        decodeStream(Buffer.concat([editHeader(header, (_, b) => (b[8] = 2), true), byName.lz4.bytes.subarray(64)])),
      ).code,
    ).toBe("VERSION");
  });

  it("a mangled magic is BAD_MAGIC and names the mangling; a short prefix is TRUNCATED", () => {
    const s = byName.lz4.bytes;
    const lf = Buffer.concat([s.subarray(0, 4), s.subarray(5)]); // CR LF -> LF
    expect(errorOf(() => decodeStream(lf)).message).toMatch(/CR LF was converted to LF/);
    const crlf = Buffer.concat([s.subarray(0, 7), Uint8Array.of(0x0d), s.subarray(7)]); // final LF -> CR LF
    expect(errorOf(() => decodeStream(crlf)).message).toMatch(/LF was converted to CR LF/);
    const seven = s.slice();
    seven[0] &= 0x7f;
    expect(errorOf(() => decodeStream(seven)).message).toMatch(/high bit/);
    expect(errorOf(() => decodeStream(new TextEncoder().encode("hello, world"))).code).toBe("BAD_MAGIC");
    expect(errorOf(() => decodeStream(new Uint8Array(100))).code).toBe("BAD_MAGIC");
    for (let n = 0; n < 8; n++) expect(errorOf(() => decodeStream(s.subarray(0, n))).code).toBe("TRUNCATED");
    // BAD_MAGIC is reported on the first byte that differs, before the header is complete.
    const dec = new StreamDecoder();
    expect(errorOf(() => [...dec.write(Uint8Array.of(0x89, 0x4d, 0x00))]).code).toBe("BAD_MAGIC");
  });
});

describe("limits", () => {
  it("a header declaring more than the reader's limits is LIMIT before anything is allocated", () => {
    const s = encodeStream(byName.dedup.input, { ...byName.dedup.options, maxMetadata: 100, maxTransaction: 5000 });
    const h = decodeStream(s).header;
    const cases: [string, number, string][] = [
      ["maxFrameSize", h.maxFrame - 1, "max_frame"],
      ["maxChunkSize", h.maxChunk - 1, "max_chunk"],
      ["maxTransactionSize", 4999, "max_transaction"],
      ["maxMetadataSize", 99, "max_metadata"],
      ["maxWindow", h.dedupWindow - 1, "dedup_window"],
      ["maxDevices", 0, "max_devices"],
      ["maxDedupMemory", h.dedupWindow - 1, "dedup_window × max_devices"],
    ];
    for (const [opt, v, field] of cases) {
      const e = errorOf(() => decodeStream(s, { [opt]: v }));
      expect(e.code).toBe("LIMIT");
      expect(e.field).toBe(field);
      expect(e.offset).toBe(0);
      // Exactly the declared value is fine.
      decodeStream(s, { [opt]: v + 1 });
    }
    expect(errorOf(() => decodeStream(s, { maxWindow: 2 ** 31 })).code).toBe("USAGE");
    expect(errorOf(() => decodeStream(s, { maxDevices: -1 })).code).toBe("USAGE");
  });

  it("declared values above the format's limits are refused by a default reader", async () => {
    const { header, frames } = lz4Frames();
    for (const [at, v] of [
      [32, (8 << 20) + 21],
      [36, (8 << 20) + 1],
      [40, 2 ** 30 + 1],
      [44, 2 ** 30 + 1],
      [48, (1 << 20) + 1],
    ] as const) {
      const e = errorOf(() =>
        decodeStream(
          Buffer.concat([editHeader(header, (dv) => dv.setUint32(at, v, true)), byName.lz4.bytes.subarray(64)]),
        ),
      );
      expect(e.code).toBe("LIMIT");
    }
    const e = errorOf(() =>
      decodeStream(
        Buffer.concat([editHeader(header, (dv) => dv.setUint16(52, 4097, true)), byName.lz4.bytes.subarray(64)]),
      ),
    );
    expect(e.code).toBe("LIMIT");
    expect(frames.length).toBeGreaterThan(5);
  });

  it("frames, devices, metadata, transactions and chunks beyond the header's declarations: LIMIT at that frame", async () => {
    const { header, frames } = lz4Frames();
    const raw = new Uint8Array(101).fill(3);
    // A frame longer than max_frame.
    const small = editHeader(header, (dv) => dv.setUint32(32, 100, true));
    const l1 = [frame(1, 1, [0]), phaseF(1, 2), txnF(1, 101, 1), chunkF(1, CODEC_RAW, raw, raw), ...frames.slice(-2)];
    const e1 = await expectRejected(await reframe(small, l1), "LIMIT", 3);
    expect(e1.field).toBe("length");
    // More devices than max_devices.
    const oneDev = editHeader(header, (dv) => dv.setUint16(52, 1, true));
    await expectRejected(await reframe(oneDev, [frame(1, 1, [0]), frame(1, 2, [0]), ...frames.slice(-1)]), "LIMIT", 1);
    // Metadata longer than max_metadata.
    const meta = editHeader(header, (dv) => dv.setUint32(48, 2, true));
    await expectRejected(await reframe(meta, [frame(1, 1, [0, 1, 2, 3]), ...frames.slice(-1)]), "LIMIT", 0);
    // A transaction larger than max_transaction.
    const txn = editHeader(header, (dv) => dv.setUint32(40, 100, true));
    await expectRejected(
      await reframe(txn, [frame(1, 1, [0]), phaseF(1, 2), txnF(1, 101, 1), ...frames.slice(-1)]),
      "LIMIT",
      2,
    );
    // A chunk larger than max_chunk.
    const chunk = editHeader(header, (dv) => dv.setUint32(36, 100, true));
    await expectRejected(
      await reframe(chunk, [
        frame(1, 1, [0]),
        phaseF(1, 2),
        txnF(1, 101, 2),
        chunkF(1, CODEC_RAW, raw, raw),
        ...frames.slice(-1),
      ]),
      "LIMIT",
      3,
    );
    // A zstd chunk above what zstd may decode.
    const big = editHeader(header, (dv) => {
      dv.setUint32(36, 8 << 20, true);
      dv.setUint32(40, 8 << 20, true);
    });
    const zl = [
      frame(1, 1, [0]),
      phaseF(1, 2),
      txnF(1, 5 << 20, 1),
      chunkF(1, CODEC_ZSTD, raw, new Uint8Array(20), { level: 3, rawLength: 5 << 20 }),
      ...frames.slice(-1),
    ];
    await expectRejected(await reframe(big, zl), "LIMIT", 3);
  });

  it("a dedup reference to a chunk already outside the window is LIMIT", async () => {
    const { header, frames } = splitFrames(byName.dedup.bytes);
    expect(frames.some((f) => f.type === 4 && f.payload[0] === CODEC_DEDUP_REF)).toBe(true);
    const tiny = editHeader(header, (dv) => dv.setUint32(44, 256, true));
    const first = frames.findIndex((f) => f.type === 4 && f.payload[0] === CODEC_DEDUP_REF);
    await expectRejected(await reframe(tiny, frames), "LIMIT", first);
  });
});

describe("structure rules", () => {
  const raw = new TextEncoder().encode("0123456789abcdef0123456789abcdef");
  const begin = frame(1, 1, [0]);
  const end = () => lz4Frames().frames.slice(-2);
  const cases: [string, () => F[], string, number][] = [
    ["TRANSACTION before any PHASE", () => [begin, txnF(1, 32, 1)], "FORMAT", 1],
    ["phase going back", () => [begin, phaseF(1, 2), phaseF(1, 1)], "FORMAT", 2],
    ["stop-and-copy twice", () => [begin, phaseF(1, 2), phaseF(1, 2)], "FORMAT", 2],
    ["pre-copy iteration not growing", () => [begin, phaseF(1, 1, 3), phaseF(1, 1, 3)], "FORMAT", 2],
    ["PHASE after end", () => [begin, phaseF(1, 4), phaseF(1, 4)], "FORMAT", 2],
    ["TRANSACTION after end", () => [begin, phaseF(1, 4), txnF(1, 0, 0)], "FORMAT", 2],
    ["unknown phase", () => [begin, phaseF(1, 5)], "FORMAT", 1],
    ["PHASE reserved bytes", () => [begin, frame(2, 1, [2, 0, 1, 0, 0, 0, 0, 0])], "FORMAT", 1],
    ["PHASE of the wrong size", () => [begin, frame(2, 1, [2, 0, 0, 0, 0, 0, 0])], "FORMAT", 1],
    ["CHUNK outside a transaction", () => [begin, phaseF(1, 2), chunkF(1, CODEC_RAW, raw, raw)], "FORMAT", 2],
    ["frame of a device never opened", () => [begin, phaseF(2, 2)], "FORMAT", 1],
    ["device opened twice", () => [begin, begin], "FORMAT", 1],
    ["frame of an ended device", () => [begin, phaseF(1, 2), emptyDeviceEnd(1, 3), phaseF(1, 3)], "FORMAT", 3],
    ["device opened again after its end", () => [begin, phaseF(1, 2), emptyDeviceEnd(1, 3), begin], "FORMAT", 3],
    [
      "PHASE inside a transaction",
      () => [begin, phaseF(1, 2), txnF(1, 64, 2), chunkF(1, CODEC_RAW, raw, raw), phaseF(1, 3)],
      "FORMAT",
      4,
    ],
    [
      "DEVICE_END inside a transaction",
      () => [begin, phaseF(1, 2), txnF(1, 64, 2), chunkF(1, CODEC_RAW, raw, raw), lz4Frames().frames.at(-2)!],
      "FORMAT",
      4,
    ],
    ["STREAM_END with an open device", () => [begin, phaseF(1, 2), ...end().slice(1)], "FORMAT", 2],
    ["STREAM_END naming a device", () => [{ ...end()[1], device: 1 }], "FORMAT", 0],
    ["chunks = 0 for a non-empty transaction", () => [begin, phaseF(1, 2), txnF(1, 32, 0)], "FORMAT", 2],
    ["more chunks than bytes", () => [begin, phaseF(1, 2), txnF(1, 2, 3)], "FORMAT", 2],
    ["fewer chunks than max_chunk allows", () => [begin, phaseF(1, 2), txnF(1, 513, 1)], "FORMAT", 2],
    ["chunk count mismatch", () => [begin, phaseF(1, 2), txnF(1, 32, 2), chunkF(1, CODEC_RAW, raw, raw)], "FORMAT", 3],
    [
      "chunk overrunning its transaction",
      () => [begin, phaseF(1, 2), txnF(1, 31, 1), chunkF(1, CODEC_RAW, raw, raw)],
      "FORMAT",
      3,
    ],
    [
      "chunk raw_length 0",
      () => [begin, phaseF(1, 2), txnF(1, 1, 1), chunkF(1, CODEC_RAW, raw, raw.subarray(0, 0), { rawLength: 0 })],
      "FORMAT",
      3,
    ],
    ["unknown codec", () => [begin, phaseF(1, 2), txnF(1, 32, 1), chunkF(1, 5, raw, raw)], "CODEC", 3],
    [
      "level on a non-zstd chunk",
      () => [begin, phaseF(1, 2), txnF(1, 32, 1), chunkF(1, CODEC_RAW, raw, raw, { level: 1 })],
      "FORMAT",
      3,
    ],
    [
      "zstd level 0",
      () => [begin, phaseF(1, 2), txnF(1, 32, 1), chunkF(1, CODEC_ZSTD, raw, raw.subarray(0, 10), { level: 0 })],
      "FORMAT",
      3,
    ],
    [
      "zstd level 20",
      () => [begin, phaseF(1, 2), txnF(1, 32, 1), chunkF(1, CODEC_ZSTD, raw, raw.subarray(0, 10), { level: 20 })],
      "FORMAT",
      3,
    ],
    [
      "RAW with a short payload",
      () => [begin, phaseF(1, 2), txnF(1, 32, 1), chunkF(1, CODEC_RAW, raw, raw.subarray(1), { rawLength: 32 })],
      "FORMAT",
      3,
    ],
    [
      "ZERO with a payload",
      () => [begin, phaseF(1, 2), txnF(1, 32, 1), chunkF(1, CODEC_ZERO, new Uint8Array(32), Uint8Array.of(0))],
      "FORMAT",
      3,
    ],
    [
      "LZ4 with an empty payload",
      () => [begin, phaseF(1, 2), txnF(1, 32, 1), chunkF(1, CODEC_LZ4, raw, new Uint8Array(0))],
      "FORMAT",
      3,
    ],
    [
      "DEDUP_REF without a window",
      () => [begin, phaseF(1, 2), txnF(1, 32, 1), chunkF(1, CODEC_DEDUP_REF, raw, new Uint8Array(8))],
      "FORMAT",
      3,
    ],
    [
      "CHUNK reserved field",
      () => [
        begin,
        phaseF(1, 2),
        txnF(1, 32, 1),
        {
          ...chunkF(1, CODEC_RAW, raw, raw),
          payload: (() => {
            const c = chunkF(1, CODEC_RAW, raw, raw).payload;
            c[2] = 1;
            return c;
          })(),
        },
      ],
      "FORMAT",
      3,
    ],
    [
      "coded_length not matching the payload",
      () => [
        begin,
        phaseF(1, 2),
        txnF(1, 32, 1),
        {
          ...chunkF(1, CODEC_RAW, raw, raw),
          payload: (() => {
            const c = chunkF(1, CODEC_RAW, raw, raw).payload;
            c[8] = 31;
            return c;
          })(),
        },
      ],
      "FORMAT",
      3,
    ],
    [
      "CHUNK shorter than its header",
      () => [begin, phaseF(1, 2), txnF(1, 32, 1), frame(4, 1, new Uint8Array(19))],
      "FORMAT",
      3,
    ],
    ["empty DEVICE_BEGIN", () => [frame(1, 1, [])], "FORMAT", 0],
    ["device name overrunning the payload", () => [frame(1, 1, [5, 65, 66])], "FORMAT", 0],
    ["device name not UTF-8", () => [frame(1, 1, [2, 0xc3, 0x28])], "FORMAT", 0],
    [
      "TRANSACTION of the wrong size",
      () => [begin, phaseF(1, 2), frame(3, 1, [1, 0, 0, 0, 1, 0, 0, 0, 0])],
      "FORMAT",
      2,
    ],
    ["non-zero frame flags", () => [begin, { ...phaseF(1, 2), flags: 1 }], "FORMAT", 1],
  ];
  for (const [name, build, code, at] of cases) {
    it(`${name}: ${code} at frame ${at}`, async () => {
      const { header } = lz4Frames();
      await expectRejected(await reframe(header, build()), code, at);
    });
  }

  it("trailer counts and digests must match", async () => {
    const { header, frames } = lz4Frames();
    const n = frames.length;
    const edit = (i: number, at: number, v: number) => {
      const l = frames.map((f) => ({ ...f, payload: f.payload.slice() }));
      l[i].payload[at] ^= v;
      return l;
    };
    // DEVICE_END: frames, transactions, chunks, raw and coded bytes; then its digest.
    for (const at of [0, 8, 16, 24, 32])
      await expectRejected(await reframe(header, edit(n - 2, at, 1)), "FORMAT", n - 2);
    await expectRejected(await reframe(header, edit(n - 2, 40, 1)), "CHECKSUM", n - 2);
    await expectRejected(await reframe(header, edit(n - 2, 47, 0x80)), "CHECKSUM", n - 2);
    // A count above 2^53 - 1.
    await expectRejected(await reframe(header, edit(n - 2, 7, 0x40)), "FORMAT", n - 2);
    // STREAM_END: devices, transactions, chunks, raw and coded bytes; the frame count; the digest; the marker.
    for (const at of [8, 16, 24, 32, 40])
      await expectRejected(await reframe(header, edit(n - 1, at, 1)), "FORMAT", n - 1);
    await expectRejected(await reframe(header, edit(n - 1, 0, 1), { fixTrailer: false }), "FORMAT", n - 1);
    await expectRejected(await reframe(header, edit(n - 1, 48, 1), { fixTrailer: false }), "CHECKSUM", n - 1);
    await expectRejected(await reframe(header, edit(n - 1, 60, 1)), "FORMAT", n - 1);
  });

  it("a payload that passes its checks but does not decode: CODEC (decode only); a wrong raw_hash: CHECKSUM", async () => {
    const { header, frames } = lz4Frames();
    const i = frames.findIndex((f) => f.type === 4 && f.payload[0] === CODEC_LZ4);
    const l = frames.map((f) => ({ ...f, payload: f.payload.slice() }));
    l[i].payload.fill(0xff, 20);
    const s = await reframe(header, l);
    const c = await expectRejected(s, "CODEC", i, false);
    // The offset points into the payload of that frame.
    expect(c.offset).toBeGreaterThanOrEqual(splitFrames(byName.lz4.bytes).frames[i].offset + 36);
    verifyStream(s); // verify-only cannot see it (FORMAT.md §8)
    const h = frames.map((f) => ({ ...f, payload: f.payload.slice() }));
    h[i].payload[12] ^= 1;
    const e = await expectRejected(await reframe(header, h), "CHECKSUM", i, false);
    expect(e.field).toBe("raw_hash");
    // zstd: a payload whose frame is damaged (checks recomputed).
    const z = splitFrames(byName.zstd.bytes);
    const zi = z.frames.findIndex((f) => f.type === 4 && f.payload[0] === CODEC_ZSTD);
    const zl = z.frames.map((f) => ({ ...f, payload: f.payload.slice() }));
    zl[zi].payload[zl[zi].payload.length - 3] ^= 0x55;
    zl[zi].payload[30] ^= 0x55;
    await expectRejected(await reframe(z.header, zl), "CODEC", zi, false);
  });

  it("dedup references: never recorded is FORMAT, wrong length is CODEC", async () => {
    const { header, frames } = splitFrames(byName.dedup.bytes);
    const i = frames.findIndex((f) => f.type === 4 && f.payload[0] === CODEC_DEDUP_REF);
    const l = frames.map((f) => ({ ...f, payload: f.payload.slice() }));
    l[i].payload[20] = 99;
    await expectRejected(await reframe(header, l), "FORMAT", i);
    // Point the reference at the other recorded chunk, which has another length.
    const recorded = frames
      .filter((f) => f.type === 4 && f.payload[0] === CODEC_RAW)
      .map((f) => new DataView(f.payload.buffer).getUint32(4, true));
    const target = m(frames, i);
    expect(recorded[target.other]).not.toBe(recorded[target.was]);
    await expectRejected(await reframe(header, target.list), "CODEC", i);
  });
});

/** The frames with DEDUP_REF frame i pointing at ordinal 0 or 1, whichever it did not name. */
function m(frames: F[], i: number) {
  const list = frames.map((f) => ({ ...f, payload: f.payload.slice() }));
  const was = list[i].payload[20];
  const other = was === 0 ? 1 : 0;
  list[i].payload[20] = other;
  return { list, was, other };
}

describe("events", () => {
  it("come in stream order with offsets and frame numbers", () => {
    const s = byName.multi.bytes;
    const dec = new StreamDecoder();
    const evs: DecodeEvent[] = [...dec.write(s)];
    dec.finish();
    const frames = splitFrames(s).frames;
    for (const ev of evs) {
      if (ev.type === "header") continue;
      expect(frames[ev.frame].offset).toBe(ev.offset);
    }
    expect(evs[0].type).toBe("header");
    expect(evs.at(-1)!.type).toBe("end");
  });
});
