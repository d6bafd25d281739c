// StreamDecoder with a pool: the same events and bytes as without one (every
// codec, dedup, keyed streams, assembly and reuse, any split of the input), in
// stream order whatever order the chunk jobs finish in, at most `inFlight`
// chunks ahead; corruption and truncation fail with the same error (code,
// frame, field) as without a pool; a dying worker fails it with a typed error.
import { describe, expect, it } from "vitest";
import {
  type CodingPool,
  type DecodeEvent,
  type DecoderOptions,
  type DeviceInput,
  type EncoderOptions,
  encodeStreamAsync,
  init,
  isMigstreamError,
  StreamDecoder,
} from "../../dist/index.js";
import { type ChunkDecoder, type PoolDecoderOptions, WorkerPool } from "../../dist/pool.js";
import { makeImage } from "../../src/device/pages.js";
import { rng, usePools, within } from "./dist.js";

const SID = Uint8Array.from({ length: 16 }, (_, i) => 0x70 + i);
const KEY = Uint8Array.from({ length: 32 }, (_, i) => 3 * i + 1);

const pools = usePools(WorkerPool, () => init());

/** A pool whose decoder is `decoder` (the seam StreamDecoder's `pool` option takes). */
const decodingOn = (decoder: ChunkDecoder): CodingPool => ({
  threads: 2,
  decoder: () => decoder,
  coder: () => {
    throw new Error("not a coder");
  },
});

/** `pool` with its decoder made with `options`. */
const tuned = (pool: WorkerPool, options: PoolDecoderOptions): CodingPool => decodingOn(pool.decoder(options));

/** Two devices; the second repeats some of the first's data (dedup references) and has zero pages. */
function input(): DeviceInput[] {
  const img = makeImage(1 << 20, 9);
  const zeros = new Uint8Array(200_000);
  return [
    {
      id: 3,
      name: "a",
      items: [
        { kind: "phase", phase: "precopy", iteration: 0 },
        { kind: "transaction", data: img.subarray(0, 400_000) },
        { kind: "phase", phase: "stopcopy", iteration: 0 },
        { kind: "transaction", data: img.subarray(400_000) },
        { kind: "transaction", data: new Uint8Array(0) },
      ],
    },
    {
      id: 7,
      metadata: new Uint8Array([9, 9]),
      items: [
        { kind: "phase", phase: "stopcopy", iteration: 0 },
        { kind: "transaction", data: img.subarray(0, 300_000) },
        { kind: "transaction", data: zeros },
        { kind: "transaction", data: img.subarray(100_000, 350_001) },
      ],
    },
  ];
}

const STREAMS: [string, EncoderOptions][] = [
  ["lz4", { codec: "lz4", chunkSize: 32_768 }],
  ["zstd", { codec: "zstd", level: 3, chunkSize: 65_536 }],
  ["raw", { codec: "raw", chunkSize: 50_000 }],
  ["lz4 + dedup", { codec: "lz4", dedup: true, chunkSize: 16_384 }],
  ["zstd + dedup, keyed", { codec: "zstd", level: 1, dedup: true, chunkSize: 16_384, key: KEY }],
];
const streams = new Map<string, Uint8Array>();
async function stream(name: string): Promise<Uint8Array> {
  if (!streams.has(name))
    streams.set(name, await encodeStreamAsync(input(), { ...STREAMS.find((s) => s[0] === name)![1], streamId: SID }));
  return streams.get(name)!;
}

/** The input in pieces of random sizes (some 1 byte, some spanning many frames). */
function* pieces(s: Uint8Array, seed: number): Generator<Uint8Array> {
  const r = rng(seed);
  for (let at = 0; at < s.length; ) {
    const n = r() < 0.2 ? 1 + Math.floor(r() * 40) : Math.floor(r() * 200_000) + 1;
    yield s.slice(at, at + n);
    at += n;
  }
}

/** An event with its data copied (reuse mode hands out views that later events overwrite). */
function snapshot(ev: DecodeEvent): unknown {
  const out: Record<string, unknown> = { ...ev };
  if ("data" in ev && ev.data) out.data = Buffer.from(ev.data).toString("base64");
  if (ev.type === "device") out.metadata = Array.from(ev.metadata);
  return out;
}

async function inline(s: Uint8Array, o: DecoderOptions, seed = 1): Promise<unknown[]> {
  const dec = new StreamDecoder(o);
  const out: unknown[] = [];
  for (const p of pieces(s, seed)) for await (const ev of dec.writeAsync(p)) out.push(snapshot(ev));
  dec.finish();
  return out;
}

async function parallel(s: Uint8Array, o: DecoderOptions, pool: CodingPool, seed = 1): Promise<unknown[]> {
  const dec = new StreamDecoder({ ...o, pool });
  const out: unknown[] = [];
  for await (const ev of dec.events(pieces(s, seed))) out.push(snapshot(ev));
  expect(dec.done).toBe(true);
  return out;
}

/** Runs a decode; returns the events before the error and the error (or null). */
async function outcome(
  run: (take: (ev: DecodeEvent) => void) => Promise<void>,
): Promise<{ events: number; error: { code: string; frame?: number; field?: string; offset?: number } | null }> {
  let events = 0;
  try {
    await within(
      run(() => void events++),
      20_000,
      "decode",
    );
    return { events, error: null };
  } catch (e) {
    if (!isMigstreamError(e)) throw e;
    return { events, error: { code: e.code, frame: e.frame, field: e.field, offset: e.offset } };
  }
}

/** `s` damaged for trial `trial`: one bit flipped, or every 5th trial cut short. */
function damaged(s: Uint8Array, r: () => number, trial: number): Uint8Array {
  const bad = s.slice();
  let cut = s.length;
  if (trial % 5 === 4) cut = 1 + Math.floor(r() * (s.length - 1));
  else bad[64 + Math.floor(r() * (s.length - 64))] ^= 1 << Math.floor(r() * 8);
  return bad.subarray(0, cut);
}

/** The outcome of an assembling decode without a pool, in pieces. */
const plainOutcome = (input: Uint8Array, key: Uint8Array | undefined, seed: number) =>
  outcome(async (take) => {
    const dec = new StreamDecoder({ key, assemble: true });
    for (const p of pieces(input, seed)) for await (const ev of dec.writeAsync(p)) take(ev);
    dec.finish();
  });

describe("StreamDecoder with a pool", () => {
  for (const [name] of STREAMS) {
    it(`${name}: the same events and bytes as without a pool (plain, assembled, reused)`, async () => {
      const s = await stream(name);
      const key = name.includes("keyed") ? KEY : undefined;
      for (const o of [
        {},
        { assemble: true },
        { reuseOutput: true },
        { assemble: true, reuseOutput: true },
      ] as DecoderOptions[]) {
        const want = await inline(s, { ...o, key });
        expect(want.length).toBeGreaterThan(10);
        expect(await parallel(s, { ...o, key }, pools.workers, 2)).toEqual(want);
        expect(await parallel(s, { ...o, key, inFlight: 3 }, pools.caller, 3)).toEqual(want);
        // LZ4 and RAW chunks decode on this thread by default; on the workers when told.
        expect(await parallel(s, { ...o, key }, tuned(pools.workers, { cheapInline: false }), 5)).toEqual(want);
      }
      // A plain WorkerPool's decode jobs work as the decoder too (one job per chunk, payloads moved).
      expect(await parallel(s, { key }, decodingOn(pools.workers), 4)).toEqual(await inline(s, { key }));
    });
  }

  it("releases in stream order when jobs finish in random order, never more than inFlight ahead", async () => {
    const r = rng(5);
    let outstanding = 0;
    let most = 0;
    const shuffled: ChunkDecoder = {
      decode: async (req) => {
        outstanding++;
        most = Math.max(most, outstanding);
        try {
          await new Promise((w) => setTimeout(w, Math.floor(r() * 6)));
          return await pools.workers.decode({ ...req, copy: true });
        } finally {
          outstanding--;
        }
      },
    };
    for (const name of ["lz4 + dedup", "zstd"]) {
      const s = await stream(name);
      expect(await parallel(s, { assemble: true, inFlight: 5 }, decodingOn(shuffled), 6)).toEqual(
        await inline(s, { assemble: true }),
      );
    }
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(5);
  });

  it("corruption and truncation fail with the error of a decoder without a pool, after the same events", async () => {
    const r = rng(11);
    for (const name of ["lz4 + dedup", "zstd", "zstd + dedup, keyed"]) {
      const s = await stream(name);
      const key = name.includes("keyed") ? KEY : undefined;
      for (let trial = 0; trial < 25; trial++) {
        const input = damaged(s, r, trial);
        const a = await plainOutcome(input, key, trial);
        const b = await outcome(async (take) => {
          // LZ4 chunks on this thread (the default) and on the workers, in turn.
          const dec = new StreamDecoder({
            key,
            assemble: true,
            pool: tuned(pools.workers, { cheapInline: trial % 2 === 0 }),
          });
          for await (const ev of dec.events(pieces(input, trial + 100))) take(ev);
        });
        expect(a.error, `${name} trial ${trial}`).not.toBeNull();
        expect(b.error, `${name} trial ${trial}`).toEqual(a.error);
        expect(b.events, `${name} trial ${trial}`).toBe(a.events);
      }
    }
  });

  it("RAW chunks passed through as views (reuse): bit flips fail as without a pool, after the same bytes", async () => {
    const s = await stream("raw");
    const r = rng(21);
    for (let trial = 0; trial < 40; trial++) {
      const bad = s.slice();
      bad[64 + Math.floor(r() * (s.length - 64))] ^= 1 << Math.floor(r() * 8);
      const seen: unknown[][] = [[], []];
      const a = await outcome(async (take) => {
        const dec = new StreamDecoder({ reuseOutput: true });
        for (const p of pieces(bad, trial))
          for await (const ev of dec.writeAsync(p)) {
            take(ev);
            seen[0].push(snapshot(ev));
          }
        dec.finish();
      });
      const b = await outcome(async (take) => {
        const dec = new StreamDecoder({ reuseOutput: true, pool: pools.caller });
        for await (const ev of dec.events(pieces(bad, trial + 50))) {
          take(ev);
          seen[1].push(snapshot(ev));
        }
      });
      expect(a.error, `trial ${trial}`).not.toBeNull();
      expect(b.error, `trial ${trial}`).toEqual(a.error);
      expect(seen[1], `trial ${trial}`).toEqual(seen[0]);
    }
  });

  it("the calling thread decodes chunks itself when no worker has room (hasWorkerRoom), with the same events", async () => {
    const pool = new WorkerPool({ threads: 2, callerRuns: true, faultInjection: true });
    try {
      expect(pool.hasWorkerRoom()).toBe(true); // a worker is still to be started
      await pool.start();
      expect(pool.hasWorkerRoom()).toBe(true);
      // Fill the worker's queue with slow jobs: no room for chunks until they end.
      const busy = Array.from({ length: 3 }, () =>
        pool.submit({ op: "__echo", data: new Uint8Array(8), __test: { delayMs: 1500 } }),
      );
      expect(pool.hasWorkerRoom()).toBe(false);
      const posted = pool.posted;
      const s = await stream("zstd");
      expect(await parallel(s, { reuseOutput: true }, pool, 7)).toEqual(await inline(s, { reuseOutput: true }));
      expect(pool.posted).toBe(posted); // every chunk was decoded here
      await Promise.all(busy);
      expect(pool.hasWorkerRoom()).toBe(true);
      // With room, zstd chunks go to the worker again.
      expect(await parallel(s, {}, pool, 8)).toEqual(await inline(s, {}));
      expect(pool.posted).toBeGreaterThan(posted);
    } finally {
      await pool.close();
    }
    expect(pool.hasWorkerRoom()).toBe(false);
    expect(new WorkerPool({ threads: 1 }).hasWorkerRoom()).toBe(false);
  });

  it("a chunk whose bytes do not match its hash fails with CHECKSUM at its frame", async () => {
    const s = await stream("lz4");
    // The decoder (the pool) verifies each chunk's hash: a wrong expected hash stands in for corrupt bytes.
    let n = 0;
    const wrong: ChunkDecoder = {
      decode: (req) => pools.workers.decode({ ...req, copy: true, hash: ++n === 9 ? req.hash ^ 1n : req.hash }),
    };
    const b = await outcome(async (take) => {
      for await (const ev of new StreamDecoder({ pool: decodingOn(wrong) }).events([s])) take(ev);
    });
    expect(b.error).toMatchObject({ code: "CHECKSUM", field: "raw_hash" });
    expect(b.error!.frame).toBeGreaterThan(0);
  });

  for (const crash of ["exit", "uncaught", "throw"] as const) {
    it(`a worker that dies (${crash}) while decoding fails the decode with INTERNAL, no hang`, async () => {
      const s = await stream("zstd");
      let n = 0;
      const dying: ChunkDecoder = {
        decode: (req) =>
          pools.faulty.decode({ ...req, copy: true, __test: ++n === 6 ? { crashAfter: 0, crash } : undefined }),
      };
      const b = await outcome(async (take) => {
        for await (const ev of new StreamDecoder({ pool: decodingOn(dying) }).events([s])) take(ev);
      });
      expect(b.error?.code).toBe("INTERNAL");
    });
  }

  it("decodes LZ4 and RAW streams solo: the pool's decoder is asked about no chunk (decodesHere), same events", async () => {
    for (const name of ["lz4", "raw", "lz4 + dedup"]) {
      const s = await stream(name);
      const base = pools.workers.decoder();
      const asked = { decode: 0, decodeNow: 0 };
      const counting: ChunkDecoder = {
        ...base,
        decode: (req) => (asked.decode++, base.decode(req)),
        decodeNow: (req) => (asked.decodeNow++, base.decodeNow!(req)),
      };
      for (const o of [{}, { assemble: true }, { reuseOutput: true }] as DecoderOptions[]) {
        expect(await parallel(s, o, decodingOn(counting), 9)).toEqual(await inline(s, o));
      }
      expect(asked, name).toEqual({ decode: 0, decodeNow: 0 });
    }
  });

  /**
   * A pool decoder that decodes the first `solo` chunk frames it is asked
   * about here (decodesHere), then hands over: every later chunk goes to the
   * workers. Hands over mid-transaction, between dedup references and the
   * chunks they name, wherever `solo` puts it.
   */
  const handingOver = (solo: number): CodingPool => {
    const base = pools.workers.decoder({ cheapInline: false });
    let asked = 0;
    return decodingOn({ ...base, decodesHere: () => asked++ < solo });
  };

  it("hands over to the pool at any frame: the same events and bytes as without a pool", async () => {
    for (const name of ["lz4 + dedup", "zstd + dedup, keyed"]) {
      const s = await stream(name);
      const key = name.includes("keyed") ? KEY : undefined;
      const opts: DecoderOptions[] = [
        {},
        { assemble: true },
        { reuseOutput: true },
        { assemble: true, reuseOutput: true },
      ];
      const want = await Promise.all(opts.map((o) => inline(s, { ...o, key })));
      const chunks = (want[0] as { type: string }[]).filter((e) => e.type === "chunk").length;
      for (let solo = 0; solo <= chunks; solo += Math.ceil(chunks / 10)) {
        const i = solo % opts.length;
        expect(await parallel(s, { ...opts[i], key }, handingOver(solo), solo), `${name} solo ${solo}`).toEqual(
          want[i],
        );
      }
    }
  });

  it("hands over at any frame under bit flips and truncation: the error of a plain decode, after the same events", async () => {
    const r = rng(31);
    const s = await stream("lz4 + dedup");
    for (let trial = 0; trial < 40; trial++) {
      const input = damaged(s, r, trial);
      const a = await plainOutcome(input, undefined, trial);
      const b = await outcome(async (take) => {
        const dec = new StreamDecoder({ assemble: true, pool: handingOver(Math.floor(r() * 60)) });
        for await (const ev of dec.events(pieces(input, trial + 200))) take(ev);
      });
      expect(a.error, `trial ${trial}`).not.toBeNull();
      expect(b.error, `trial ${trial}`).toEqual(a.error);
      expect(b.events, `trial ${trial}`).toBe(a.events);
    }
  });

  it("rejects bad options with USAGE, the synchronous methods too, and refuses use after a failure", async () => {
    expect(() => new StreamDecoder({ pool: {} as never })).toThrow(
      expect.objectContaining({ code: "USAGE", field: "pool" }),
    );
    expect(() => new StreamDecoder({ pool: pools.workers, inFlight: 0 })).toThrow(
      expect.objectContaining({ code: "USAGE", field: "inFlight" }),
    );
    expect(() => new StreamDecoder({ pool: pools.workers, verifyOnly: true })).toThrow(
      expect.objectContaining({ code: "USAGE", field: "pool" }),
    );
    const sync = new StreamDecoder({ pool: pools.workers });
    expect(() => [...sync.write(new Uint8Array(10))]).toThrow(expect.objectContaining({ code: "USAGE" }));
    expect(() => sync.finish()).toThrow(expect.objectContaining({ code: "USAGE" }));
    const dec = new StreamDecoder({ pool: pools.workers });
    const junk = new Uint8Array(100).fill(7);
    await expect(
      (async () => {
        for await (const _ of dec.writeAsync(junk));
      })(),
    ).rejects.toMatchObject({ code: "BAD_MAGIC" });
    await expect(
      (async () => {
        for await (const _ of dec.writeAsync(junk));
      })(),
    ).rejects.toMatchObject({ code: "USAGE" });
  });
});
