// The seam between the stream format and parallel chunk coding: what an
// encoder or a decoder asks of a pool of threads (a WorkerPool from
// "vfio-migstream/pool", or your own). Each contract is stated here, once.
//
// Who does what: the format does everything that depends on stream order —
// framing, sequence numbers, MACs, the ZERO and dedup steps of the coding
// rule, dedup windows, digests — on the calling thread. The pool does the
// per-chunk work that does not: the rest of the coding rule (codec/coder.ts)
// with the chunk's hash, or decoding and verifying a chunk against its hash.

import type { AutoContext } from "../codec/auto/decide.js";
import type { CodedChunk } from "../codec/coder.js";
import type { Coding } from "../codec/coding.js";

/**
 * Codes chunks off the encoder's thread, for one encoder.
 *
 * - `encode` codes one chunk exactly as codec/coder.ts encodeChunk does with
 *   no dedup index (so the stream's bytes do not depend on where chunks were
 *   coded) and resolves with it. `raw` is a view of the encoder's caller's
 *   bytes, valid only until encode returns: copy it before. `auto` is auto's
 *   context for this chunk (the sink rate the encoder sees, the pool's
 *   threads); a coder may use the one of an earlier chunk it codes with it.
 * - Promises may settle in any order; the encoder frames chunks in stream
 *   order. A rejection (a MigstreamError) fails the encoder.
 * - `release` is called once the encoder has framed (copied) a chunk: the
 *   coder may reuse its payload's memory from then on.
 * - Zero copy, optional (both or neither): `lend(n)` gives a buffer of n
 *   bytes for the caller to fill (a device's data read straight into it);
 *   `encodeOwned` then takes that buffer over whole (no copy) and codes the
 *   chunks at `chunks` (offset, length) in it: one promise per chunk, in
 *   order. It returns null, having taken nothing, when it cannot (a buffer it
 *   did not lend, too large): the encoder then codes the chunks one by one.
 *   It may instead copy a small buffer's chunks and lend the buffer again
 *   (the caller must not touch it either way).
 * - Gathering, optional: a coder may hold chunks from `encodeOwned` past the
 *   current task to code them with later ones (one batch for several small
 *   transactions); their promises then settle only once it sends them.
 *   `flush` sends whatever it holds: the encoder calls it before it waits on
 *   a chunk (a full pipeline, a phase, a device's end, writeOut, finish). A
 *   coder that holds must also send on its own within a bounded time.
 */
export interface ChunkCoder {
  encode(raw: Uint8Array, coding: Coding, auto?: AutoContext): Promise<CodedChunk>;
  release?(chunk: CodedChunk): void;
  lend?(n: number): Uint8Array;
  encodeOwned?(
    buffer: Uint8Array,
    chunks: readonly { offset: number; length: number }[],
    coding: Coding,
    auto?: AutoContext,
  ): Promise<CodedChunk>[] | null;
  flush?(): void;
}

/** One chunk to decode and verify. */
export interface ChunkDecodeRequest {
  /** Wire codec id: RAW, LZ4 or ZSTD (ZERO and DEDUP_REF are resolved by the decoder itself). */
  codec: number;
  payload: Uint8Array;
  rawLength: number;
  /** Expected XXH3-64 of the raw bytes. */
  hash: bigint;
  /** The payload starts a buffer of its own with room for rawLength bytes: the raw bytes may be returned in it. */
  whole?: boolean;
}

/**
 * Decodes and verifies chunks off the decoder's thread, for one decoder.
 *
 * - `decode` resolves with exactly `rawLength` bytes whose XXH3-64 is `hash`,
 *   or rejects: CHECKSUM (field "xxh3") when the bytes do not match, CODEC or
 *   LIMIT for a payload that does not decode to rawLength bytes, INTERNAL or
 *   TIMEOUT when the thread doing it died. It never hands back bytes it did
 *   not verify.
 * - With `copiesInput` decode is done with `payload` when it returns (it may
 *   be a view of the stream's bytes); without it, the decoder passes a copy
 *   the ChunkDecoder may keep (`whole`).
 * - Promises may settle in any order; the decoder releases events in stream
 *   order. `release` is called once the decoder (and its consumer, in reuse
 *   mode) is done with bytes `decode` returned: their memory may be reused.
 */
export interface ChunkDecoder {
  decode(request: ChunkDecodeRequest): Promise<Uint8Array>;
  /**
   * Optional: decodes and verifies the chunk on the calling thread, before it
   * returns, when the decoder judges that cheaper than sending it (a chunk
   * cheap to decode, or every thread it could go to already busy): returns
   * what `decode` would resolve with, or null (nothing done) to have the
   * chunk go through `decode`. Throws what `decode` would reject with. The
   * payload may be a view of the stream's bytes: it is not kept.
   */
  decodeNow?(request: ChunkDecodeRequest): Uint8Array | null;
  /**
   * Optional: true when every chunk coded with `codec` would be decoded on
   * the calling thread anyway (decodeNow never declines it), whatever the
   * load. The decoder then decodes such chunks itself, as it does without a
   * pool, until the first chunk this says false for; only from there on do
   * chunks go through decodeNow and decode. Absent: false for every codec.
   */
  decodesHere?(codec: number): boolean;
  readonly copiesInput?: boolean;
  release?(data: Uint8Array): void;
}

/**
 * Threads to code on: the `pool` option of StreamEncoder and StreamDecoder
 * (and of everything built on them). A WorkerPool is one. `threads` is how
 * many threads code at once (auto weighs coding cost by it); `coder()` and
 * `decoder()` are called once per encoder or decoder and are used by it
 * alone. The pool outlives them: whoever made it closes it.
 */
export interface CodingPool {
  readonly threads: number;
  coder(): ChunkCoder;
  decoder(): ChunkDecoder;
}
