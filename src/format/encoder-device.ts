// The encoder's per-device rules (the order a producer must follow: USAGE
// otherwise) and how one chunk is coded on this thread: dedup decision, then
// the LZ4/RAW/ZERO fast path (inline.ts) or encodeChunk for zstd and auto.

import { DedupIndex, encodeDedupRef } from "../codec/dedup.js";
import { CODEC_DEDUP_REF, CODEC_LZ4, CODEC_RAW, CODEC_ZERO, CODEC_ZSTD } from "../codec/ids.js";
import { encodeChunk } from "../codec/select.js";
import { ZERO_PAYLOAD } from "../codec/zero.js";
import { MigstreamError } from "../errors.js";
import { xxh3_64 } from "../kernels/xxh3.js";
import { allocBuffer, type KernelBuffer } from "../kernels/wasm.js";
import { isZero } from "../kernels/zero.js";
import type { MigrationProtocol, Phase } from "../protocol/types.js";
import type { CodedChunk, FrameBuilder } from "./builder.js";
import { plain } from "./bytes.js";
import { arraySource, type ByteSource, Chunker } from "./chunking.js";
import { MAX_NAME_LENGTH, PHASES, phaseCode } from "./constants.js";
import { type ChunkFacts, planUnits, plainUnits, type Unit } from "./encoder-dedup.js";
import { intOption, usage, type Settings } from "./encoder-options.js";
import { InlineChunks } from "./inline.js";
import type { DeviceInfo } from "./types.js";

/**
 * With dedup, transactions up to this size are copied into kernel memory once
 * and chunked, hashed and coded there in place (larger ones are read where
 * they are: the staging buffer never grows beyond this).
 */
export const DEDUP_STAGE_MAX = 8 << 20;

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

  constructor(id: number, s: Settings) {
    this.id = id;
    this.index = s.dedupWindow > 0 ? new DedupIndex(s.dedupWindow) : null;
    this.chunker = new Chunker(s.chunkSize, s.dedupWindow > 0);
    this.chunkSize = s.chunkSize;
  }

  /** The units one transaction is sent as (chunks; with dedup, some merged: encoder-dedup.ts). */
  plan(src: ByteSource): Unit[] {
    if (this.index === null || !this.chunker.contentDefined) return plainUnits(this.chunker.ends(src));
    return planUnits(src, this.chunker, this.index, this.chunkSize);
  }

  /** A protocol record goes before any phase, at most once. */
  checkProtocol(p: MigrationProtocol): void {
    this.open("protocol");
    if (this.protocolSet) throw usage(`device ${this.id}: protocol recorded twice`, "protocol");
    if (this.phase >= 0) throw usage(`device ${this.id}: protocol recorded after the first phase`, "protocol");
    if (p?.generation !== 1 && !(p?.generation === 2 && typeof p.restartsAtStopCopy === "boolean")) {
      throw usage(`device ${this.id}: protocol ${JSON.stringify(p)} is neither { generation: 1 } nor { generation: 2, restartsAtStopCopy }`, "protocol");
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
      throw usage(`device ${this.id}: phase ${phase} iteration ${iteration} repeats (pre-copy iterations must grow)`, "iteration");
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
      throw new MigstreamError("LIMIT", `transaction of ${data.length} bytes exceeds the declared maxTransaction ${maxTransaction}`, {
        device: this.id,
        field: "maxTransaction",
      });
    }
  }

  checkEnd(): void {
    this.open("end");
  }
}

/** A chunk decided without coding (ZERO, DEDUP_REF), or one still to be coded. */
export function nameBytes(info: DeviceInfo | undefined, s: Settings): { name: Uint8Array; metadata: Uint8Array } {
  const name = utf8.encode(info?.name ?? "");
  if (name.length > MAX_NAME_LENGTH) throw usage(`device name has ${name.length} UTF-8 bytes, at most ${MAX_NAME_LENGTH}`, "name");
  const metadata = info?.metadata ?? new Uint8Array(0);
  if (!(metadata instanceof Uint8Array)) throw usage("device metadata must be a Uint8Array", "metadata");
  if (metadata.length > s.fields.maxMetadata) {
    throw new MigstreamError("LIMIT", `device metadata of ${metadata.length} bytes exceeds the declared maxMetadata ${s.fields.maxMetadata}`, {
      field: "maxMetadata",
    });
  }
  return { name, metadata: plain(metadata) };
}

export function checkDeviceId(id: unknown, devices: Map<number, unknown>, s: Settings): number {
  const n = intOption(id, "device id", 0, 0xffff);
  if (devices.has(n)) throw usage(`device ${n} was already started`, "device");
  if (devices.size >= s.fields.maxDevices) {
    throw new MigstreamError("LIMIT", `more than the declared maxDevices ${s.fields.maxDevices} devices`, { field: "maxDevices" });
  }
  return n;
}


export type Decision = { ready: CodedChunk } | { raw: Uint8Array; hash: bigint | null };

let zeroHash = { length: -1, hash: 0n };
function hashOfZeros(n: number, raw: Uint8Array): bigint {
  if (zeroHash.length !== n) zeroHash = { length: n, hash: xxh3_64(raw) };
  return zeroHash.hash;
}

/**
 * Dedup decision for one chunk (in stream order): ZERO, a reference to a live
 * identical chunk, or "code it" — after recording it in the index, since every
 * coded (RAW/LZ4/ZSTD) chunk is recorded by the decoder too. `facts`: what the
 * plan already found out about these bytes.
 */
export function decide(raw: Uint8Array, index: DedupIndex | null, facts: ChunkFacts | null = null): Decision {
  if (index === null) return { raw, hash: null };
  if (facts?.zero ?? isZero(raw)) return { ready: { codec: CODEC_ZERO, level: 0, payload: ZERO_PAYLOAD, rawLength: raw.length, hash: hashOfZeros(raw.length, raw) } };
  const hash = facts?.hash ?? xxh3_64(raw);
  const ord = index.find(raw, hash);
  if (ord >= 0) return { ready: { codec: CODEC_DEDUP_REF, level: 0, payload: encodeDedupRef(ord), rawLength: raw.length, hash } };
  index.add(raw, hash);
  return { raw, hash };
}

/** Codes a chunk on this thread (zstd must be loaded for zstd/auto). */
export function codeInline(raw: Uint8Array, hash: bigint | null, s: Settings, mustNotBeZero: boolean): CodedChunk {
  const h = hash ?? xxh3_64(raw);
  const c = encodeChunk(raw, s.level === undefined ? { codec: s.codec } : { codec: s.codec, level: s.level });
  if (mustNotBeZero && c.codec === CODEC_ZERO) throw new MigstreamError("INTERNAL", "a recorded chunk was coded as ZERO");
  return { codec: c.codec, level: c.level, payload: c.payload, rawLength: raw.length, hash: h };
}

/** Checks what a ChunkCoder returned for a chunk. */
export function checkCoded(c: CodedChunk, raw: number, hash: bigint | null): CodedChunk {
  const allowed = hash === null ? c.codec <= CODEC_ZSTD : c.codec === CODEC_RAW || c.codec === CODEC_LZ4 || c.codec === CODEC_ZSTD;
  const bad =
    !allowed ||
    c.rawLength !== raw ||
    !(c.payload instanceof Uint8Array) ||
    c.payload.length > raw ||
    (c.codec === CODEC_RAW && c.payload.length !== raw) ||
    (c.codec === CODEC_ZERO && c.payload.length !== 0) ||
    (hash !== null && c.hash !== hash);
  if (bad) throw new MigstreamError("INTERNAL", `the chunk coder returned an invalid result (codec ${c.codec}, ${c.rawLength} bytes)`);
  return c;
}


/** Codes chunks on this thread: the fast path for lz4/raw/zero, encodeChunk for zstd and auto. */
export class ChunkCoding {
  private readonly s: Settings;
  private readonly fast: InlineChunks | null;
  /** Kernel-memory copy of the current transaction (dedup). */
  private stage: KernelBuffer | null = null;

  constructor(s: Settings) {
    this.s = s;
    const c = s.codec;
    this.fast = c === "lz4" || c === "raw" || c === "zero" ? new InlineChunks(s.chunkSize, c === "lz4", c === "lz4" ? (s.level ?? 1) : 1) : null;
  }

  /**
   * Where the chunks of a transaction are read from: with dedup and the fast
   * path, a copy in kernel memory (planning hashes every chunk, coding works
   * on it again: both in place; `shared`: valid until the next call, so the
   * caller codes all of it before yielding), else `data` itself.
   * (zstd and auto keep plain arrays: their coders allocate kernel scratch
   * while they look at a chunk, which would detach a view of kernel memory.)
   */
  source(data: Uint8Array): ByteSource {
    const n = data.length;
    if (this.fast === null || this.s.dedupWindow === 0 || n === 0 || n > DEDUP_STAGE_MAX) return arraySource(data);
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
    if (this.fast !== null) return this.fast.encode(b, d.id, src, start, end, d.index, facts);
    const raw = src.view(start, end);
    const dec = decide(raw, d.index, facts);
    b.chunk(d.id, "ready" in dec ? dec.ready : codeInline(dec.raw, dec.hash, this.s, d.index !== null));
  }

  free(): void {
    this.fast?.free();
    this.stage?.free();
    this.stage = null;
  }
}
