// The encoder's chunk coding on its own thread, in place: each chunk is
// copied once into kernel memory, straight into the payload slot of a CHUNK
// frame; the coder (codec/coder.ts, the same rule a worker runs) tests,
// hashes and codes it there, writing any coded payload into the payload slot
// of a second frame; the frame that holds the chosen payload is sealed in
// place and copied out once.

import type { AutoContext } from "../codec/auto/decide.js";
import { type ChunkFacts, encodeChunk, reserveCoder, slotSize } from "../codec/coder.js";
import type { Coding } from "../codec/coding.js";
import type { DedupIndex } from "../codec/dedup.js";
import { CODEC_RAW, CODEC_ZERO } from "../codec/ids.js";
import { allocBuffer, type KernelBuffer } from "../kernels/wasm.js";
import { CHUNK_PAYLOAD_OFFSET, type FrameBuilder } from "./builder.js";
import type { ByteSource } from "./chunking.js";
import { FRAME_CHECK_SIZE } from "./constants.js";

const P = CHUNK_PAYLOAD_OFFSET;

export class InlineChunks {
  private readonly coding: Coding;
  private readonly chunkSize: number;
  /** Frame whose payload slot holds the raw chunk (RAW and ZERO frames are sealed here). */
  private raw: KernelBuffer | null = null;
  /** Frame whose payload slot receives a coded payload (LZ4, zstd, a dedup reference). */
  private coded: KernelBuffer | null = null;

  constructor(chunkSize: number, coding: Coding) {
    this.chunkSize = chunkSize;
    this.coding = coding;
  }

  /** Allocates the two frames and the coder's scratch (before any view of kernel memory is taken). */
  private buffers(): void {
    if (this.raw !== null) return;
    this.raw = allocBuffer(P + this.chunkSize + FRAME_CHECK_SIZE);
    this.coded = allocBuffer(P + slotSize(this.chunkSize) + FRAME_CHECK_SIZE);
    reserveCoder(this.chunkSize);
  }

  /**
   * Codes src[start, end) (≤ chunkSize bytes), a chunk of device `id`, and
   * frames it. `index`: dedup, in stream order; `facts`: what the dedup plan
   * already knows about these bytes; `auto`: auto's context for this chunk.
   */
  encode(
    b: FrameBuilder,
    id: number,
    src: ByteSource,
    start: number,
    end: number,
    index: DedupIndex | null,
    facts: ChunkFacts | null,
    auto?: AutoContext,
  ): void {
    this.buffers();
    index?.reserve(this.chunkSize); // before any view is taken: it may allocate kernel memory
    const n = end - start;
    const rf = this.raw!.view(0, P + n);
    rf.set(src.view(start, end), P);
    const c = encodeChunk(rf.subarray(P), this.coded!.view(P, P + slotSize(n)), this.coding, { index, facts, auto });
    b.chunkInPlace(id, c.codec === CODEC_RAW || c.codec === CODEC_ZERO ? this.raw! : this.coded!, c);
  }

  /** Returns the buffers to the kernel arena. */
  free(): void {
    this.raw?.free();
    this.coded?.free();
    this.raw = this.coded = null;
  }
}
