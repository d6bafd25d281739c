// The save path (UAPI "saving" steps a–f):
//   live:    RUNNING → pre-copy (SAVING|RUNNING) → stop-and-copy (SAVING) → STOP
//   suspend: RUNNING → stop-and-copy → STOP                  (precopy: false)
// Each buffer: read data_offset (the vendor may block), read data_size, read
// the data, hand it to the sink, read pending_bytes (the ack) — then back to
// data_offset while pending_bytes > 0. On any failure the device goes back to
// RUNNING with its state (3, 2 or 0 → 1) and the caller gets a MigstreamError
// naming the step.
import { MigstreamError } from "../errors.js";
import { HEADER_SIZE, STATE_MASK, STATE_RESUMING, STATE_RUNNING, STATE_SAVING, stateName } from "./constants.js";
import { readData } from "./data.js";
import { atStep, describe, protocolError, withNote } from "./failure.js";
import { protocolOf } from "./generation.js";
import { Precopy, type PrecopyControl, type PrecopyEnd, type PrecopyPolicy, type StopSignal } from "./policy.js";
import type { ProgressListener, SaveSummary } from "./progress.js";
import type { RegionIO } from "./region-io.js";
import { Registers } from "./registers.js";
import { recordProtocol, SaveRun } from "./run.js";
import { KEEP_ALL, setDeviceState } from "./state.js";
import type { SaveSink } from "./types.js";

/** Options of save(): pre-copy or not and its policy, stop and cancel signals, progress, read buffers. */
export interface SaveOptions {
  /** Live migration with pre-copy (default true); false = suspend path. */
  precopy?: boolean;
  /** When pre-copy ends (iterations, pending threshold, time budget). */
  policy?: PrecopyPolicy;
  /** The VMM's "stop now": ends pre-copy at the next transaction boundary. */
  stopCopy?: StopSignal;
  /**
   * Who decides when pre-copy ends and when the device may stop, instead of
   * `policy` and `stopCopy` (which it then owns): a device migrating with
   * others gets its member of a PrecopyGroup (saveGroup does this).
   */
  precopyControl?: PrecopyControl;
  /** Cancels the save (ABORTED); the device returns to RUNNING. Checked before every protocol step. */
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  /**
   * Buffer factory for data reads (e.g. kernel memory for zero-copy coding):
   * called per transaction, must return ≥ `size` bytes. The view handed to the
   * sink lies in it. Default: one driver-owned buffer, reused.
   */
  buffer?: (size: number) => Uint8Array;
}

/** Saves the device behind `region` into `sink`. */
export async function save(region: RegionIO, sink: SaveSink, options: SaveOptions = {}): Promise<SaveSummary> {
  const run = new RegionSaveRun(region, sink, options);
  try {
    return await run.run();
  } catch (e) {
    const err = await run.fail(e);
    await run.sinkDone().catch(() => {}); // nothing is left in the sink once save() settles
    throw err;
  }
}

const now = (): number => performance.now();
/** Recovery after a failed save: clear SAVING (and RESUMING), set RUNNING. */
const RECOVER_MASK = ~(STATE_SAVING | STATE_RESUMING) >>> 0;
/** Tries at putting the source back in RUNNING (a second one rides out a transient errno). */
export const RECOVER_ATTEMPTS = 2;

class RegionSaveRun extends SaveRun {
  readonly regs: Registers;
  readonly policy: PrecopyControl;
  /** A device_state write was attempted: on failure the device must be put back. */
  touched = false;

  constructor(
    readonly region: RegionIO,
    sink: SaveSink,
    options: SaveOptions,
  ) {
    super(sink, options);
    this.regs = new Registers(region);
    this.policy = options.precopyControl ?? new Precopy(options.policy, options.stopCopy);
  }

  async run(): Promise<SaveSummary> {
    const t0 = now();
    await recordProtocol(this.sink, protocolOf(this.region));
    await this.enterPhase("setup", 0);
    await this.checkRunning();
    const tSetup = now();
    const precopyEnd = this.options.precopy === false ? "none" : await this.precopy();
    await this.mayStop(this.policy);
    const tPrecopy = now();
    await this.enterPhase("stopcopy", 0);
    const tStop = now();
    await this.setState(~STATE_RUNNING >>> 0, STATE_SAVING, "save: enter stop-and-copy");
    await this.readPending();
    while (this.pending > 0) await this.saveBuffer();
    await this.sinkDone();
    await this.setState(~STATE_SAVING >>> 0, 0, "save: enter STOP");
    const tEnd = now();
    await this.enterPhase("end", 0);
    return this.summary(precopyEnd, {
      t0,
      setupEnd: tSetup,
      precopyEnd: tPrecopy,
      stopcopyStart: tStop,
      stopcopyEnd: tEnd,
    });
  }

  /** A save starts from RUNNING (the transitions every vendor accepts: §7). */
  async checkRunning(): Promise<void> {
    this.checkAbort("save: read device_state");
    const s = await this.regs.readState("save: read device_state");
    if ((s & STATE_MASK) !== STATE_RUNNING) {
      throw new MigstreamError("USAGE", `save: device_state is ${stateName(s)}; a save starts from RUNNING`, {
        step: "save: read device_state",
        field: "device_state",
      });
    }
  }

  /** Pre-copy: iterations until the policy ends it. Returns why it ended. */
  async precopy(): Promise<PrecopyEnd> {
    await this.enterPhase("precopy", 0);
    await this.setState(KEEP_ALL, STATE_SAVING, "save: enter pre-copy");
    const start = now();
    await this.readPending();
    for (let done = 0; ; done++) {
      const why = await this.policy.beforeIteration(done, this.pending, now() - start);
      if (why) return why;
      if (done > 0) await this.enterPhase("precopy", done);
      this.iterations = done + 1;
      // One iteration is a pass over what was pending at its start; the device
      // may dirty more meanwhile (pending_bytes may grow), left to the next pass.
      const target = this.pending;
      for (let sent = 0; this.pending > 0 && sent < target; ) {
        sent += await this.saveBuffer();
        const stop = this.policy.interrupt(now() - start, this.pending);
        if (stop) return stop;
      }
    }
  }

  /**
   * Steps b–f for one buffer; `pending` was just read and is > 0. Returns the
   * buffer size. On a pipelined transport data_size is asked right behind
   * data_offset, and pending_bytes right behind the data (before the sink gets
   * it: the device sees the same sequence, two round trips sooner), and the
   * sink takes the data while the next buffer is read (handOver).
   */
  async saveBuffer(): Promise<number> {
    const pipelined = this.region.pipelined === true;
    let step = "save: read data_offset";
    this.checkAbort(step);
    const offsetRead = this.regs.readU64("data_offset", step);
    let sizeRead: Promise<number> | null = null;
    if (pipelined) {
      sizeRead = this.regs.readU64("data_size", "save: read data_size");
      sizeRead.catch(() => {}); // a failure before it is the one reported
    }
    const offset = await offsetRead;
    if (offset < HEADER_SIZE)
      throw protocolError(step, "data_offset", `data_offset ${offset} lies in the register header (< ${HEADER_SIZE})`);
    if (offset >= this.region.size)
      throw protocolError(step, "data_offset", `data_offset ${offset} is beyond the ${this.region.size}-byte region`);
    step = "save: read data_size";
    if (sizeRead === null) this.checkAbort(step);
    const size = await (sizeRead ?? this.regs.readU64("data_size", step));
    if (size === 0) {
      const where = this.phase === "precopy" ? `pre-copy iteration ${this.iteration}` : "stop-and-copy";
      throw protocolError(
        step,
        "data_size",
        `pending_bytes is ${this.pending} but data_size is 0 (${where}); the vendor gives nothing`,
      );
    }
    if (size > this.region.size - offset) {
      throw protocolError(
        step,
        "data_size",
        `data_offset ${offset} + data_size ${size} exceeds the ${this.region.size}-byte region`,
      );
    }
    step = "save: read data";
    this.checkAbort(step);
    const dataRead = readData(this.region, offset, size, this.bufferFor(size), step);
    if (!pipelined) {
      await this.toSink(await dataRead);
      await this.readPending(); // the ack: the vendor may now drop this buffer
      return size;
    }
    const ack = this.readPending();
    ack.catch(() => {}); // a failed data read is the one reported
    const data = await dataRead;
    await ack;
    await this.handOver(data); // the sink codes it while the next buffer is read
    return size;
  }

  /** Step a / step f: read pending_bytes. */
  async readPending(): Promise<void> {
    const step = "save: read pending_bytes";
    this.pendingReads++;
    this.pending = await this.regs.readU64("pending_bytes", step);
  }

  async setState(mask: number, value: number, step: string): Promise<void> {
    this.checkAbort(step);
    this.touched = true;
    await setDeviceState(this.regs, mask, value, step);
  }

  bufferFor(size: number): Uint8Array {
    return this.buffers.take(size);
  }

  /** Failure: put the device back in RUNNING (it keeps its state) and say so in the error. */
  async fail(e: unknown): Promise<MigstreamError> {
    // A transaction the sink failed on came before whatever failed after it.
    const first = this.sinkFailure ?? e;
    const err = first instanceof MigstreamError ? first : atStep(first, `save: ${this.phase}`);
    // Stopped before the first device_state write: say so, an interruption report must not leave it open.
    if (!this.touched) return err.code === "ABORTED" ? withNote(err, "the device was not touched") : err;
    for (let attempt = 1; ; attempt++) {
      try {
        const s = await setDeviceState(this.regs, RECOVER_MASK, STATE_RUNNING, "save: recover RUNNING");
        return withNote(err, `device back in ${stateName(s)}`);
      } catch (r) {
        if (attempt >= RECOVER_ATTEMPTS)
          return withNote(err, `putting the device back in RUNNING failed: ${describe(r)}`);
      }
    }
  }
}
