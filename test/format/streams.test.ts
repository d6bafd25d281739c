// Web Streams (MigrationEncoderStream / MigrationDecoderStream), the
// decoder over an async source (StreamDecoder.events), and the encoder's rules for its callers (USAGE and
// LIMIT errors for misuse, failures that stick, output written in order).
import { beforeAll, describe, expect, it } from "vitest";
import { init } from "../../src/codec/index.js";
import {
  decodeStream,
  decodeStreamAsync,
  encodeStream,
  MigrationDecoderStream,
  MigrationEncoderStream,
  StreamDecoder,
  StreamEncoder,
} from "../../src/format/index.js";
import { errorOf, errorOfAsync, image, KEY, prng, SID, same, splitFrames, splitRandom } from "./helpers.js";

beforeAll(async () => {
  await init();
});

const DATA = image(700_000, 41);

async function collect(r: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of r as unknown as AsyncIterable<Uint8Array>) parts.push(p.slice());
  return new Uint8Array(Buffer.concat(parts)); // not a Buffer: Buffer#slice would share memory
}

function source(pieces: Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(c) {
      if (i < pieces.length) c.enqueue(pieces[i++]);
      else c.close();
    },
  });
}

describe("Web Streams", () => {
  it("raw bytes → stream → raw bytes, any input split, keyed or not", async () => {
    for (const [seed, opts] of [
      [1, { transactionSize: 65536 }],
      [2, { transactionSize: 100_000, codec: "zstd" as const, key: KEY }],
      [3, { transactionSize: 1, codec: "raw" as const }],
      [4, { dedup: true }],
    ] as const) {
      const data = seed === 3 ? DATA.subarray(0, 3000) : DATA;
      const rnd = prng(seed);
      const stream = await collect(
        source(splitRandom(data, rnd, 90_000)).pipeThrough(
          new MigrationEncoderStream({ ...opts, streamId: SID, name: "file" }),
        ),
      );
      // Transactions have exactly transactionSize bytes, the last one the rest.
      const d = opts.key ? null : decodeStream(stream);
      if (d) {
        const sizes = d.devices[0].items.flatMap((i) => (i.kind === "transaction" ? [i.data.length] : []));
        const t = opts.transactionSize ?? 1 << 20;
        expect(sizes.slice(0, -1).every((n) => n === t)).toBe(true);
        expect(sizes.reduce((a, b) => a + b, 0)).toBe(data.length);
        expect(d.devices[0].name).toBe("file");
      }
      const back = await collect(
        source(splitRandom(stream, rnd, 5000)).pipeThrough(
          new MigrationDecoderStream(opts.key ? { key: opts.key } : {}),
        ),
      );
      expect(same(back, data)).toBe(true);
    }
  });

  it("empty input gives a valid stream of no transactions", async () => {
    const s = await collect(source([]).pipeThrough(new MigrationEncoderStream()));
    const d = decodeStream(s);
    expect(d.devices[0].items).toEqual([{ kind: "phase", phase: "stopcopy", iteration: 0 }]);
    expect((await collect(source([s]).pipeThrough(new MigrationDecoderStream()))).length).toBe(0);
  });

  it("the decoder stream errors with the typed error on damage and on truncation", async () => {
    const s = await collect(source([DATA.subarray(0, 50_000)]).pipeThrough(new MigrationEncoderStream()));
    const bad = s.slice();
    bad[s.length >> 1] ^= 4;
    const e = await errorOfAsync(() => collect(source([bad]).pipeThrough(new MigrationDecoderStream())));
    expect(e.code).toBe("CHECKSUM");
    const t = await errorOfAsync(() =>
      collect(source([s.subarray(0, s.length - 1)]).pipeThrough(new MigrationDecoderStream())),
    );
    expect(t.code).toBe("TRUNCATED");
  });

  it("picks one device of several, or asks which", async () => {
    const s = encodeStream([
      {
        id: 1,
        items: [
          { kind: "phase", phase: "stopcopy", iteration: 0 },
          { kind: "transaction", data: DATA.subarray(0, 1000) },
        ],
      },
      {
        id: 2,
        items: [
          { kind: "phase", phase: "stopcopy", iteration: 0 },
          { kind: "transaction", data: DATA.subarray(5000, 7000) },
        ],
      },
    ]);
    expect(
      same(
        await collect(source([s]).pipeThrough(new MigrationDecoderStream({ device: 2 }))),
        DATA.subarray(5000, 7000),
      ),
    ).toBe(true);
    expect((await errorOfAsync(() => collect(source([s]).pipeThrough(new MigrationDecoderStream())))).code).toBe(
      "USAGE",
    );
  });
});

describe("StreamDecoder.events", () => {
  it("yields checked events from an async source, ending with end", async () => {
    const s = encodeStream(
      [
        {
          id: 5,
          items: [
            { kind: "phase", phase: "setup", iteration: 0 },
            { kind: "transaction", data: DATA.subarray(0, 9000) },
          ],
        },
      ],
      { chunkSize: 4096 },
    );
    async function* pieces() {
      for (const p of splitRandom(s, prng(9), 700)) yield p;
    }
    const types: string[] = [];
    for await (const ev of new StreamDecoder().events(pieces())) types.push(ev.type);
    expect(types).toEqual([
      "header",
      "device",
      "phase",
      "transaction",
      "chunk",
      "chunk",
      "chunk",
      "transaction-end",
      "device-end",
      "end",
    ]);
    const bad = s.slice(0, -1);
    const e = await errorOfAsync(async () => {
      for await (const _ of new StreamDecoder().events([bad])) void _;
    });
    expect(e.code).toBe("TRUNCATED");
  });
});

describe("encoder rules", () => {
  const sink = () => {
    const parts: Uint8Array[] = [];
    return { parts, write: (b: Uint8Array) => void parts.push(b) };
  };

  it("misuse is USAGE and leaves the encoder usable", async () => {
    const { parts, write } = sink();
    const enc = new StreamEncoder(write, { streamId: SID, maxTransaction: 100, maxMetadata: 4, maxDevices: 2 });
    const a = enc.device(1, { name: "a" });
    expect(errorOf(() => enc.device(1)).code).toBe("USAGE");
    expect(errorOf(() => enc.device(70000)).code).toBe("USAGE");
    expect(errorOf(() => enc.device(2, { name: "x".repeat(256) })).code).toBe("USAGE");
    expect(errorOf(() => enc.device(2, { metadata: new Uint8Array(5) })).code).toBe("LIMIT");
    expect((await errorOfAsync(() => a.transaction(new Uint8Array(1)))).code).toBe("USAGE"); // before any phase
    await a.phase("precopy", 2);
    expect((await errorOfAsync(() => a.phase("precopy", 2))).code).toBe("USAGE");
    expect((await errorOfAsync(() => a.phase("setup", 0))).code).toBe("USAGE");
    expect((await errorOfAsync(() => a.phase("bogus" as "setup", 0))).code).toBe("USAGE");
    expect((await errorOfAsync(() => a.transaction(new Uint8Array(101)))).code).toBe("LIMIT");
    expect((await errorOfAsync(() => a.transaction("abc" as unknown as Uint8Array))).code).toBe("USAGE");
    await a.transaction(new Uint8Array(100).fill(1));
    const b = enc.device(2);
    expect(errorOf(() => enc.device(3)).code).toBe("LIMIT");
    await expect(enc.finish()).rejects.toMatchObject({ code: "USAGE" }); // devices still open
    await a.phase("end", 0);
    expect((await errorOfAsync(() => a.transaction(new Uint8Array(1)))).code).toBe("USAGE");
    await a.end();
    expect((await errorOfAsync(() => a.end())).code).toBe("USAGE");
    await b.end();
    const t = await enc.finish();
    expect(t.devices).toBe(2);
    expect((await errorOfAsync(() => enc.finish())).code).toBe("USAGE");
    expect(errorOf(() => enc.device(9)).code).toBe("USAGE");
    const d = decodeStream(Buffer.concat(parts));
    expect(d.devices.map((x) => x.items.length)).toEqual([3, 0]);
  });

  it("bad options are USAGE (or LIMIT for a window decoders would refuse)", () => {
    const w = () => {};
    for (const o of [
      { codec: "gzip" },
      { codec: "raw", level: 1 },
      { codec: "zstd", level: 20 },
      { codec: "lz4", level: 0 },
      { chunkSize: 0 },
      { chunkSize: (8 << 20) + 1 },
      { chunkSize: 1.5 },
      { dedupWindow: -1 },
      { streamId: new Uint8Array(15) },
      { maxTransaction: 2 ** 30 + 1 },
      { maxDevices: 4097 },
      { key: new Uint8Array(15) },
    ]) {
      expect(errorOf(() => new StreamEncoder(w, o as never)).code, JSON.stringify(o)).toBe("USAGE");
    }
    expect(errorOf(() => new StreamEncoder(w, { dedup: true, dedupWindow: 2 ** 30, maxDevices: 5 })).code).toBe(
      "LIMIT",
    );
  });

  it("a failing write fails the call and every later one", async () => {
    let n = 0;
    const enc = new StreamEncoder(
      async () => {
        if (++n === 2) throw new Error("disk full");
      },
      { chunkSize: 4096 },
    );
    const a = enc.device(0);
    await a.phase("stopcopy", 0);
    // Frames wait in a partial block; end() writes them, and the write fails.
    await a.transaction(DATA.subarray(0, 100_000));
    await expect(a.end()).rejects.toThrow("disk full");
    await expect(a.transaction(DATA.subarray(0, 10))).rejects.toThrow("disk full");
    await expect(enc.finish()).rejects.toThrow("disk full");
    // A failure while blocks fill surfaces in transaction() itself.
    let m = 0;
    const enc2 = new StreamEncoder(
      async () => {
        if (++m === 2) throw new Error("pipe closed");
      },
      { codec: "raw", chunkSize: 4096 },
    );
    const b = enc2.device(0);
    await b.phase("stopcopy", 0);
    const noise = Uint8Array.from({ length: 3 << 20 }, (_, i) => (i * 2654435761) >>> 24);
    await expect(b.transaction(noise)).rejects.toThrow("pipe closed");
  });

  it("the header comes first, is random per stream unless fixed, and output blocks stay bounded", async () => {
    const blocks: number[] = [];
    const out: Uint8Array[] = [];
    const enc = new StreamEncoder(
      (b) => {
        blocks.push(b.length);
        out.push(b);
      },
      { codec: "raw" },
    );
    const a = enc.device(0);
    await a.phase("stopcopy", 0);
    for (let i = 0; i < 5; i++) await a.transaction(DATA.subarray(0, 600_000));
    await a.end();
    await enc.finish();
    expect(Buffer.from(out[0].subarray(0, 4)).toString("latin1")).toBe("\x89MIG");
    expect(Math.max(...blocks)).toBeLessThanOrEqual((1 << 20) + 262_144 + 64);
    const s = Buffer.concat(out);
    expect(splitFrames(s).frames.length).toBe(enc.stats.frames);
    expect(enc.stats.streamBytes).toBe(s.length);
    const other = encodeStream([{ id: 0, items: [] }]);
    const again = encodeStream([{ id: 0, items: [] }]);
    expect(same(other.subarray(16, 32), again.subarray(16, 32))).toBe(false);
  });

  it("reuseOutput: blocks come back for reuse once written, and the output is still right", async () => {
    const copies: Uint8Array[] = [];
    const seen = new Set<ArrayBufferLike>();
    const enc = new StreamEncoder(
      async (b) => {
        copies.push(b.slice());
        seen.add(b.buffer);
        await new Promise((r) => setTimeout(r, 0));
      },
      { reuseOutput: true, codec: "raw", chunkSize: 65536, key: KEY },
    );
    const a = enc.device(0);
    await a.phase("stopcopy", 0);
    const noise = Uint8Array.from({ length: 5 << 20 }, (_, i) => (i * 2654435761) >>> 24);
    await a.transaction(noise);
    await a.transaction(noise.subarray(7));
    await a.end();
    await enc.finish();
    // Five-plus MiB of output went through only a few distinct blocks.
    expect(copies.length).toBeGreaterThan(8);
    expect(seen.size).toBeLessThanOrEqual(3);
    const d = await decodeStreamAsync(Buffer.concat(copies), { key: KEY });
    const t = d.devices[0].items.filter((i) => i.kind === "transaction");
    expect(t.length === 2 && same(t[0].data, noise) && same(t[1].data, noise.subarray(7))).toBe(true);
  });

  it("decoder reuseOutput: chunk data is one reused buffer (RAW chunks: the input itself), correct when copied in time", () => {
    const x = image(300_000, 6);
    const s = encodeStream(
      [
        {
          id: 0,
          items: [
            { kind: "phase", phase: "stopcopy", iteration: 0 },
            { kind: "transaction", data: x },
            { kind: "transaction", data: x },
          ],
        },
      ],
      {
        dedup: true,
        chunkSize: 16384,
      },
    );
    const dec = new StreamDecoder({ reuseOutput: true });
    const got: Uint8Array[] = [];
    const buffers = new Set<ArrayBufferLike>();
    for (const ev of dec.write(s)) {
      if (ev.type === "chunk" && ev.data) {
        got.push(ev.data.slice());
        buffers.add(ev.data.buffer);
      }
    }
    dec.finish();
    // One reused buffer for decoded chunks, and the input for RAW chunks (views of their payloads): no array per chunk.
    expect(buffers.size).toBeLessThanOrEqual(2);
    expect([...buffers].every((b) => b === s.buffer || b.byteLength <= 256 << 10)).toBe(true);
    expect(same(Buffer.concat(got), Buffer.concat([x, x]))).toBe(true);
  });

  it("stats count codecs, zero and dedup bytes", async () => {
    const { write } = sink();
    const enc = new StreamEncoder(write, { dedup: true, chunkSize: 4096, maxDevices: 1 });
    const a = enc.device(0);
    await a.phase("stopcopy", 0);
    const page = DATA.subarray(0, 50_000);
    await a.transaction(new Uint8Array(8192));
    await a.transaction(page);
    await a.transaction(page);
    const t = await a.end();
    await enc.finish();
    const s = enc.stats;
    expect(s.rawBytes).toBe(8192 + 100_000);
    expect(s.zeroBytes).toBeGreaterThanOrEqual(8192);
    // The second copy of `page` goes as references, except its zero runs (ZERO chunks, as in the first copy).
    expect(s.dedupBytes).toBeGreaterThan(0);
    expect(s.dedupBytes + (s.zeroBytes - 8192) / 2).toBeGreaterThan(0.8 * page.length);
    expect(t.rawBytes).toBe(s.rawBytes);
    expect(Object.values(s.chunksByCodec).reduce((a2, b2) => a2 + b2, 0)).toBe(t.chunks);
  });
});

describe("decoder events carry data the caller may keep", () => {
  it("chunk data of a dedup reference is a copy, not the window's", () => {
    const x = image(20_000, 2);
    const s = encodeStream(
      [
        {
          id: 0,
          items: [
            { kind: "phase", phase: "stopcopy", iteration: 0 },
            { kind: "transaction", data: x },
            { kind: "transaction", data: x },
          ],
        },
      ],
      {
        dedup: true,
        chunkSize: 4096,
      },
    );
    const dec = new StreamDecoder();
    const got: Uint8Array[] = [];
    for (const ev of dec.write(s)) {
      if (ev.type === "chunk" && ev.data) {
        got.push(ev.data.slice());
        ev.data.fill(0x5a); // scribbling on handed-out data must not change later chunks
      }
    }
    dec.finish();
    expect(same(Buffer.concat(got), Buffer.concat([x, x]))).toBe(true);
  });

  it("Node Buffers in and out never alias (Buffer#slice shares memory)", async () => {
    const meta = Buffer.from("metadata bytes");
    const x = Buffer.from(image(30_000, 8));
    const s = Buffer.from(
      encodeStream([
        {
          id: 0,
          metadata: meta,
          items: [
            { kind: "phase", phase: "stopcopy", iteration: 0 },
            { kind: "transaction", data: x },
          ],
        },
      ]),
    );
    const d = decodeStream(s);
    s.fill(0);
    expect(Buffer.from(d.devices[0].metadata).toString()).toBe("metadata bytes");
    const t = d.devices[0].items[1];
    expect(t.kind === "transaction" && same(t.data, x)).toBe(true);
    // The encoder's dedup index keeps copies even when handed a Buffer the caller then reuses.
    const parts: Uint8Array[] = [];
    const enc = new StreamEncoder((b) => void parts.push(b), { dedup: true, chunkSize: 4096, maxDevices: 1 });
    const a = enc.device(0);
    await a.phase("stopcopy", 0);
    const buf = Buffer.from(image(20_000, 3));
    const first = Uint8Array.from(buf);
    await a.transaction(buf);
    buf.set(image(20_000, 4));
    const second = Uint8Array.from(buf);
    await a.transaction(buf);
    await a.end();
    await enc.finish();
    const back = decodeStream(Buffer.concat(parts)).devices[0].items.flatMap((i) =>
      i.kind === "transaction" ? [i.data] : [],
    );
    expect(same(back[0], first) && same(back[1], second)).toBe(true);
  });
});
