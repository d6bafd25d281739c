// The encoder's per-device rules (the order a producer must follow: USAGE
// otherwise) and where its chunks are coded on this thread (inline.ts, with
// the transaction staged in kernel memory for dedup planning).

import type { ChunkFacts, CodedChunk } from "../codec/coder.js";
import { DedupIndex } from "../codec/dedup.js";
import { CODEC_LZ4, CODEC_RAW, CODEC_ZERO, CODEC_ZSTD } from "../codec/ids.js";
import { MigstreamError } from "../errors.js";
import { allocBuffer, type KernelBuffer } from "../kernels/wasm.js";
import type { MigrationProtocol, Phase } from "../protocol/types.js";
import type { FrameBuilder } from "./builder.js";
import { plain } from "./bytes.js";
import { arraySource, type ByteSource, Chunker } from "./chunking.js";
import { MAX_NAME_LENGTH, PHASES, phaseCode } from "./constants.js";
import { plainUnits, planUnits, type Unit } from "./encoder-dedup.js";
import { intOption, type Settings, usage } from "./encoder-options.js";
import { InlineChunks } from "./inline.js";
import type { DeviceInfo } from "./types.js";

/**
 * With dedup, transactions up to this size are copied into kernel memory once
 * and chunked, hashed and coded there in place (larger ones are read where
 * they are: the staging buffer never grows beyond this).
 */
const DEDUP_STAGE_MAX = 8 << 20;

const utf8 = new TextEncoder();

/** Per-device encoder state and the rules a producer must follow (USAGE otherwise). */
export class DeviceState {
  readonly id: number;
  /** Phase code of the last phase, -1 before any. */
  phase = -1;
  iteration = 0;
  ended = false;
  /** protocol() was called. */
  protocolSet = false;
  /** A call of this device is in progress. */
  busy = false;
  readonly index: DedupIndex | null;
  readonly chunker: Chunker;
  private readonly chunkSize: number;
  /** auto: the last phase sends new data in large units (encoder-dedup.ts). */
  private readonly largeLastUnits: boolean;

  constructor(id: number, s: Settings) {
    this.id = id;
    this.index = s.dedupWindow > 0 ? new DedupIndex(s.dedupWindow) : null;
    this.chunker = new Chunker(s.chunkSize, s.dedupWindow > 0);
    this.chunkSize = s.chunkSize;
    this.largeLastUnits = s.coding.codec === "auto";
  }

  /** The units one transaction is sent as (chunks; with dedup, some merged: encoder-dedup.ts). */
  plan(src: ByteSource): Unit[] {
    if (this.index === null || !this.chunker.contentDefined) return plainUnits(this.chunker.ends(src));
    return planUnits(
      src,
      this.chunker,
      this.index,
      this.chunkSize,
      this.largeLastUnits && this.phase >= phaseCode("stopcopy"),
    );
  }

  /** A protocol record goes before any phase, at most once. */
  checkProtocol(p: MigrationProtocol): void {
    this.open("protocol");
    if (this.protocolSet) throw usage(`device ${this.id}: protocol recorded twice`, "protocol");
    if (this.phase >= 0) throw usage(`device ${this.id}: protocol recorded after the first phase`, "protocol");
    if (p?.generation !== 1 && !(p?.generation === 2 && typeof p.restartsAtStopCopy === "boolean")) {
      throw usage(
        `device ${this.id}: protocol ${JSON.stringify(p)} is neither { generation: 1 } nor { generation: 2, restartsAtStopCopy }`,
        "protocol",
      );
    }
    this.protocolSet = true;
  }

  private open(what: string): void {
    if (this.ended) throw usage(`device ${this.id} already ended (${what})`);
    if (this.busy) throw usage(`device ${this.id}: ${what} while its previous call is still running (await each call)`);
  }

  checkPhase(phase: Phase, iteration: number): number {
    this.open("phase");
    const code = phaseCode(phase);
    if (code < 0) throw usage(`unknown phase ${String(phase)}`, "phase");
    intOption(iteration, "iteration", 0, 0xffffffff);
    const last = PHASES[this.phase];
    if (code < this.phase) throw usage(`device ${this.id}: phase ${phase} after ${last}`, "phase");
    if (this.phase === phaseCode("end")) throw usage(`device ${this.id}: phase ${phase} after end`, "phase");
    if (code === this.phase && !(phase === "precopy" && iteration > this.iteration)) {
      throw usage(
        `device ${this.id}: phase ${phase} iteration ${iteration} repeats (pre-copy iterations must grow)`,
        "iteration",
      );
    }
    return code;
  }

  commitPhase(code: number, iteration: number): void {
    this.phase = code;
    this.iteration = iteration;
  }

  checkTransaction(data: unknown, maxTransaction: number): asserts data is Uint8Array {
    this.open("transaction");
    if (!(data instanceof Uint8Array)) throw usage("transaction data must be a Uint8Array", "data");
    if (this.phase < 0) throw usage(`device ${this.id}: transaction before any phase`);
    if (this.phase === phaseCode("end")) throw usage(`device ${this.id}: transaction after the end phase`);
    if (data.length > maxTransaction) {
      throw new MigstreamError(
        "LIMIT",
        `transaction of ${data.length} bytes exceeds the declared maxTransaction ${maxTransaction}`,
        {
          device: this.id,
          field: "maxTransaction",
        },
      );
    }
  }

  checkEnd(): void {
    this.open("end");
  }
}

/** The name and metadata of a device as DEVICE_BEGIN carries them (USAGE or LIMIT when they do not fit). */
export function nameBytes(info: DeviceInfo | undefined, s: Settings): { name: Uint8Array; metadata: Uint8Array } {
  const name = utf8.encode(info?.name ?? "");
  if (name.length > MAX_NAME_LENGTH)
    throw usage(`device name has ${name.length} UTF-8 bytes, at most ${MAX_NAME_LENGTH}`, "name");
  const metadata = info?.metadata ?? new Uint8Array(0);
  if (!(metadata instanceof Uint8Array)) throw usage("device metadata must be a Uint8Array", "metadata");
  if (metadata.length > s.fields.maxMetadata) {
    throw new MigstreamError(
      "LIMIT",
      `device metadata of ${metadata.length} bytes exceeds the declared maxMetadata ${s.fields.maxMetadata}`,
      {
        field: "maxMetadata",
      },
    );
  }
  return { name, metadata: plain(metadata) };
}

export function checkDeviceId(id: unknown, devices: Map<number, unknown>, s: Settings): number {
  const n = intOption(id, "device id", 0, 0xffff);
  if (devices.has(n)) throw usage(`device ${n} was already started`, "device");
  if (devices.size >= s.fields.maxDevices) {
    throw new MigstreamError("LIMIT", `more than the declared maxDevices ${s.fields.maxDevices} devices`, {
      field: "maxDevices",
    });
  }
  return n;
}

/** Checks what a ChunkCoder returned for a chunk of `raw` bytes (`hash`: known already, so not ZERO either). */
export function checkCoded(c: CodedChunk, raw: number, hash: bigint | null): CodedChunk {
  const allowed =
    hash === null ? c.codec <= CODEC_ZSTD : c.codec === CODEC_RAW || c.codec === CODEC_LZ4 || c.codec === CODEC_ZSTD;
  const bad =
    !allowed ||
    c.rawLength !== raw ||
    !(c.payload instanceof Uint8Array) ||
    c.payload.length > raw ||
    (c.codec === CODEC_RAW && c.payload.length !== raw) ||
    (c.codec === CODEC_ZERO && c.payload.length !== 0) ||
    (hash !== null && c.hash !== hash);
  if (bad)
    throw new MigstreamError(
      "INTERNAL",
      `the chunk coder returned an invalid result (codec ${c.codec}, ${c.rawLength} bytes)`,
    );
  return c;
}

/** Codes chunks on this thread (inline.ts). */
export class ChunkCoding {
  private readonly s: Settings;
  private readonly chunks: InlineChunks;
  /** Kernel-memory copy of the current transaction (dedup). */
  private stage: KernelBuffer | null = null;

  constructor(s: Settings) {
    this.s = s;
    this.chunks = new InlineChunks(s.chunkSize, s.coding);
  }

  /**
   * Where the chunks of a transaction are read from: with dedup, a copy in
   * kernel memory (planning hashes every chunk, coding works on it again:
   * both in place; `shared`: valid until the next call, so the caller codes
   * all of it before yielding), else `data` itself.
   */
  source(data: Uint8Array): ByteSource {
    const n = data.length;
    if (this.s.dedupWindow === 0 || n === 0 || n > DEDUP_STAGE_MAX) return arraySource(data);
    if (this.stage === null || this.stage.length < n) {
      this.stage?.free();
      this.stage = null;
      this.stage = allocBuffer(Math.max(n, Math.min(DEDUP_STAGE_MAX, this.s.fields.maxTransaction)));
    }
    const stage = this.stage;
    stage.view(0, n).set(data);
    return { length: n, shared: true, view: (start, end) => stage.view(start, end) };
  }

  /** Codes src[start, end) (a unit of device `d`'s transaction) and frames it. */
  code(b: FrameBuilder, d: DeviceState, src: ByteSource, start: number, end: number, facts: ChunkFacts | null): void {
    this.chunks.encode(b, d.id, src, start, end, d.index, facts, this.s.sink?.context(1));
  }

  free(): void {
    this.chunks.free();
    this.stage?.free();
    this.stage = null;
  }
}
