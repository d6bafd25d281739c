// Byte-exact round trips: every codec, chunk and transaction sizes, several
// devices interleaved, dedup, MAC, streamed decoding at random split points,
// the coder pipeline, and the one-shot sync/async encoders agreeing byte for byte.
import { beforeAll, describe, expect, it } from "vitest";
import type { AutoContext } from "../../src/codec/auto/decide.js";
import type { Coding } from "../../src/codec/coding.js";
import { CODEC_DEDUP_REF, CODEC_LZ4, CODEC_RAW, CODEC_ZERO, CODEC_ZSTD, init } from "../../src/codec/index.js";
import {
  type ChunkCoder,
  type CodingPool,
  type DecodeEvent,
  type DeviceInput,
  decodeStream,
  decodeStreamAsync,
  type EncoderOptions,
  encodeStream,
  encodeStreamAsync,
  StreamDecoder,
  StreamEncoder,
  verifyStream,
} from "../../src/format/index.js";
import { encodeJob } from "../../src/parallel/codec-job.js";
import { WorkerPool } from "../../src/parallel/index.js";
import {
  errorOf,
  errorOfAsync,
  expectSameDevices,
  image,
  KEY,
  prng,
  SID,
  same,
  splitFrames,
  splitRandom,
} from "./helpers.js";

beforeAll(async () => {
  await init();
});

const IMG = image(1_200_000, 3);

function oneDevice(txnSizes: number[], data = IMG): DeviceInput[] {
  const items: DeviceInput["items"] = [{ kind: "phase", phase: "precopy", iteration: 0 }];
  let at = 0;
  for (const n of txnSizes) {
    items.push({ kind: "transaction", data: data.subarray(at, at + n) });
    at = (at + n) % Math.max(1, data.length - n);
  }
  items.push({ kind: "phase", phase: "stopcopy", iteration: 0 });
  items.push({ kind: "transaction", data: data.subarray(0, 777) });
  return [{ id: 0, name: "dev0", metadata: Uint8Array.of(1, 2, 3), items }];
}

/** Codec ids used by the CHUNK frames of a stream. */
function codecsOf(s: Uint8Array): Set<number> {
  return new Set(
    splitFrames(s)
      .frames.filter((f) => f.type === 4)
      .map((f) => f.payload[0]),
  );
}

/** Raw bytes of the stop-and-copy chunks sent without their data (DEDUP_REF or ZERO). */
function stopcopyBytesNotSent(s: Uint8Array): number {
  let phase = "";
  let n = 0;
  const dec = new StreamDecoder({ verifyOnly: true });
  for (const ev of dec.write(s)) {
    if (ev.type === "phase") phase = ev.phase;
    if (ev.type === "chunk" && phase === "stopcopy" && (ev.codec === CODEC_DEDUP_REF || ev.codec === CODEC_ZERO))
      n += ev.rawLength;
  }
  return n;
}

describe("codecs and chunk sizes", () => {
  const cases: [string, EncoderOptions, number[]][] = [
    ["raw", { codec: "raw" }, [CODEC_RAW, CODEC_ZERO]],
    ["zero", { codec: "zero" }, [CODEC_RAW, CODEC_ZERO]],
    ["lz4", { codec: "lz4" }, [CODEC_LZ4, CODEC_ZERO]],
    ["lz4 accel 8", { codec: "lz4", level: 8 }, [CODEC_LZ4, CODEC_ZERO]],
    ["zstd 1", { codec: "zstd", level: 1 }, [CODEC_ZSTD, CODEC_ZERO]],
    ["zstd 3", { codec: "zstd", level: 3 }, [CODEC_ZSTD, CODEC_ZERO]],
    ["zstd 9", { codec: "zstd", level: 9 }, [CODEC_ZSTD, CODEC_ZERO]],
    ["auto", { codec: "auto" }, [CODEC_ZERO]],
  ];
  for (const [name, opts, expectCodecs] of cases) {
    it(`${name}: chunk sizes 1000 B .. 1 MiB round-trip byte for byte`, async () => {
      for (const chunkSize of [1000, 4096, 65536, undefined, 1 << 20]) {
        const input = oneDevice([300_000, 1, 4096, 500_000, 0, 99_999], IMG);
        const o = { ...opts, chunkSize, streamId: SID };
        const s = encodeStream(input, o);
        const d = decodeStream(s);
        expectSameDevices(d, input);
        // The asked codec is really used, and nothing else but ZERO/RAW appears.
        const used = codecsOf(s);
        for (const c of expectCodecs) if (c !== CODEC_RAW || name === "raw") expect(used.has(c)).toBe(true);
        for (const c of used) expect([CODEC_RAW, CODEC_ZERO, CODEC_LZ4, CODEC_ZSTD]).toContain(c);
        if (name.startsWith("zstd")) {
          const lv = Number(name.split(" ")[1]);
          for (const f of splitFrames(s).frames)
            if (f.type === 4 && f.payload[0] === CODEC_ZSTD) expect(f.payload[1]).toBeLessThanOrEqual(lv);
        }
        // verify-only agrees with the full decode on the totals.
        expect(verifyStream(s)).toEqual(d.trailer);
        // The async one-shot encoder writes the same bytes.
        expect(same(await encodeStreamAsync(input, o), s)).toBe(true);
      }
    });
  }

  it("lz4 and zstd shrink a mixed image; raw does not", () => {
    const input = oneDevice([IMG.length]);
    const raw = encodeStream(input, { codec: "raw" }).length;
    const lz4 = encodeStream(input, { codec: "lz4" }).length;
    const zstd = encodeStream(input, { codec: "zstd", level: 3 }).length;
    expect(raw).toBeGreaterThan(IMG.length * 0.9); // only whole-zero 256 KiB chunks would be elided
    expect(lz4).toBeLessThan(raw * 0.8);
    expect(zstd).toBeLessThan(lz4);
  });
});

describe("transaction sizes", () => {
  it("1 B .. 8 MiB transactions keep their exact sizes and order", async () => {
    const big = image(8 << 20, 9);
    const sizes = [1, 0, 2, 255, 4096, 65_537, (1 << 20) + 3, 8 << 20, 1];
    const items: DeviceInput["items"] = [{ kind: "phase", phase: "stopcopy", iteration: 0 }];
    let at = 0;
    for (const n of sizes) {
      const start = at % (big.length - n + 1);
      items.push({ kind: "transaction", data: big.subarray(start, start + n) });
      at += 7919 + n;
    }
    const input = [{ id: 9, items }];
    for (const codec of ["lz4", "zstd"] as const) {
      const s = encodeStream(input, { codec, level: 1 });
      expectSameDevices(decodeStream(s), input);
    }
  });
});

describe("several devices", () => {
  it("encodeStream interleaves devices one item at a time", () => {
    const a = oneDevice([1000, 2000, 3000])[0];
    const input: DeviceInput[] = [
      { ...a, id: 7, name: "a" },
      {
        id: 3,
        name: "b",
        items: [
          { kind: "phase", phase: "setup", iteration: 0 },
          { kind: "transaction", data: IMG.subarray(5, 60_000) },
        ],
      },
      { id: 65535, name: "c ✓", items: [] },
    ];
    const s = encodeStream(input);
    expectSameDevices(decodeStream(s), input);
    const devs = splitFrames(s).frames.map((f) => f.device);
    // DEVICE_BEGIN of all three, then round 0: 7, 3, 65535 (its DEVICE_END).
    expect(devs.slice(0, 6)).toEqual([7, 3, 65535, 7, 3, 65535]);
  });

  it("StreamEncoder devices written concurrently decode per device", async () => {
    const rnd = prng(11);
    const parts: Uint8Array[] = [];
    const enc = new StreamEncoder(
      async (b) => {
        if (rnd() < 0.5) await new Promise((r) => setTimeout(r, 0));
        parts.push(b.slice());
      },
      { streamId: SID, chunkSize: 8192 },
    );
    const inputs: DeviceInput[] = [0, 1, 2].map((id) => ({
      id: id * 100,
      name: `d${id}`,
      items: [
        { kind: "phase", phase: "precopy", iteration: 0 },
        ...Array.from({ length: 6 }, (_, k) => ({
          kind: "transaction" as const,
          data: IMG.subarray(id * 1000 + k * 20_000, id * 1000 + k * 20_000 + 5000 * (k + id + 1)),
        })),
        { kind: "phase", phase: "precopy", iteration: 3 },
        { kind: "transaction", data: IMG.subarray(0, 10) },
      ],
    }));
    await Promise.all(
      inputs.map(async (inp) => {
        const w = enc.device(inp.id, { name: inp.name });
        for (const it of inp.items) {
          if (rnd() < 0.3) await new Promise((r) => setTimeout(r, 0));
          if (it.kind === "phase") await w.phase(it.phase, it.iteration);
          else {
            // The caller reuses its buffer once the call settles.
            const buf = it.data.slice();
            await w.transaction(buf);
            buf.fill(0xee);
          }
        }
        return w.end();
      }),
    );
    const trailer = await enc.finish();
    const s = Buffer.concat(parts);
    const d = decodeStream(s);
    expect(d.trailer).toEqual(trailer);
    expectSameDevices(d, inputs);
    // The devices really interleave in the stream.
    const devs = splitFrames(s).frames.map((f) => f.device);
    let switches = 0;
    for (let i = 1; i < devs.length; i++) if (devs[i] !== devs[i - 1]) switches++;
    expect(switches).toBeGreaterThan(6);
    expect(enc.stats.frames).toBe(trailer.frames + 1);
  });
});

describe("dedup", () => {
  // Pre-copy sends X; stop-and-copy sends 1234 new bytes followed by X (shifted).
  const X = image(600_000, 21);
  const fresh = image(1234, 22);
  const input: DeviceInput[] = [
    {
      id: 1,
      items: [
        { kind: "phase", phase: "precopy", iteration: 0 },
        { kind: "transaction", data: X },
        { kind: "phase", phase: "stopcopy", iteration: 0 },
        { kind: "transaction", data: Buffer.concat([fresh, X]) },
      ],
    },
  ];

  it("finds a shifted duplicate and stays byte-exact", async () => {
    const off = encodeStream(input, { streamId: SID });
    const parts: Uint8Array[] = [];
    const enc = new StreamEncoder((b) => void parts.push(b), { streamId: SID, dedup: true, maxDevices: 1 });
    const w = enc.device(1);
    for (const it of input[0].items) {
      if (it.kind === "phase") await w.phase(it.phase, it.iteration);
      else await w.transaction(it.data);
    }
    await w.end();
    await enc.finish();
    const on = Buffer.concat(parts);
    expectSameDevices(decodeStream(on), input);
    // The shifted copy goes as references, apart from its zero runs (ZERO chunks) and the chunks around the shift.
    expect(enc.stats.dedupBytes).toBeGreaterThan(0.4 * X.length);
    expect(stopcopyBytesNotSent(on)).toBeGreaterThan(0.95 * X.length);
    expect(enc.stats.chunksByCodec["dedup-ref"]).toBeGreaterThan(3);
    expect(codecsOf(on).has(CODEC_DEDUP_REF)).toBe(true);
    expect(codecsOf(off).has(CODEC_DEDUP_REF)).toBe(false);
    expect(on.length).toBeLessThan(off.length * 0.7);
    // Verify-only follows the window with lengths alone.
    expect(verifyStream(on).rawBytes).toBe(X.length * 2 + fresh.length);
  });

  it("a small window only references what the decoder still holds", () => {
    // X is 600 kB away from its copy: only a window holding all of it finds it.
    for (const dedupWindow of [0, 300, 64 << 10, 256 << 10, 1 << 20]) {
      const s = encodeStream(input, { dedup: true, dedupWindow, chunkSize: 16 << 10 });
      const d = decodeStream(s, { maxWindow: Math.max(dedupWindow, 0) });
      expectSameDevices(d, input);
      expect(codecsOf(s).has(CODEC_DEDUP_REF)).toBe(dedupWindow >= 1 << 20);
      verifyStream(s);
    }
  });

  it("dedup across devices never happens (each device has its own window)", () => {
    const two: DeviceInput[] = [
      {
        id: 1,
        items: [
          { kind: "phase", phase: "stopcopy", iteration: 0 },
          { kind: "transaction", data: X },
        ],
      },
      {
        id: 2,
        items: [
          { kind: "phase", phase: "stopcopy", iteration: 0 },
          { kind: "transaction", data: X },
        ],
      },
    ];
    const s = encodeStream(two, { dedup: true });
    expect(codecsOf(s).has(CODEC_DEDUP_REF)).toBe(false);
    expectSameDevices(decodeStream(s), two);
  });
});

describe("MAC", () => {
  const input = oneDevice([10_000, 70_000]);
  it("keyed streams round-trip and need the right key", async () => {
    for (const dedup of [false, true]) {
      const s = await encodeStreamAsync(input, { key: KEY, streamId: SID, dedup, chunkSize: 16384 });
      expect(s[11]).toBe(1);
      expectSameDevices(await decodeStreamAsync(s, { key: KEY }), input);
      const wrong = KEY.slice();
      wrong[5] ^= 1;
      expect((await errorOfAsync(() => decodeStreamAsync(s, { key: wrong }))).code).toBe("MAC");
      expect((await errorOfAsync(() => decodeStreamAsync(s))).code).toBe("MAC");
      expect(errorOf(() => decodeStream(s, { key: KEY })).code).toBe("USAGE");
      // Unkeyed stream, key given: refused too.
      const plain = encodeStream(input, { streamId: SID, dedup });
      expect((await errorOfAsync(() => decodeStreamAsync(plain, { key: KEY }))).code).toBe("MAC");
      // Same input and stream id, different keys: different tags, same frames otherwise.
      const s2 = await encodeStreamAsync(input, { key: wrong, streamId: SID, dedup, chunkSize: 16384 });
      expect(s2.length).toBe(s.length);
      expect(same(s2, s)).toBe(false);
    }
  });

  it("the sync encoder refuses a key; bad keys are USAGE", async () => {
    expect(errorOf(() => encodeStream(input, { key: KEY })).code).toBe("USAGE");
    expect((await errorOfAsync(() => encodeStreamAsync(input, { key: new Uint8Array(8) }))).code).toBe("USAGE");
  });
});

/** Decodes `s` fed in random pieces through the sync or async API; returns per-device bytes. */
async function decodeInPieces(s: Uint8Array, seed: number, mode: "sync" | "async" | "verify", key?: Uint8Array) {
  const rnd = prng(seed);
  const dec = new StreamDecoder({ key, verifyOnly: mode === "verify" });
  const byDevice = new Map<number, Uint8Array[]>();
  let end: DecodeEvent | null = null;
  const on = (ev: DecodeEvent) => {
    if (ev.type === "chunk" && ev.data) {
      const l = byDevice.get(ev.device) ?? [];
      l.push(ev.data.slice());
      byDevice.set(ev.device, l);
    }
    if (ev.type === "end") end = ev;
  };
  for (const piece of splitRandom(s, rnd, 1 + Math.floor(rnd() * 5000))) {
    if (mode === "async") for await (const ev of dec.writeAsync(piece)) on(ev);
    else for (const ev of dec.write(piece)) on(ev);
  }
  dec.finish();
  expect(end).not.toBeNull();
  expect(dec.done).toBe(true);
  return new Map([...byDevice].map(([k, v]) => [k, Buffer.concat(v)]));
}

describe("streamed decoding", () => {
  it("any split of the input gives the same events and bytes", async () => {
    const input: DeviceInput[] = [
      { id: 4, items: oneDevice([50_000, 3, 120_000])[0].items },
      { id: 5, items: oneDevice([8000, 8000])[0].items },
    ];
    const want = new Map(
      input.map((d) => [d.id, Buffer.concat(d.items.flatMap((i) => (i.kind === "transaction" ? [i.data] : [])))]),
    );
    const plain = encodeStream(input, { dedup: true, chunkSize: 4096, codec: "auto" });
    const keyed = await encodeStreamAsync(input, { key: KEY, chunkSize: 8192 });
    for (let seed = 1; seed <= 12; seed++) {
      for (const [k, v] of await decodeInPieces(plain, seed, "sync")) expect(same(v, want.get(k)!)).toBe(true);
      for (const [k, v] of await decodeInPieces(plain, seed + 100, "async")) expect(same(v, want.get(k)!)).toBe(true);
      for (const [k, v] of await decodeInPieces(keyed, seed + 200, "async", KEY))
        expect(same(v, want.get(k)!)).toBe(true);
      expect((await decodeInPieces(plain, seed + 300, "verify")).size).toBe(0);
    }
    // One byte at a time.
    const dec = new StreamDecoder();
    let n = 0;
    for (let i = 0; i < plain.length; i++)
      for (const ev of dec.write(plain.subarray(i, i + 1))) if (ev.type === "chunk") n++;
    dec.finish();
    expect(n).toBe(verifyStream(plain).chunks);
  });
});

describe("coder pipeline", () => {
  /** A pool that hands out `coder` (the seam the encoder's `pool` option takes). */
  const poolOf = (coder: ChunkCoder): CodingPool => ({
    threads: 1,
    coder: () => coder,
    decoder: () => {
      throw new Error("not a decoder");
    },
  });

  /** A coder with random completion times; results still come back through their own promises. */
  function slowCoder(seed: number): ChunkCoder & { calls: number } {
    const rnd = prng(seed);
    const c = {
      calls: 0,
      async encode(raw: Uint8Array, coding: Coding, auto?: AutoContext) {
        c.calls++;
        const mine = raw.slice(); // raw is valid only until encode returns
        await new Promise((r) => setTimeout(r, rnd() < 0.5 ? 0 : 2));
        return encodeJob(mine, coding, auto);
      },
    };
    return c;
  }

  it("writes the same bytes as inline coding, with and without dedup", async () => {
    const input = oneDevice([100_000, 5, 300_000, 64_000]);
    for (const opts of [
      { codec: "lz4" },
      { codec: "zstd", level: 3 },
      { codec: "lz4", dedup: true },
    ] as EncoderOptions[]) {
      const o = { ...opts, streamId: SID, chunkSize: 8192 };
      const coder = slowCoder(5);
      const a = await encodeStreamAsync(input, { ...o, pool: poolOf(coder) });
      expect(coder.calls).toBeGreaterThan(10);
      expect(same(a, encodeStream(input, o))).toBe(true);
    }
  });

  it("works with the worker pool's encode jobs (inline) as its coder", async () => {
    const pool = new WorkerPool({ threads: 1 });
    try {
      const coder: ChunkCoder = {
        encode: (raw, coding) => pool.encode(raw, { codec: coding.codec, level: coding.level, copy: true }),
      };
      const input = oneDevice([200_000, 1, 9000]);
      const a = await encodeStreamAsync(input, { pool: poolOf(coder), streamId: SID, chunkSize: 16384, key: KEY });
      expectSameDevices(await decodeStreamAsync(a, { key: KEY }), input);
    } finally {
      await pool.close();
    }
  });

  it("a coder failure fails the stream with the coder's error", async () => {
    const input = oneDevice([100_000]);
    let n = 0;
    const coder: ChunkCoder = {
      encode: async (raw, coding) => {
        if (++n === 4) throw new (await import("../../src/errors.js")).MigstreamError("CODEC", "boom");
        return encodeJob(raw.slice(), coding);
      },
    };
    const e = await errorOfAsync(() => encodeStreamAsync(input, { pool: poolOf(coder), chunkSize: 4096 }));
    expect(e.code).toBe("CODEC");
    // A coder returning nonsense is caught.
    const liar: ChunkCoder = {
      encode: async (raw) => ({
        codec: CODEC_LZ4,
        level: 0,
        payload: new Uint8Array(raw.length + 1),
        rawLength: raw.length,
        hash: 0n,
      }),
    };
    expect((await errorOfAsync(() => encodeStreamAsync(input, { pool: poolOf(liar), chunkSize: 4096 }))).code).toBe(
      "INTERNAL",
    );
  });
});
