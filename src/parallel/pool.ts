// A pool of workers that code and decode chunks on every core.
//
// Buffers: a job's input is taken over at submission, the same way for workers
// and inline. A Uint8Array spanning its whole ArrayBuffer is moved: the caller's
// ArrayBuffer is DETACHED (byteLength 0) and must not be used again. A view into
// a larger buffer is copied (moving it would detach its neighbours), and so is
// every input when `copy: true` (per pool or per job) — use that when you keep
// the bytes. A SharedArrayBuffer view is read in place without a copy; leave it
// unchanged until the job settles. Results are moved back without copies.
// Batch jobs (encodeBatch, decodeBatch) carry several chunks in one buffer,
// moved whole, with the results written back in place (see batch.ts).
//
// Threads: `threads` workers, or with `callerRuns` threads − 1 workers and the
// calling thread, which takes a job whenever every ready worker's queue is
// full (so on N cores N threads code, and start-up never stalls the stream).
// An encode batch too small to pay for a post (SMALL_BATCH_BYTES) is coded on
// the calling thread, in a task of its own, whatever the workers' queues.
//
// Failures: a job fails with the MigstreamError its worker raised (CODEC,
// CHECKSUM...). A worker that dies (uncaught error, exit, load failure) fails
// every job it held with INTERNAL and is replaced for later jobs; one that stays
// silent past `jobTimeoutMs` is ended and fails its jobs with TIMEOUT (a Web
// Worker that closes itself sends no event; the watchdog covers that case).
// A worker that dies before it is ready breaks the pool: every pending and
// later job fails with INTERNAL instead of respawning forever.
//
// Worker module: dist/worker.js, found next to the built library. Deno needs
// read permission for it (`--allow-read`, or scoped to the package's dist/
// directory); without it the pool fails with INTERNAL "could not start". No
// other permission is needed (env only to read MIGSTREAM_FAULT_INJECTION).

import { type CodedChunk, init, resolveCoding } from "../codec/index.js";
import { MigstreamError } from "../errors.js";
import type { ChunkCoder, ChunkDecoder, CodingPool } from "../format/chunk-coders.js";
import { afterTask, SMALL_BATCH_BYTES } from "./batch.js";
import { detachFromKernel, isShared, own } from "./buffers.js";
import { type PoolCoderOptions, type PoolDecoderOptions, poolCoder, poolDecoder } from "./coder.js";
import { FAULT_ENV, type JobContext } from "./job-faults.js";
import {
  type DecodeRequest,
  type EncodeOptions,
  fromWireError,
  type PoolJob,
  type Reply,
  type Request,
  type ResultOf,
  toWireError,
  type WireJob,
  type WireResult,
} from "./jobs.js";
import { OrderedPipeline } from "./ordered.js";
import { availableCores, envFlag, MAX_THREADS, platform, spawnWorker, type WorkerHandle } from "./platform.js";
import { runJob } from "./run-job.js";

/** Default ordered-pipeline window per thread. */
const DEFAULT_IN_FLIGHT_PER_THREAD = 4;
/** Jobs posted ahead to one worker, so it never idles waiting for the next (nor while the calling thread codes a batch of its own). */
export const WORKER_QUEUE_DEPTH = 3;
/** Default watchdog: longest a worker may take on one job. */
const DEFAULT_JOB_TIMEOUT_MS = 60_000;
/** Least time a new worker gets to load (module, kernels) before it counts as failed. */
const WORKER_START_TIMEOUT_MS = 30_000;

/** Options of WorkerPool: threads, in-flight window, copying, watchdog, worker module, zstd preload. */
export interface PoolOptions {
  /** Worker threads; default: available cores. 1 runs every job inline on the calling thread. */
  threads?: number;
  /** Ordered-pipeline window (jobs pulled and not yet consumed); default threads × 4. */
  maxInFlight?: number;
  /** Copy every input instead of moving it (default false). */
  copy?: boolean;
  /** Watchdog per job in ms (0 disables); default 60 s. */
  jobTimeoutMs?: number;
  /** Worker module; default the built dist/worker.js next to this module. */
  workerUrl?: string | URL;
  /** Test only: honour `__test` fault plans (also enabled by MIGSTREAM_FAULT_INJECTION=1). */
  faultInjection?: boolean;
  /** Load zstd in every worker as it starts (else on its first zstd or auto job). Default false. */
  zstd?: boolean;
  /**
   * The calling thread codes too: `threads` counts it, so threads − 1 workers
   * start, and a job that finds every worker's queue full runs on the calling
   * thread instead of waiting. On a machine with as many cores as threads this
   * keeps every core busy without a thread too many. Default false.
   */
  callerRuns?: boolean;
}

interface Pending {
  id: number;
  job: WireJob;
  transfer: ArrayBuffer[];
  resolve(r: WireResult): void;
  reject(e: MigstreamError): void;
}

interface Slot {
  name: string;
  handle: WorkerHandle;
  ready: boolean;
  dead: boolean;
  /** Jobs posted to this worker, oldest first (it runs them in order). */
  inflight: Map<number, Pending>;
  timer?: ReturnType<typeof setTimeout>;
  whenReady: Promise<void>;
  markReady(): void;
  failReady(e: MigstreamError): void;
}

/** An encode batch too small to be worth a post (SMALL_BATCH_BYTES): coded on the calling thread. */
function small(job: WireJob): boolean {
  return job.op === "encodeBatch" && job.buffer.length < SMALL_BATCH_BYTES;
}

function usage(field: string, message: string): MigstreamError {
  return new MigstreamError("USAGE", message, { field });
}

/**
 * Threads that code and decode chunks: the `pool` option of StreamEncoder and
 * StreamDecoder (a CodingPool), and a job runner of its own (encode, decode,
 * batches, ordered pipelines).
 */
export class WorkerPool implements CodingPool {
  /** Worker threads (1 = inline). */
  readonly threads: number;
  readonly maxInFlight: number;
  /** True when jobs run on the calling thread (threads 1, or no worker support). */
  readonly inline: boolean;
  /** Workers started (threads, or threads − 1 with callerRuns). */
  private readonly workerLimit: number;
  private readonly callerRuns: boolean;
  private callerBusy = false;
  private readonly copy: boolean;
  private readonly faults: boolean;
  private readonly zstd: boolean;
  private readonly jobTimeoutMs: number;
  private readonly workerUrl?: string | URL;
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private readonly outstanding = new Set<Promise<unknown>>();
  private readonly inlineCtx: JobContext;
  private nextId = 1;
  private spawned = 0;
  private postedJobs = 0;
  private closing: Promise<void> | null = null;
  private broken: MigstreamError | null = null;

  constructor(options: PoolOptions = {}) {
    const threads = options.threads ?? availableCores();
    if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
      throw usage("threads", `threads must be an integer in 1..${MAX_THREADS}, got ${threads}`);
    }
    const timeout = options.jobTimeoutMs ?? DEFAULT_JOB_TIMEOUT_MS;
    if (!(timeout >= 0)) throw usage("jobTimeoutMs", `jobTimeoutMs must be >= 0, got ${timeout}`);
    this.threads = threads;
    const maxInFlight = options.maxInFlight ?? threads * DEFAULT_IN_FLIGHT_PER_THREAD;
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
      throw usage("maxInFlight", `maxInFlight must be a positive integer, got ${maxInFlight}`);
    }
    this.maxInFlight = maxInFlight;
    this.inline = threads === 1 || platform() === "none";
    this.callerRuns = options.callerRuns === true;
    this.workerLimit = this.callerRuns ? threads - 1 : threads;
    this.copy = options.copy ?? false;
    this.faults = options.faultInjection ?? envFlag(FAULT_ENV);
    this.zstd = options.zstd === true;
    this.jobTimeoutMs = timeout;
    this.workerUrl = options.workerUrl;
    this.inlineCtx = { faults: this.faults, done: 0 };
  }

  /** Live workers (0 when inline or before the first job). */
  get workers(): number {
    return this.slots.length;
  }

  /** Jobs posted to workers so far (jobs run on the calling thread are not counted). */
  get posted(): number {
    return this.postedJobs;
  }

  /**
   * Starts every worker and waits until each has loaded its kernels. Optional
   * (workers start on first use), but do it before a timed phase such as
   * stop-and-copy so that start-up is not paid there.
   */
  async start(): Promise<void> {
    this.assertOpen();
    if (this.inline) {
      await init({ zstd: this.zstd });
      return;
    }
    while (this.slots.length < this.workerLimit) this.spawn();
    await Promise.all(this.slots.map((s) => s.whenReady));
  }

  /** A ChunkCoder on this pool, for one encoder: chunks are sent in batches. */
  coder(options?: PoolCoderOptions): ChunkCoder {
    return poolCoder(this, options);
  }

  /** A ChunkDecoder on this pool, for one decoder: chunks are sent in batches, LZ4 and RAW decoded on the calling thread unless told otherwise. */
  decoder(options?: PoolDecoderOptions): ChunkDecoder {
    return poolDecoder(this, options);
  }

  /** Encodes one chunk: codec, level, payload and the xxh3_64 of `raw`. Moves `raw` (see above). */
  encode(raw: Uint8Array, options: EncodeOptions): Promise<CodedChunk> {
    return this.submit({ op: "encode", raw, options });
  }

  /** Decodes one chunk and verifies its hash (CHECKSUM on mismatch). Moves `payload`. */
  decode(request: DecodeRequest): Promise<Uint8Array> {
    return this.submit({ op: "decode", ...request });
  }

  /**
   * True when a job submitted now would go to a worker without waiting: a
   * worker is still to be started (submitting starts it), or a ready one has
   * room in its queue and no job waits before it. False for an inline, closed
   * or broken pool. A caller with work it can do itself (a decoder with a
   * chunk) does it on its own thread when this is false.
   */
  hasWorkerRoom(): boolean {
    if (this.inline || this.closing !== null || this.broken !== null || this.queue.length > 0) return false;
    if (this.slots.length < this.workerLimit) return true;
    return this.slots.some((s) => s.ready && !s.dead && s.inflight.size < WORKER_QUEUE_DEPTH);
  }

  /** Runs one job. */
  submit<J extends PoolJob>(job: J): Promise<ResultOf<J>> {
    let p: Promise<WireResult>;
    try {
      this.assertOpen();
      const wire = this.toWire(job);
      p = this.inline ? this.runInline(wire) : small(wire) ? this.runSoon(wire) : this.enqueue(wire);
    } catch (e) {
      p = Promise.reject(e);
    }
    this.outstanding.add(p);
    const forget = () => this.outstanding.delete(p);
    p.then(forget, forget);
    return p as Promise<ResultOf<J>>;
  }

  /** Runs jobs with at most `maxInFlight` pulled ahead; yields results in source order. */
  mapOrdered<J extends PoolJob>(source: AsyncIterable<J> | Iterable<J>): AsyncGenerator<ResultOf<J>, void, undefined> {
    return new OrderedPipeline((j: J) => this.submit(j), this.maxInFlight).map(source);
  }

  /** Ordered encode of a stream of raw chunks, all with the same options. */
  encodeOrdered(
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    options: EncodeOptions,
  ): AsyncGenerator<CodedChunk, void, undefined> {
    return new OrderedPipeline((raw: Uint8Array) => this.encode(raw, options), this.maxInFlight).map(source);
  }

  /** Ordered decode of a stream of coded chunks. */
  decodeOrdered(
    source: AsyncIterable<DecodeRequest> | Iterable<DecodeRequest>,
  ): AsyncGenerator<Uint8Array, void, undefined> {
    return new OrderedPipeline((r: DecodeRequest) => this.decode(r), this.maxInFlight).map(source);
  }

  /** Lets submitted jobs finish, then ends the workers. Later jobs fail with USAGE. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      while (this.outstanding.size > 0) await Promise.allSettled([...this.outstanding]);
      const slots = this.slots.splice(0);
      for (const s of slots) {
        s.dead = true;
        clearTimeout(s.timer);
      }
      await Promise.all(slots.map((s) => s.handle.terminate().catch(() => {})));
    })();
    return this.closing;
  }

  // ---- internals ----

  private assertOpen(): void {
    if (this.closing) throw new MigstreamError("USAGE", "the worker pool is closed");
    if (this.broken) throw this.broken;
  }

  /** Builds the wire job, taking ownership of its input buffer. */
  private toWire(job: PoolJob): WireJob {
    const copy = (j: { copy?: boolean }) => j.copy ?? this.copy;
    const bytes = (v: unknown, field: string): Uint8Array => {
      if (!(v instanceof Uint8Array)) throw usage(field, `${field} must be a Uint8Array`);
      return v;
    };
    switch (job.op) {
      case "encode": {
        const o = job.options;
        const coding = resolveCoding(o.codec, o.level);
        return {
          op: "encode",
          raw: own(bytes(job.raw, "raw"), copy(o), o.whole),
          coding,
          auto: o.auto,
          test: o.__test,
        };
      }
      case "decode":
        return {
          op: "decode",
          codec: job.codec,
          payload: own(bytes(job.payload, "payload"), copy(job), job.whole),
          rawLength: job.rawLength,
          hash: job.hash,
          test: job.__test,
        };
      case "encodeBatch": {
        const o = job.options;
        const coding = resolveCoding(o.codec, o.level);
        const buffer = own(bytes(job.buffer, "buffer"), copy(o), true);
        return { op: "encodeBatch", buffer, spans: job.spans, coding, auto: o.auto, test: o.__test };
      }
      case "decodeBatch":
        return {
          op: "decodeBatch",
          buffer: own(bytes(job.buffer, "buffer"), copy(job), true),
          spans: job.spans,
          test: job.__test,
        };
      case "__echo":
        return { op: "__echo", data: own(bytes(job.data, "data"), copy(job), job.whole), test: job.__test };
      default:
        throw usage("op", `unknown job op ${String((job as { op: unknown }).op)}`);
    }
  }

  private async runInline(job: WireJob): Promise<WireResult> {
    let r: WireResult;
    try {
      r = await runJob(job, this.inlineCtx);
    } catch (e) {
      throw fromWireError(toWireError(e)); // the same typed error a worker would send
    }
    if (r instanceof Uint8Array) return detachFromKernel(r);
    return "payload" in r ? { ...r, payload: detachFromKernel(r.payload) } : r;
  }

  /** A job on this thread in a task of its own (so what the caller started in this task, e.g. a socket write, goes first). */
  private runSoon(job: WireJob): Promise<WireResult> {
    return new Promise<WireResult>((resolve, reject) => afterTask(() => this.runInline(job).then(resolve, reject)));
  }

  private dispatchSharing(): void {
    while (this.slots.length < this.workerLimit && !this.broken) this.spawn();
    while (this.queue.length > 0 && !this.broken) {
      let slot: Slot | undefined;
      for (const s of this.slots) {
        if (
          s.ready &&
          !s.dead &&
          s.inflight.size < WORKER_QUEUE_DEPTH &&
          (!slot || s.inflight.size < slot.inflight.size)
        )
          slot = s;
      }
      if (slot) this.post(slot, this.queue.shift() as Pending);
      else if (!this.callerBusy) this.runHere(this.queue.shift() as Pending);
      else return;
    }
  }

  /**
   * callerRuns: one queued job on this thread (then dispatch again). It starts
   * in a task of its own: a caller whose jobs all finish here would otherwise
   * never return to the event loop, and so never see a worker become ready
   * or finish.
   */
  private runHere(p: Pending): void {
    this.callerBusy = true;
    afterTask(() => {
      this.runInline(p.job)
        .then(p.resolve, p.reject)
        .finally(() => {
          this.callerBusy = false;
          this.dispatch();
        });
    });
  }

  private enqueue(job: WireJob): Promise<WireResult> {
    return new Promise<WireResult>((resolve, reject) => {
      const view =
        job.op === "encode" ? job.raw : job.op === "decode" ? job.payload : job.op === "__echo" ? job.data : job.buffer;
      // own() left the pool this buffer alone (a copy, or moved from the caller): it can travel whole.
      const transfer = isShared(view) ? [] : [view.buffer as ArrayBuffer];
      this.queue.push({ id: this.nextId++, job, transfer, resolve, reject });
      this.dispatch();
    });
  }

  /**
   * Posts queued jobs: to an idle worker, else a new one, else the least loaded
   * with room. With callerRuns only to workers that are ready (the calling
   * thread takes the job meanwhile, so start-up never stalls the stream).
   */
  private dispatch(): void {
    if (this.callerRuns) {
      this.dispatchSharing();
      return;
    }
    while (this.queue.length > 0 && !this.broken) {
      let slot = this.slots.find((s) => s.inflight.size === 0);
      if (!slot && this.slots.length < this.workerLimit) slot = this.spawn();
      if (!slot) {
        for (const s of this.slots)
          if (s.inflight.size < WORKER_QUEUE_DEPTH && (!slot || s.inflight.size < slot.inflight.size)) slot = s;
      }
      if (!slot && this.callerRuns && !this.callerBusy) {
        this.runHere(this.queue.shift() as Pending);
        continue;
      }
      if (!slot || slot.dead) return;
      this.post(slot, this.queue.shift() as Pending);
    }
  }

  private post(slot: Slot, p: Pending): void {
    this.postedJobs++;
    slot.inflight.set(p.id, p);
    if (slot.inflight.size === 1 && slot.ready) this.arm(slot);
    slot.handle.setRef(true);
    try {
      slot.handle.post({ type: "job", id: p.id, job: p.job } satisfies Request, p.transfer);
    } catch (e) {
      slot.inflight.delete(p.id);
      this.settled(slot);
      p.reject(new MigstreamError("INTERNAL", `could not post job to ${slot.name}: ${String(e)}`, { cause: e }));
    }
  }

  private spawn(): Slot {
    const name = `migstream-worker-${++this.spawned}`;
    let markReady!: () => void;
    let failReady!: (e: MigstreamError) => void;
    const whenReady = new Promise<void>((res, rej) => {
      markReady = res;
      failReady = rej;
    });
    whenReady.catch(() => {});
    const slot = { name, ready: false, dead: false, inflight: new Map(), whenReady, markReady, failReady } as Slot;
    this.slots.push(slot);
    try {
      const url = this.workerUrl ?? new URL("./worker.js", import.meta.url);
      slot.handle = spawnWorker(typeof url === "string" ? new URL(url) : url, name, {
        message: (m) => this.onReply(slot, m as Reply),
        error: (e) => this.fail(slot, e),
        exit: (code) => this.fail(slot, new Error(`exited with code ${code}`)),
      });
      slot.handle.post({ type: "init", faults: this.faults, zstd: this.zstd } satisfies Request, []);
      this.arm(slot);
    } catch (e) {
      slot.handle ??= { post() {}, terminate: async () => {}, setRef() {} };
      this.fail(slot, e);
    }
    return slot;
  }

  private onReply(slot: Slot, m: Reply): void {
    if (slot.dead) return;
    if (m.type === "ready") {
      slot.ready = true;
      slot.markReady();
      this.settled(slot);
      this.dispatch();
      return;
    }
    const p = slot.inflight.get(m.id);
    if (!p) return;
    slot.inflight.delete(m.id);
    this.settled(slot);
    if (m.type === "done") p.resolve(m.result);
    else p.reject(fromWireError(m.error));
    this.dispatch();
  }

  /** After a job leaves a worker: re-arm its watchdog, let the process exit when idle. */
  private settled(slot: Slot): void {
    this.arm(slot);
    slot.handle.setRef(slot.inflight.size > 0 || !slot.ready);
  }

  /** Watchdog: the oldest job of a ready worker, or the start-up of a new one. */
  private arm(slot: Slot): void {
    clearTimeout(slot.timer);
    slot.timer = undefined;
    if (this.jobTimeoutMs === 0 || (slot.ready && slot.inflight.size === 0)) return;
    const ms = slot.ready ? this.jobTimeoutMs : Math.max(this.jobTimeoutMs, WORKER_START_TIMEOUT_MS);
    const what = slot.ready ? "did not answer" : "did not start";
    slot.timer = setTimeout(
      () => this.fail(slot, new MigstreamError("TIMEOUT", `${slot.name} ${what} within ${ms} ms`)),
      ms,
    );
  }

  /** A worker died or hung: fail its jobs, drop it, carry on with a fresh one. */
  private fail(slot: Slot, cause: unknown): void {
    if (slot.dead) return;
    slot.dead = true;
    clearTimeout(slot.timer);
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    slot.handle.terminate().catch(() => {});
    const detail = cause instanceof Error ? cause.message : String(cause);
    const error =
      cause instanceof MigstreamError
        ? cause
        : new MigstreamError("INTERNAL", `${slot.name} died: ${detail}`, { cause });
    const jobs = [...slot.inflight.values()];
    slot.inflight.clear();
    if (!slot.ready) {
      this.broken = new MigstreamError("INTERNAL", `${slot.name} could not start: ${detail}`, { cause });
      slot.failReady(this.broken);
      for (const s of this.slots) s.failReady(this.broken);
      jobs.push(...this.queue.splice(0));
    }
    for (const p of jobs) p.reject(this.broken ?? error);
    this.dispatch();
  }
}
