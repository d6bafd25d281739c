// The decoder's payload stage (src/format/stage.ts): payloads copied once into
// kernel memory, checked and decoded there. The ring hands out only live
// copies; a decoder that stages (no pool) gives the same bytes as the plain
// one-shot decode in every output mode and any input split — including RAW
// chunks handed out as views of the input in reuse mode — and every bit flip
// fails with the same typed error after the same correct bytes.
import { beforeAll, describe, expect, it } from "vitest";
import { CODEC_LZ4, CODEC_RAW } from "../../src/codec/ids.js";
import { init } from "../../src/codec/index.js";
import { isMigstreamError } from "../../src/errors.js";
import {
  type ChunkDecoder,
  type DecodeEvent,
  type DecoderOptions,
  decodeStream,
  encodeStreamAsync,
  StreamDecoder,
} from "../../src/format/index.js";
import { PayloadStage, STAGE_MIN_BYTES } from "../../src/format/stage.js";
import { inKernelMemory } from "../../src/kernels/wasm.js";
import { flatten, image, same } from "./helpers.js";
import { type SmallStream, smallStreams } from "./small-streams.js";

type Stream = SmallStream & { bytes: Uint8Array };

/** A pool's decoder that decodes every RAW and LZ4 chunk on the calling thread (as a WorkerPool's does). */
const poolOnThisThread: ChunkDecoder = {
  decodesHere: (codec) => codec === CODEC_RAW || codec === CODEC_LZ4,
  decode: () => Promise.reject(new Error("no chunk goes to this pool")),
};
let streams: Stream[] = [];
beforeAll(async () => {
  await init();
  streams = (await smallStreams()).filter((s) => s.options.key === undefined);
});

/** Deterministic pieces of 1..max bytes. */
function* pieces(b: Uint8Array, seed: number, max: number): Generator<Uint8Array> {
  let x = seed;
  for (let at = 0; at < b.length; ) {
    x = (x * 1103515245 + 12345) >>> 0;
    const n = 1 + (x % max);
    yield b.subarray(at, at + n);
    at += n;
  }
}

interface Outcome {
  /** Each device's bytes (copied when handed out), in stream order. */
  devices: Map<number, Uint8Array>;
  error: { code: string; frame?: number; field?: string } | null;
}

/** Decodes `b` with `o`, in pieces of 1..split bytes, synchronously or not. */
async function decodeAll(b: Uint8Array, o: DecoderOptions, split: number, async: boolean): Promise<Outcome> {
  const dec = new StreamDecoder(o);
  const got = new Map<number, Uint8Array[]>();
  // Assembled: the whole transactions (their chunks' data are views into them); else the chunks.
  const take = (ev: DecodeEvent) => {
    if (ev.type === (o.assemble ? "transaction-end" : "chunk") && ev.data)
      got.set(ev.device, [...(got.get(ev.device) ?? []), ev.data.slice()]);
  };
  const devices = () => new Map([...got].map(([d, parts]) => [d, Buffer.concat(parts) as Uint8Array]));
  try {
    for (const p of pieces(b, split, split)) {
      if (async) for await (const ev of dec.writeAsync(p)) take(ev);
      else for (const ev of dec.write(p)) take(ev);
    }
    dec.finish();
    return { devices: devices(), error: null };
  } catch (e) {
    if (!isMigstreamError(e)) throw e;
    return { devices: devices(), error: { code: e.code, frame: e.frame, field: e.field } };
  }
}

/** Each device's bytes, from the encoder's input (not from a decoder). */
function inputBytes(s: Stream): Map<number, Uint8Array> {
  return new Map(s.input.map((d) => [d.id, flatten(d.items).bytes]));
}

describe("PayloadStage", () => {
  it("keeps a copy in kernel memory until the ring writes over it", () => {
    const stage = new PayloadStage();
    const a = Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff);
    const ta = stage.put(a);
    const va = stage.view(ta)!;
    expect(inKernelMemory(va)).toBe(true);
    expect(same(va, a)).toBe(true);
    a.fill(9); // the caller's bytes change: the staged copy does not
    expect(stage.view(ta)![5]).toBe(5);
    // Fill the rest of the ring: the first copy stays live until the ring wraps over it.
    const big = new Uint8Array(STAGE_MIN_BYTES / 2 - 600);
    const t1 = stage.put(big);
    const t2 = stage.put(big);
    expect(stage.view(ta)).not.toBeNull();
    const t3 = stage.put(big); // wraps: written at 0, over `a` and t1
    expect(stage.view(ta)).toBeNull();
    expect(stage.view(t1)).toBeNull();
    expect(stage.view(t2)).not.toBeNull();
    expect(stage.view(t3)!.length).toBe(big.length);
    // A payload larger than half the ring gets a new ring: every older ticket goes stale.
    const huge = new Uint8Array(STAGE_MIN_BYTES);
    const th = stage.put(huge);
    expect(stage.view(t3)).toBeNull();
    expect(stage.view(th)!.length).toBe(huge.length);
    stage.dispose();
    expect(stage.view(th)).toBeNull();
  });
});

describe("a staging decoder", () => {
  const modes: DecoderOptions[] = [
    {},
    { reuseOutput: true },
    { assemble: true },
    { assemble: true, reuseOutput: true },
  ];

  it("gives the one-shot decode's bytes in every output mode and any split, sync and async", async () => {
    for (const s of streams) {
      const want = inputBytes(s);
      for (const o of modes) {
        for (const [split, async] of [
          [1, false],
          [37, true],
          [5000, false],
          [1 << 20, true],
        ] as const) {
          const r = await decodeAll(s.bytes, o, split, async);
          const what = `${s.name} ${JSON.stringify(o)} split ${split}`;
          expect(r.error, what).toBeNull();
          for (const [id, bytes] of want) expect(same(r.devices.get(id) ?? new Uint8Array(0), bytes), what).toBe(true);
        }
      }
    }
  });

  it("RAW chunks in reuse mode are views of the input, verified before they go out", async () => {
    const s = streams.find((x) => x.name === "raw")!;
    const dec = new StreamDecoder({ reuseOutput: true });
    let views = 0;
    for (const ev of dec.write(s.bytes)) if (ev.type === "chunk" && ev.data?.buffer === s.bytes.buffer) views++;
    dec.finish();
    expect(views).toBeGreaterThan(2);
  });

  it("RAW chunks stay views of the input when a write holds more frames than the ring: async, with a pool too", async () => {
    // 3 MiB in 64 KiB chunks, written whole: a decoder that staged a batch of frames before taking them
    // found the early ones' copies overwritten (STAGE_MIN_BYTES) and copied those chunks instead.
    const data = image(3 << 20, 4);
    const items = [{ kind: "phase", phase: "stopcopy", iteration: 0 } as const, { kind: "transaction", data } as const];
    const bytes = await encodeStreamAsync([{ id: 1, items }], {
      codec: "raw",
      chunkSize: 64 << 10,
    });
    expect(bytes.length).toBeGreaterThan(2 * STAGE_MIN_BYTES);
    const pool = { threads: 2, decoder: () => poolOnThisThread, coder: () => ({}) as never };
    for (const o of [{ reuseOutput: true }, { reuseOutput: true, pool }] as DecoderOptions[]) {
      const dec = new StreamDecoder(o);
      let chunks = 0;
      let views = 0;
      const out = new Uint8Array(data.length);
      for await (const ev of dec.events([bytes])) {
        if (ev.type !== "chunk") continue;
        out.set(ev.data!, chunks * (64 << 10));
        chunks++;
        if (ev.data!.buffer === bytes.buffer) views++;
      }
      expect(chunks).toBe(48);
      expect(views, JSON.stringify(Object.keys(o))).toBe(chunks);
      expect(same(out, data)).toBe(true);
    }
  });

  it("every bit flip: the same typed error as the one-shot decode, after correct bytes only", async () => {
    for (const name of ["raw", "lz4", "dedup"]) {
      const s = streams.find((x) => x.name === name)!;
      const want = inputBytes(s);
      const b = s.bytes.slice();
      for (let i = 64; i < b.length; i++) {
        const bit = i % 8;
        b[i] ^= 1 << bit;
        let oneShot: { code: string; frame?: number; field?: string } | null = null;
        try {
          decodeStream(b);
        } catch (e) {
          if (!isMigstreamError(e)) throw e;
          oneShot = { code: e.code, frame: e.frame, field: e.field };
        }
        const r = await decodeAll(b, { reuseOutput: true }, 1 + (i % 700), i % 2 === 0);
        expect(r.error, `${name} byte ${i} bit ${bit}`).toEqual(oneShot);
        expect(r.error, `${name} byte ${i} bit ${bit}`).not.toBeNull();
        for (const [id, bytes] of r.devices) expect(same(bytes, want.get(id)!.subarray(0, bytes.length))).toBe(true);
        b[i] ^= 1 << bit;
      }
    }
  });
});
