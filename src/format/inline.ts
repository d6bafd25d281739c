// The encoder's fast path for LZ4, RAW and ZERO chunks coded on this thread:
// each chunk is copied once into kernel memory, straight into the payload
// slot of a CHUNK frame, and hashed, zero-tested and LZ4-compressed there in
// place (LZ4 output goes into a second frame buffer); the chosen frame is
// sealed in place and copied out once. Same decisions, same bytes as
// codec/select.ts encodeChunk: ZERO for an all-zero chunk, LZ4 when it saves
// at least maxCodedSize's margin, else RAW.
// zstd and auto go through encodeChunk (zstd codes in its own heap anyway).

import { CODEC_DEDUP_REF, CODEC_LZ4, CODEC_RAW, CODEC_ZERO } from "../codec/ids.js";
import { DEDUP_REF_SIZE, type DedupIndex } from "../codec/dedup.js";
import { maxCodedSize } from "../codec/select.js";
import { MigstreamError } from "../errors.js";
import { lz4CompressInto } from "../kernels/lz4.js";
import { allocBuffer, kernelMemory, type KernelBuffer } from "../kernels/wasm.js";
import { xxh3_64 } from "../kernels/xxh3.js";
import { isZero } from "../kernels/zero.js";
import { CHUNK_PAYLOAD_OFFSET, type FrameBuilder } from "./builder.js";
import type { ByteSource } from "./chunking.js";
import { FRAME_CHECK_SIZE } from "./constants.js";
import type { ChunkFacts } from "./encoder-dedup.js";

const P = CHUNK_PAYLOAD_OFFSET;

export class InlineChunks {
  private readonly lz4: boolean;
  private readonly acceleration: number;
  private readonly chunkSize: number;
  /** Frame whose payload slot holds the raw chunk (RAW and ZERO frames are sealed here). */
  private raw: KernelBuffer | null = null;
  /** Frame whose payload slot receives the LZ4 block (or a dedup reference). */
  private coded: KernelBuffer | null = null;
  private zeroHash = { length: -1, hash: 0n };

  /** `lz4` false: only ZERO or RAW (the "raw" and "zero" codecs). */
  constructor(chunkSize: number, lz4: boolean, acceleration: number) {
    this.chunkSize = chunkSize;
    this.lz4 = lz4;
    this.acceleration = acceleration;
  }

  private buffers(): void {
    if (this.raw !== null) return;
    const size = P + this.chunkSize + FRAME_CHECK_SIZE;
    this.raw = allocBuffer(size);
    this.coded = allocBuffer(size);
  }

  /**
   * Codes src[start, end) (≤ chunkSize bytes), a chunk of device `id`, and
   * frames it. `index`: dedup, in stream order; `facts`: what the dedup plan
   * already knows about these bytes.
   */
  encode(b: FrameBuilder, id: number, src: ByteSource, start: number, end: number, index: DedupIndex | null, facts: ChunkFacts | null = null): void {
    this.buffers();
    index?.reserve(this.chunkSize); // before any view is taken: it may allocate kernel memory
    const n = end - start;
    const memory = kernelMemory().buffer;
    const rf = this.raw!.view(0, P + n + FRAME_CHECK_SIZE);
    rf.set(src.view(start, end), P);
    const raw = rf.subarray(P, P + n);
    // Nothing below allocates kernel memory (every input is already there), so
    // these views stay attached; checked before anything is committed.
    let codec = CODEC_RAW;
    let hash: bigint;
    let coded = n;
    let frame = rf;
    if (facts?.zero ?? isZero(raw)) {
      codec = CODEC_ZERO;
      coded = 0;
      if (this.zeroHash.length !== n) this.zeroHash = { length: n, hash: xxh3_64(raw) };
      hash = this.zeroHash.hash;
    } else {
      hash = facts?.hash ?? xxh3_64(raw);
      const ord = index === null ? -1 : index.find(raw, hash);
      if (ord >= 0) {
        frame = this.coded!.view(0, P + DEDUP_REF_SIZE + FRAME_CHECK_SIZE);
        new DataView(frame.buffer, frame.byteOffset + P, DEDUP_REF_SIZE).setBigUint64(0, BigInt(ord), true);
        codec = CODEC_DEDUP_REF;
        coded = DEDUP_REF_SIZE;
      } else {
        const limit = maxCodedSize(n);
        if (this.lz4 && limit > 0) {
          const cf = this.coded!.view(0, P + limit + FRAME_CHECK_SIZE);
          const m = lz4CompressInto(raw, cf.subarray(P, P + limit), this.acceleration);
          if (m > 0) {
            codec = CODEC_LZ4;
            coded = m;
            frame = cf;
          }
        }
        // Recorded like the decoder will (every coded chunk); the index keeps the smaller LZ4 copy when there is one.
        index?.add(raw, hash, codec === CODEC_LZ4 ? frame.subarray(P, P + coded) : undefined);
      }
    }
    if (kernelMemory().buffer !== memory) throw new MigstreamError("INTERNAL", "kernel memory moved while a chunk was being coded");
    b.chunkInPlace(id, frame === rf ? this.raw! : this.coded!, codec, n, coded, hash);
  }

  /** Returns the buffers to the kernel arena. */
  free(): void {
    this.raw?.free();
    this.coded?.free();
    this.raw = this.coded = null;
  }
}
