// The v2 resume path: the stream's record is checked first (a v1 stream is
// refused before the device is touched); then STOP (or RUNNING) → RESUMING,
// every transaction's bytes written to the data stream in order (for a device
// that restarts at STOP_COPY, the stop-copy phase's only), and after the
// `verified` item RESUMING → STOP, where the device validates what it got;
// then STOP → RUNNING, or the device is left in STOP for the VMM (start: false).
//
// "Never RUNNING on bad data": on any failure the channel is closed and the
// device is brought to STOP with none of the partial state — RESUMING and
// ERROR are left by a reset (a kernel device comes back RUNNING and is then
// stopped; a libvfio-user server keeps its state across a reset, so RESUMING
// → STOP is asked, which fails on incomplete data and leaves it RESUMING,
// still not RUNNING).
import { MigstreamError } from "../../errors.js";
import { describe, withNote } from "../failure.js";
import { iterate, openItems } from "../generation.js";
import type { ResumeSummary } from "../progress.js";
import type { ResumeOptions } from "../resume.js";
import { ResumeRun } from "../run.js";
import type { ResumeItem } from "../types.js";
import { MIG_STATE, type MigState, migStateName } from "./constants.js";
import { type Access, writeAll } from "./data.js";
import type { DataChannel, MigrationDevice } from "./device-io.js";
import { expectChannel, expectNoChannel, readMigState, resetDevice, setMigState } from "./state.js";
import { checkMigration, dataAccess } from "./support.js";

/** Restores the v2 device `dev` from `items` (one device's part of a verified stream). */
export async function resumeV2(
  dev: MigrationDevice,
  items: AsyncIterable<ResumeItem> | Iterable<ResumeItem>,
  options: ResumeOptions = {},
): Promise<ResumeSummary> {
  const run = new ResumeRunV2(dev, options);
  try {
    return await run.run(items);
  } catch (e) {
    throw await run.fail(e);
  }
}

/** STOP → RUNNING for a device left in STOP by `resumeV2(..., { start: false })`. */
export async function startResumedV2(dev: MigrationDevice): Promise<void> {
  const step = "resume: enter RUNNING";
  const s = await readMigState(dev, step);
  if (s !== MIG_STATE.STOP) {
    throw new MigstreamError(
      "USAGE",
      `${step}: the device is in ${migStateName(s)}; startResumedV2 needs a device left in STOP by a resume`,
      { step, field: "device_state" },
    );
  }
  await expectNoChannel(await setMigState(dev, s, MIG_STATE.RUNNING, step), null, step);
}

/** Most recovery rounds after a failed resume. */
const RECOVER_STEPS = 6;

class ResumeRunV2 extends ResumeRun {
  access!: Access;
  channel: DataChannel | null = null;
  /** A SET was attempted: on failure the device is brought to STOP. */
  touched = false;
  /** Pre-copy bytes are not part of this device's state (it restarts at STOP_COPY). */
  stopCopyOnly = false;
  /** Bytes held back until a whole fixed-size access is there. */
  #carry = new Uint8Array(0);

  constructor(
    readonly dev: MigrationDevice,
    options: ResumeOptions,
  ) {
    super(options);
  }

  async run(items: AsyncIterable<ResumeItem> | Iterable<ResumeItem>): Promise<ResumeSummary> {
    const { protocol, rest } = await openItems(items, 2, "resume: check the stream");
    this.stopCopyOnly = protocol.generation === 2 && protocol.restartsAtStopCopy;
    this.access = dataAccess(this.dev);
    await checkMigration(this.dev, "resume: get MIGRATION", (s) => this.checkAbort(s));
    const vmm = this.dev.vmmOwnsStates === true;
    if (vmm) this.channel = this.handedOver();
    else await this.enterResuming();
    let verified = false;
    for await (const item of iterate(rest)) {
      this.checkAbort("resume: next item");
      if (item.kind === "transaction") await this.writeTransaction(item.data);
      else if (item.kind === "phase") this.enterPhase(item.phase, item.iteration);
      else if (item.kind === "verified") {
        verified = true;
        break;
      } else
        throw new MigstreamError("USAGE", `resume: unexpected item kind '${(item as { kind: unknown }).kind}'`, {
          step: "resume: next item",
        });
    }
    if (!verified)
      throw new MigstreamError("TRUNCATED", "resume: the items ended before the stream was verified", {
        step: "resume: wait verified",
      });
    await this.flushCarry();
    if (vmm) {
      // The VMM closes its fd and SETs STOP (where the device validates) and RUNNING itself.
      const ch = this.channel;
      this.channel = null;
      await ch?.close();
      return this.summary(false);
    }
    await this.enterStop();
    const start = this.options.start !== false;
    if (start) await this.enterRunning();
    return this.summary(start);
  }

  /** The data fd a VMM handed over in RESUMING. */
  handedOver(): DataChannel {
    const ch = this.dev.handedOver;
    if (!ch) throw new MigstreamError("USAGE", "resume: a device whose VMM owns the states must hand over its data fd");
    return ch;
  }

  /** RUNNING or STOP → RESUMING: the SET opens the write session. */
  async enterResuming(): Promise<void> {
    const step = "resume: enter RESUMING";
    this.checkAbort(step);
    const s = await readMigState(this.dev, "resume: get device state");
    if (s !== MIG_STATE.RUNNING && s !== MIG_STATE.STOP) {
      throw new MigstreamError(
        "USAGE",
        `${step}: the device is in ${migStateName(s)}; a resume starts from RUNNING or STOP`,
        { step, field: "device_state" },
      );
    }
    this.touched = true;
    this.channel = expectChannel(
      await setMigState(this.dev, s, MIG_STATE.RESUMING, step),
      step,
      `${migStateName(s)} → RESUMING`,
    );
  }

  /** One transaction's bytes, in order, cut as the device takes them. */
  async writeTransaction(data: Uint8Array): Promise<void> {
    if (this.stopCopyOnly && this.phase !== "stopcopy") {
      this.skipped++; // pre-copy bytes of a device that restarts its stream at STOP_COPY
      return;
    }
    const step = "resume: write data";
    this.checkAbort(step);
    let rest = data;
    if (this.access.fixed) {
      const piece = this.access.piece;
      if (this.#carry.length > 0) {
        const need = piece - this.#carry.length;
        const joined = new Uint8Array(this.#carry.length + Math.min(need, rest.length));
        joined.set(this.#carry);
        joined.set(rest.subarray(0, need), this.#carry.length);
        rest = rest.subarray(Math.min(need, rest.length));
        this.#carry = joined;
        if (joined.length < piece) return this.counted(data.length);
        await writeAll(this.channel!, joined, this.access, this.dev.writeErrorsApplied === true, step);
        this.#carry = new Uint8Array(0);
      }
      const whole = rest.length - (rest.length % piece);
      if (whole < rest.length) this.#carry = rest.slice(whole);
      rest = rest.subarray(0, whole);
    }
    await writeAll(this.channel!, rest, this.access, this.dev.writeErrorsApplied === true, step);
    this.counted(data.length);
  }

  /** A stream whose length is no multiple of a fixed access size cannot be written. */
  async flushCarry(): Promise<void> {
    if (this.#carry.length === 0) return;
    throw new MigstreamError(
      "PROTOCOL",
      `resume: write data: the stream ends with ${this.#carry.length} bytes, less than the ${this.access.piece} bytes this device takes per write`,
      {
        step: "resume: write data",
        field: "data",
      },
    );
  }

  /** Case 19: close the fd, then RESUMING → STOP, where the device validates the data. */
  async enterStop(): Promise<void> {
    const step = "resume: enter STOP";
    this.checkAbort(step);
    const ch = this.channel;
    this.channel = null;
    await ch?.close();
    await expectNoChannel(await setMigState(this.dev, MIG_STATE.RESUMING, MIG_STATE.STOP, step), null, step);
  }

  async enterRunning(): Promise<void> {
    const step = "resume: enter RUNNING";
    this.checkAbort(step);
    await expectNoChannel(await setMigState(this.dev, MIG_STATE.STOP, MIG_STATE.RUNNING, step), null, step);
  }

  async fail(e: unknown): Promise<MigstreamError> {
    const err =
      e instanceof MigstreamError ? e : new MigstreamError("INTERNAL", `resume: ${describe(e)}`, { cause: e });
    const ch = this.channel;
    this.channel = null;
    await ch?.close().catch(() => {});
    if (this.dev.vmmOwnsStates)
      return withNote(err, "the VMM owns the device: it must reset it (partial state written)");
    if (!this.touched) return err;
    const written = `${this.transactions} transaction${this.transactions === 1 ? "" : "s"} (${this.bytes} bytes) had been written to it before the failure`;
    return withNote(err, `${await stopDestination(this.dev)}; ${written}`);
  }
}

/**
 * Brings a failed destination to STOP, dropping partial state (cases 19–21):
 * RESUMING and ERROR are reset; RUNNING reached through a reset is stopped;
 * a state a reset did not change (libvfio-user) gets SET STOP, which a device
 * refuses on incomplete data (then it stays RESUMING: still not RUNNING).
 * Bounded; returns a note for the error.
 */
export async function stopDestination(dev: MigrationDevice): Promise<string> {
  const step = "resume: stop the device";
  const notes: string[] = [];
  let resetDone = false;
  for (let i = 0; i < RECOVER_STEPS; i++) {
    let s: MigState;
    try {
      s = await dev.getState();
    } catch (r) {
      notes.push(`reading the state failed (${describe(r)})`);
      continue;
    }
    if (s === MIG_STATE.STOP) {
      notes.push("device left in STOP");
      return notes.join("; ");
    }
    try {
      if ((s === MIG_STATE.RESUMING || s === MIG_STATE.ERROR) && !resetDone) {
        resetDone = true;
        notes.push(await resetDevice(dev, step));
      } else {
        const ch = await dev.setState(MIG_STATE.STOP);
        await ch?.close();
      }
    } catch (r) {
      notes.push(`${migStateName(s)} → STOP failed (${describe(r)})`);
      if (s === MIG_STATE.RESUMING && i >= 2) {
        notes.push("device left in RESUMING (not RUNNING)");
        return notes.join("; ");
      }
    }
  }
  notes.push("could not bring the device to STOP");
  return notes.join("; ");
}
