// Keyed streams are verified a MAC batch at a time (MAC_BATCH_FRAMES frames):
// no event of a batch may come out before every tag in it verified. Both
// asynchronous decoders (StreamDecoder, with and without a pool) share that path; each
// is checked here with a wrong tag in the 2nd batch, a wrong tag ahead of a
// bad payload in the same batch (the MAC error wins), and a bad payload (the
// verified frames before it still come out).
import { beforeAll, describe, expect, it } from "vitest";
import { decodeChunk, init } from "../../src/codec/index.js";
import { isMigstreamError, MigstreamError } from "../../src/errors.js";
import { FRAME_CHUNK } from "../../src/format/constants.js";
import { type ChunkDecoder, type DecodeEvent, encodeStreamAsync, StreamDecoder } from "../../src/format/index.js";
import { MAC_BATCH_FRAMES } from "../../src/format/mac-batch.js";
import { xxh3_64 } from "../../src/kernels/xxh3.js";
import { image, KEY, prng, SID, splitFrames, splitRandom } from "./helpers.js";

/** Decodes chunks on this thread, checking raw hashes like a WorkerPool does. */
const local: ChunkDecoder = {
  copiesInput: true,
  async decode(r) {
    const out = decodeChunk(r.codec, r.payload, r.rawLength).slice();
    if (xxh3_64(out) !== r.hash) throw new MigstreamError("CHECKSUM", "raw hash mismatch", { field: "xxh3" });
    return out;
  },
};

type Decode = (pieces: Uint8Array[], events: DecodeEvent[]) => Promise<void>;

const DECODERS: [string, Decode][] = [
  [
    "StreamDecoder",
    async (pieces, events) => {
      const dec = new StreamDecoder({ key: KEY });
      for (const p of pieces) for await (const ev of dec.writeAsync(p)) events.push(ev);
      dec.finish();
    },
  ],
  [
    "StreamDecoder with a pool",
    async (pieces, events) => {
      const pool = {
        threads: 1,
        decoder: () => local,
        coder: () => ({ encode: () => Promise.reject(new Error("not a coder")) }),
      };
      const dec = new StreamDecoder({ key: KEY, pool, inFlight: 4 });
      for await (const ev of dec.events(pieces)) events.push(ev);
    },
  ],
];

let stream: Uint8Array;
let frames: ReturnType<typeof splitFrames>["frames"];
beforeAll(async () => {
  await init();
  const data = image(400_000, 5);
  stream = await encodeStreamAsync(
    [
      {
        id: 1,
        name: "d",
        items: [
          { kind: "phase", phase: "stopcopy", iteration: 0 },
          { kind: "transaction", data },
        ],
      },
    ],
    { key: KEY, streamId: SID, codec: "lz4", chunkSize: 4096 },
  );
  frames = splitFrames(stream).frames;
});

/** Runs `decode`; returns the events it released and the MigstreamError it ended with. */
async function run(decode: Decode, pieces: Uint8Array[]) {
  const events: DecodeEvent[] = [];
  let error: MigstreamError | null = null;
  try {
    await decode(pieces, events);
  } catch (e) {
    if (!isMigstreamError(e)) throw e;
    error = e;
  }
  const seqs = events.filter((ev) => "frame" in ev).map((ev) => (ev as { frame: number }).frame);
  const chunks = events.filter((ev) => ev.type === "chunk").map((ev) => (ev as { frame: number }).frame);
  return { error, seqs, chunks };
}

/** Asserts `e` is the error a decoder must give for frame `seq` (code, frame, field, offset). */
function expectAt(e: MigstreamError | null, code: string, seq: number, field: string): void {
  expect({ code: e?.code, frame: e?.frame, field: e?.field, offset: e?.offset }).toEqual({
    code,
    frame: seq,
    field,
    offset: frames[seq].offset,
  });
}

/** Seqs of the chunk frames in [from, to). */
function chunkSeqs(from: number, to: number): number[] {
  return frames.filter((f) => f.type === FRAME_CHUNK && f.seq >= from && f.seq < to).map((f) => f.seq);
}

function withWrongTag(s: Uint8Array, seq: number): Uint8Array {
  const f = frames[seq];
  s[f.offset + f.size - 1] ^= 0x01; // the tag's last byte
  return s;
}

function withBadPayload(s: Uint8Array, seq: number): Uint8Array {
  s[frames[seq].offset + 16] ^= 0x01; // the payload's first byte
  return s;
}

const BATCH2 = MAC_BATCH_FRAMES; // seq of the 2nd batch's first frame (one whole stream written at once)
const BAD = BATCH2 + 8;

describe.each(DECODERS)("%s, keyed stream", (_, decode) => {
  it("the stream spans several MAC batches, and decodes whole", async () => {
    expect(frames.length).toBeGreaterThan(3 * MAC_BATCH_FRAMES);
    expect(frames[BAD].type).toBe(FRAME_CHUNK);
    const r = await run(decode, [stream]);
    expect(r.error).toBeNull();
    expect(r.chunks).toEqual(chunkSeqs(0, frames.length));
  });

  it("a wrong tag in the 2nd batch: the 1st batch comes out whole, nothing of the 2nd", async () => {
    const r = await run(decode, [withWrongTag(stream.slice(), BAD)]);
    expectAt(r.error, "MAC", BAD, "tag");
    expect(r.chunks).toEqual(chunkSeqs(0, BATCH2));
    expect(Math.max(...r.seqs)).toBeLessThan(BATCH2);
  });

  it("a wrong tag ahead of a bad payload in the same batch: MAC, nothing of the batch", async () => {
    const r = await run(decode, [withBadPayload(withWrongTag(stream.slice(), BAD), BAD + 4)]);
    expectAt(r.error, "MAC", BAD, "tag");
    expect(Math.max(...r.seqs)).toBeLessThan(BATCH2);
  });

  it("a bad payload: the verified frames before it come out, then CHECKSUM at it", async () => {
    const r = await run(decode, [withBadPayload(stream.slice(), BAD)]);
    expectAt(r.error, "CHECKSUM", BAD, "payload_check");
    expect(r.chunks).toEqual(chunkSeqs(0, BAD));
  });

  it("any split of the input: nothing from the bad frame on, the same MAC error", async () => {
    const s = withWrongTag(stream.slice(), BAD);
    for (let seed = 1; seed <= 6; seed++) {
      const rnd = prng(seed);
      const r = await run(decode, splitRandom(s, rnd, 1 + Math.floor(rnd() * 60_000)));
      expectAt(r.error, "MAC", BAD, "tag");
      expect(Math.max(...r.seqs)).toBeLessThan(BAD);
    }
  });
});
