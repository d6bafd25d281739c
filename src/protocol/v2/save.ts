// The v2 save path (notes §2, QEMU's order):
//   live:    RUNNING → PRE_COPY (when the device offers it) → STOP_COPY → read to the end → STOP
//   suspend: RUNNING → STOP_COPY (one SET; the kernel goes through STOP) → read to the end → STOP
// The data is read into buffers (1 MiB, or less when the device estimates
// less) and each filled buffer is one transaction to the sink; the
// transactions concatenated are the device's stream. On any failure the data
// channel is closed and the device is put back in RUNNING (a SET RUNNING
// walks STOP_COPY → STOP → RUNNING or PRE_COPY → RUNNING; ERROR is reset
// first), and the error names the step.
import { MigstreamError } from "../../errors.js";
import { atStep, describe, withNote } from "../failure.js";
import { protocolOf } from "../generation.js";
import { Precopy, type PrecopyControl, type PrecopyEnd } from "../policy.js";
import type { SaveSummary } from "../progress.js";
import { recordProtocol, SaveRun } from "../run.js";
import type { SaveOptions } from "../save.js";
import type { SaveSink } from "../types.js";
import { DEFAULT_DATA_BUFFER, MIG_STATE, MIGRATION_PRE_COPY, type MigState, migStateName } from "./constants.js";
import { type Access, type FillEnd, fillBuffer } from "./data.js";
import type { DataChannel, MigrationDevice } from "./device-io.js";
import { expectChannel, expectNoChannel, readMigState, resetDevice, setMigState } from "./state.js";
import { checkMigration, dataAccess } from "./support.js";

/** Options of the save drivers (v1 and v2): SaveOptions, and the v2 transaction size. */
export interface SaveV2Options extends SaveOptions {
  /** Bytes per transaction (default: min(1 MiB, the device's STOP_COPY estimate), at least one access). */
  bufferSize?: number;
}

/** Saves the v2 device `dev` into `sink`. */
export async function saveV2(dev: MigrationDevice, sink: SaveSink, options: SaveV2Options = {}): Promise<SaveSummary> {
  const run = new SaveRunV2(dev, sink, options);
  try {
    return await run.run();
  } catch (e) {
    throw await run.fail(e);
  }
}

const now = (): number => performance.now();
/** Tries at putting the source back in RUNNING. */
const RECOVER_ATTEMPTS = 3;

class SaveRunV2 extends SaveRun {
  readonly policy: PrecopyControl;
  access!: Access;
  bufferSize = DEFAULT_DATA_BUFFER;
  /** The state this driver last put the device in (undefined before the first SET). */
  state: MigState | undefined;
  channel: DataChannel | null = null;
  /** A SET was attempted: on failure the device must be put back in RUNNING. */
  setAttempted = false;
  /** A buffer taken but not handed to the sink (a fill that read nothing): used again. */
  #spare: Uint8Array | null = null;

  constructor(
    readonly dev: MigrationDevice,
    sink: SaveSink,
    override readonly options: SaveV2Options,
  ) {
    super(sink, options);
    this.policy = options.precopyControl ?? new Precopy(options.policy, options.stopCopy);
  }

  async run(): Promise<SaveSummary> {
    const t0 = now();
    await recordProtocol(this.sink, protocolOf(this.dev));
    await this.enterPhase("setup", 0);
    if (this.dev.vmmOwnsStates) return this.runHandedOver(t0);
    const flags = await checkMigration(this.dev, "save: get MIGRATION", (s) => this.checkAbort(s));
    await this.checkRunning();
    await this.chooseBuffer();
    const tSetup = now();
    // Case 3: without PRE_COPY the save goes RUNNING → STOP_COPY in one SET.
    const live = this.options.precopy !== false && (flags & MIGRATION_PRE_COPY) !== 0;
    const precopyEnd = live ? await this.precopy() : "none";
    await this.mayStop(this.policy);
    const tPrecopy = now();
    await this.enterPhase("stopcopy", 0);
    const tStop = now();
    await this.enterStopCopy();
    await this.readToEnd();
    await this.enterStop();
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

  /** A data fd the VMM handed over in STOP_COPY: read it to the end; the VMM does every SET. */
  async runHandedOver(t0: number): Promise<SaveSummary> {
    const ch = this.dev.handedOver;
    if (!ch) throw new MigstreamError("USAGE", "save: a device whose VMM owns the states must hand over its data fd");
    await this.chooseBuffer();
    await this.mayStop(this.policy);
    const tSetup = now();
    await this.enterPhase("stopcopy", 0);
    this.channel = ch;
    await this.readToEnd();
    await this.closeChannel();
    const tEnd = now();
    await this.enterPhase("end", 0);
    return this.summary("none", { t0, setupEnd: tSetup, precopyEnd: tSetup, stopcopyStart: tSetup, stopcopyEnd: tEnd });
  }

  /** A save starts from RUNNING; a new connection may find any state (case 28), so it is read first. */
  async checkRunning(): Promise<void> {
    const step = "save: get device state";
    this.checkAbort(step);
    const s = await readMigState(this.dev, step);
    if (s !== MIG_STATE.RUNNING) {
      throw new MigstreamError("USAGE", `${step}: the device is in ${migStateName(s)}; a save starts from RUNNING`, {
        step,
        field: "device_state",
      });
    }
    this.state = s;
  }

  /** Case 15: MIG_DATA_SIZE sizes the buffer; without it (or when it fails) 1 MiB. */
  async chooseBuffer(): Promise<void> {
    this.access = dataAccess(this.dev);
    let size = this.options.bufferSize ?? DEFAULT_DATA_BUFFER;
    if (this.options.bufferSize === undefined && this.dev.stopCopySize) {
      this.checkAbort("save: get MIG_DATA_SIZE");
      try {
        const est = await this.dev.stopCopySize();
        if (Number.isSafeInteger(est) && est > 0) size = Math.min(size, est);
      } catch {
        // an estimate only: carry on with the default
      }
    }
    if (!Number.isSafeInteger(size) || size < 1)
      throw new MigstreamError("USAGE", `save: bufferSize must be a whole number ≥ 1 (got ${size})`);
    // Whole accesses only when the device takes a fixed size.
    this.bufferSize = this.access.fixed ? Math.max(1, Math.floor(size / this.access.piece)) * this.access.piece : size;
  }

  /** RUNNING → PRE_COPY, then iterations until the policy ends pre-copy. */
  async precopy(): Promise<PrecopyEnd> {
    await this.enterPhase("precopy", 0);
    // Case 6: this SET returns the data fd.
    this.channel = expectChannel(
      await this.setState(MIG_STATE.PRE_COPY, "save: enter PRE_COPY"),
      "save: enter PRE_COPY",
      "RUNNING → PRE_COPY",
    );
    const start = now();
    let last = Infinity;
    for (let done = 0; ; done++) {
      const { pending, initial } = await this.readPending(last);
      // Case 14: with precopy info, converge only once the initial bytes are all read.
      const why = await this.policy.beforeIteration(done, initial > 0 ? Infinity : pending, now() - start);
      if (why) return why;
      if (done > 0) await this.enterPhase("precopy", done);
      this.iterations = done + 1;
      // An iteration reads what was pending at its start, or until the device has nothing now.
      let got = 0;
      for (;;) {
        const { n, end } = await this.saveBuffer(true);
        got += n;
        if (end === "nothing-now" || got >= pending) break;
        const stop = this.policy.interrupt(now() - start, this.left(pending, initial, got));
        if (stop) return stop;
      }
      last = got;
      const stop = this.policy.interrupt(now() - start, this.left(pending, initial, got));
      if (stop) return stop;
    }
  }

  /**
   * What is left of this iteration's PRECOPY_INFO estimate after `got` bytes
   * (Infinity while initial bytes remain); undefined without PRECOPY_INFO,
   * where the only estimate is a whole iteration's.
   */
  left(pending: number, initial: number, got: number): number | undefined {
    if (!this.channel?.precopyInfo) return undefined;
    return got < initial ? Infinity : Math.max(0, pending - got);
  }

  /**
   * Case 13: `initial + dirty` from VFIO_MIG_GET_PRECOPY_INFO where the
   * transport has it; otherwise (vfio-user) the bytes the last iteration
   * read, the only progress signal there is (Infinity before the first).
   */
  async readPending(last: number): Promise<{ pending: number; initial: number }> {
    const ch = this.channel!;
    if (!ch.precopyInfo) {
      this.pending = last;
      return { pending: last, initial: 0 };
    }
    const step = "save: get PRECOPY_INFO";
    this.checkAbort(step);
    this.pendingReads++;
    let info: Awaited<ReturnType<typeof ch.precopyInfo>>;
    try {
      info = await ch.precopyInfo();
    } catch (e) {
      throw atStep(e, step, "precopy_info");
    }
    this.pending = info.initialBytes + info.dirtyBytes;
    return { pending: this.pending, initial: info.initialBytes };
  }

  /** PRE_COPY → STOP_COPY continues the session (case 6, 7, 16); RUNNING → STOP_COPY opens one (case 3). */
  async enterStopCopy(): Promise<void> {
    const step = "save: enter STOP_COPY";
    const ch = await this.setState(MIG_STATE.STOP_COPY, step);
    if (this.channel) await expectNoChannel(ch, this.channel, step);
    else this.channel = expectChannel(ch, step, "RUNNING → STOP_COPY");
  }

  /** Cases 11, 12: read until a read returns 0; short reads go on. */
  async readToEnd(): Promise<void> {
    for (;;) {
      const { end } = await this.saveBuffer(false);
      if (end === "end") return;
    }
  }

  /** Case 11: the stream is complete; close the fd, then STOP_COPY → STOP (ends the session). */
  async enterStop(): Promise<void> {
    const step = "save: enter STOP";
    await this.closeChannel();
    await expectNoChannel(await this.setState(MIG_STATE.STOP, step), null, step);
  }

  /** Fills one buffer and hands what it got to the sink as one transaction. */
  async saveBuffer(precopy: boolean): Promise<{ n: number; end: FillEnd }> {
    const step = "save: read data";
    this.checkAbort(step);
    const buf = this.#spare ?? this.buffers.take(this.bufferSize);
    this.#spare = null;
    const got = await fillBuffer(this.channel!, buf.subarray(0, this.bufferSize), this.access, precopy, step);
    if (got.n === 0) {
      this.#spare = buf;
      return got;
    }
    await this.toSink(buf.subarray(0, got.n));
    return got;
  }

  async setState(to: MigState, step: string): Promise<DataChannel | null> {
    this.checkAbort(step);
    const from = this.state;
    this.setAttempted = true;
    this.state = undefined; // unknown until the SET returns
    const ch = await setMigState(this.dev, from, to, step);
    this.state = to;
    return ch;
  }

  async closeChannel(): Promise<void> {
    const ch = this.channel;
    this.channel = null;
    await ch?.close();
  }

  /**
   * Failure (cases 20, 21, 24, 25): close the channel, then put the device
   * back in RUNNING — a SET RUNNING walks out of PRE_COPY or STOP_COPY; a
   * device in ERROR (or whose state cannot be read) is reset. The error says
   * what recovery did.
   */
  async fail(e: unknown): Promise<MigstreamError> {
    const err = e instanceof MigstreamError ? e : new MigstreamError("INTERNAL", `save: ${describe(e)}`, { cause: e });
    await this.closeChannel().catch(() => {});
    if (this.dev.vmmOwnsStates) return withNote(err, "the VMM owns the device: it must put it back in RUNNING");
    // Stopped before the first state change: say so, an interruption report must not leave it open.
    if (!this.setAttempted) return err.code === "ABORTED" ? withNote(err, "the device was not touched") : err;
    return withNote(err, await backToRunning(this.dev, "save: recover RUNNING"));
  }
}

/**
 * Puts a v2 device back in RUNNING (a failed save, or a source whose
 * destination failed): reads the state, SETs RUNNING, and resets a device
 * in ERROR. Bounded; returns a note for the error.
 */
export async function backToRunning(dev: MigrationDevice, step: string): Promise<string> {
  const notes: string[] = [];
  for (let attempt = 1; attempt <= RECOVER_ATTEMPTS; attempt++) {
    let s: MigState;
    try {
      s = await dev.getState();
    } catch (r) {
      notes.push(`reading the state failed (${describe(r)}); ${await resetDevice(dev, step)}`);
      continue;
    }
    if (s === MIG_STATE.RUNNING) {
      notes.push("device back in RUNNING");
      return notes.join("; ");
    }
    if (s === MIG_STATE.ERROR) {
      notes.push(await resetDevice(dev, step));
      continue;
    }
    try {
      const ch = await dev.setState(MIG_STATE.RUNNING);
      await ch?.close();
    } catch (r) {
      notes.push(`${migStateName(s)} → RUNNING failed (${describe(r)})`);
    }
  }
  notes.push("could not put the device back in RUNNING");
  return notes.join("; ");
}
