// The resume path (UAPI "resuming" steps a–c): RUNNING (or STOP) → RESUMING;
// per transaction, in stream order: read data_offset, write the bytes, write
// data_size; RESUMING → RUNNING only after the stream verified.
//
// "Never RUNNING on bad data": if the items end without `verified`, or the
// iterable throws, or the device fails any step, the destination is reset
// (VFIO_DEVICE_RESET: drops the partial state and leaves RESUMING or ERROR —
// from RESUMING the only other exit is RUNNING, which would start the device on
// whatever it got) and then stopped (RUNNING → STOP), and the error reported.
// A failed destination thus ends in STOP, never RUNNING, holding none of the
// partial state.
import { MigstreamError } from "../errors.js";
import { HEADER_SIZE, STATE_MASK, STATE_RESUMING, STATE_RUNNING, STATE_STOP, stateName } from "./constants.js";
import { writeData } from "./data.js";
import { atStep, describe, protocolError, withNote } from "./failure.js";
import { iterate, openItems } from "./generation.js";
import type { ProgressListener, ResumeSummary } from "./progress.js";
import type { RegionIO } from "./region-io.js";
import { Registers } from "./registers.js";
import { ResumeRun } from "./run.js";
import { CLEAR_LOW, setDeviceState } from "./state.js";
import type { ResumeItem } from "./types.js";

/** Options of resume(): whether to start the device, cancellation, progress. */
export interface ResumeOptions {
  /**
   * Put the device in RUNNING after `verified` (default true). false leaves it
   * in RESUMING, as a VMM does until the VM starts; call `startResumed` then.
   */
  start?: boolean;
  /** Cancels the resume (ABORTED); the device is reset. Checked before every step. */
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

/** Restores the device behind `region` from `items` (one device's part of a verified stream). */
export async function resume(
  region: RegionIO,
  items: AsyncIterable<ResumeItem> | Iterable<ResumeItem>,
  options: ResumeOptions = {},
): Promise<ResumeSummary> {
  const run = new RegionResumeRun(region, options);
  try {
    return await run.run(items);
  } catch (e) {
    throw await run.fail(e);
  }
}

/**
 * RESUMING → RUNNING for a device left in RESUMING by `resume(..., { start: false })`.
 * On failure the device is reset and the error reported.
 */
export async function startResumed(region: RegionIO): Promise<void> {
  const run = new RegionResumeRun(region, {});
  const step = "resume: enter RUNNING";
  const s = await run.regs.readState(step);
  if ((s & STATE_MASK) !== STATE_RESUMING) {
    throw new MigstreamError(
      "USAGE",
      `${step}: device_state is ${stateName(s)}; startResumed needs a device left in RESUMING`,
      { step, field: "device_state" },
    );
  }
  run.touched = true;
  run.entered = true;
  try {
    await run.enterRunning();
  } catch (e) {
    throw await run.fail(e);
  }
}

/**
 * Brings a destination that a resume loaded — left in RESUMING (`start:
 * false`) or already started — to STOP without its state (reset first), as
 * when the devices it migrated with failed. Bounded; returns a note.
 */
export async function stopResumed(region: RegionIO): Promise<string> {
  const run = new RegionResumeRun(region, {});
  run.touched = true;
  run.entered = true;
  return run.stopDevice();
}

/** Most recovery rounds (read state, then reset or stop) after a failed resume. */
export const RECOVER_STEPS = 6;

class RegionResumeRun extends ResumeRun {
  readonly regs: Registers;
  /** The device was (or may have been) changed by this run: on failure it is brought to STOP. */
  touched = false;
  /** A write of RESUMING was attempted: the device may hold partial state until reset. */
  entered = false;

  constructor(
    readonly region: RegionIO,
    options: ResumeOptions,
  ) {
    super(options);
    this.regs = new Registers(region);
  }

  async run(items: AsyncIterable<ResumeItem> | Iterable<ResumeItem>): Promise<ResumeSummary> {
    const { rest } = await openItems(items, 1, "resume: check the stream");
    await this.enterResuming();
    let verified = false;
    try {
      for await (const item of iterate(rest)) {
        this.checkAbort("resume: next item");
        if (item.kind === "transaction") await this.loadBuffer(item.data);
        else {
          await this.loaded(); // a phase, and `verified`, come after the buffers before them are in
          if (item.kind === "phase") this.enterPhase(item.phase, item.iteration);
          else if (item.kind === "verified") {
            verified = true;
            break; // nothing after `verified` belongs to this device's verified state
          } else
            throw new MigstreamError("USAGE", `resume: unknown item kind '${(item as { kind: unknown }).kind}'`, {
              step: "resume: next item",
            });
        }
      }
      await this.loaded();
    } catch (e) {
      // The device's failure on a buffer came before whatever failed after it (the next item, a cancel).
      throw (await this.loadFailure()) ?? e;
    }
    if (!verified) {
      throw new MigstreamError("TRUNCATED", "resume: the items ended before the stream was verified", {
        step: "resume: wait verified",
      });
    }
    const start = this.options.start !== false;
    if (start) await this.enterRunning();
    return this.summary(start);
  }

  /** 1→4 (or 0→4): the vendor prepares its restore buffer. */
  async enterResuming(): Promise<void> {
    const step = "resume: enter RESUMING";
    this.checkAbort(step);
    this.touched = true; // from here on a failure resets and stops the destination
    const s = await this.regs.readState(step);
    const low = s & STATE_MASK;
    if (low !== STATE_RUNNING && low !== STATE_STOP) {
      this.touched = false; // not ours to touch (e.g. a resume left in RESUMING, or ERROR)
      throw new MigstreamError(
        "USAGE",
        `${step}: device_state is ${stateName(s)}; a resume starts from RUNNING or STOP`,
        { step, field: "device_state" },
      );
    }
    this.entered = true;
    await setDeviceState(this.regs, CLEAR_LOW, STATE_RESUMING, step);
  }

  /** 4→1: the vendor validates and applies what it received. */
  async enterRunning(): Promise<void> {
    const step = "resume: enter RUNNING";
    this.checkAbort(step);
    await setDeviceState(this.regs, ~STATE_RESUMING >>> 0, STATE_RUNNING, step);
  }

  /**
   * The last buffer's data and data_size writes, still in flight while the
   * next item is decoded (a transport that copies writes at once: see
   * loadBuffer); null when none is.
   */
  #loading: Promise<void> | null = null;

  /** Waits for the buffer in flight, if any (throws the device's failure). */
  async loaded(): Promise<void> {
    const p = this.#loading;
    if (p === null) return;
    await p;
    if (this.#loading === p) this.#loading = null;
  }

  /** The failure of the buffer in flight, if it failed (after it settled). */
  async loadFailure(): Promise<unknown> {
    const p = this.#loading;
    this.#loading = null;
    if (p === null) return undefined;
    return p.then(
      () => undefined,
      (e: unknown) => e,
    );
  }

  /**
   * Steps a–c for one source buffer. A buffer larger than the destination's
   * data section is an error, not split as QEMU does: splitting turns one
   * source transaction into several data_size writes, which breaks the
   * "same order, same transaction sizes" rule vendors rely on to parse what
   * they receive.
   *
   * On a pipelined transport that copies writes (RegionIO.writeCopies) the
   * data and data_size writes are left in flight when this returns: the
   * next item is decoded meanwhile, and its data_offset read goes out right
   * behind them (before their replies). The device sees the spec's order,
   * data_offset, data, data_size, buffer after buffer; only our waits move.
   * If the data_size write fails, the device may also have seen the next
   * buffer's data_offset read (no data follows it): the resume fails on the
   * first failure, and the device is reset as on any failure.
   */
  async loadBuffer(data: Uint8Array): Promise<void> {
    if (data.length === 0) {
      this.skipped++; // QEMU never writes data_size = 0; neither do we
      return;
    }
    let step = "resume: read data_offset";
    this.checkAbort(step);
    const offsetRead = this.regs.readU64("data_offset", step);
    if (this.#loading !== null) {
      offsetRead.catch(() => {}); // the previous buffer's failure is the one reported
      await this.loaded();
    }
    const offset = await offsetRead;
    if (offset < HEADER_SIZE)
      throw protocolError(step, "data_offset", `data_offset ${offset} lies in the register header (< ${HEADER_SIZE})`);
    if (offset >= this.region.size)
      throw protocolError(step, "data_offset", `data_offset ${offset} is beyond the ${this.region.size}-byte region`);
    const room = this.region.size - offset;
    if (data.length > room) {
      throw new MigstreamError(
        "DEVICE",
        `${step}: transaction ${this.transactions} (${data.length} bytes) is larger than the destination data section (${room} bytes at ${offset}); not split (would change transaction sizes)`,
        { step, field: "data_size" },
      );
    }
    step = "resume: write data";
    this.checkAbort(step);
    const written = writeData(this.region, offset, data, step);
    step = "resume: write data_size";
    if (this.region.pipelined === true) {
      // Right behind the data (the device handles them in order); a failed data write is the one reported.
      written.catch(() => {});
      this.checkAbort(step);
      const sized = this.regs.writeDataSize(data.length, step);
      sized.catch(() => {});
      const both = (async () => {
        await written;
        await sized;
        this.counted(data.length);
      })();
      if (this.region.writeCopies !== true) return both;
      both.catch(() => {}); // awaited by loaded()
      this.#loading = both;
      return;
    }
    await written;
    this.checkAbort(step);
    await this.regs.writeDataSize(data.length, step); // the vendor consumes the buffer before this returns
    this.counted(data.length);
  }

  /** Failure: drop the partial state and stop the device, and say what happened in the error (what had been written, how the device was left). */
  async fail(e: unknown): Promise<MigstreamError> {
    const err = e instanceof MigstreamError ? e : atStep(e, "resume: read stream");
    if (!this.touched) return err;
    const written = `${this.transactions} transaction${this.transactions === 1 ? "" : "s"} (${this.bytes} bytes) had been written to it before the failure`;
    return withNote(err, `${await this.stopDevice()}; ${written}`);
  }

  /**
   * Brings the destination to STOP: a device in RESUMING or ERROR (or RUNNING
   * after a RESUMING this run entered, unless it has been reset since) is reset
   * first; a clean RUNNING device is stopped. Re-reads device_state before each
   * action, so a transient errno costs one more round; bounded by RECOVER_STEPS.
   */
  async stopDevice(): Promise<string> {
    const step = "resume: stop the device";
    const notes: string[] = [];
    for (let i = 0; i < RECOVER_STEPS; i++) {
      try {
        const s = await this.regs.readState(step);
        const low = s & STATE_MASK;
        if (low === STATE_STOP) {
          notes.push(`device left in ${stateName(s)}`);
          return notes.join("; ");
        }
        if (low === STATE_RUNNING && (!this.entered || this.regs.resetsDone > 0)) {
          await setDeviceState(this.regs, CLEAR_LOW, STATE_STOP, step);
        } else {
          await this.regs.reset(step);
          notes.push("device reset (partial state dropped)");
        }
      } catch (r) {
        notes.push(describe(r));
      }
    }
    notes.push("could not bring the device to STOP");
    return notes.join("; ");
  }
}
