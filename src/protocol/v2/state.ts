// MIG_DEVICE_STATE, done right (notes §1.7, cases 7, 8, 20, 21): GET never
// yields a channel; a SET that fails is followed by a GET, since the device
// may be in its old state, a state on the path, or ERROR — and ERROR is left
// only by a reset (which ends every session: the state is then RUNNING on a
// kernel device, unchanged on a libvfio-user ≥ 4f4fce4 server, so it is read
// again).
import { MigstreamError } from "../../errors.js";
import { atStep, describe, withNote } from "../failure.js";
import { MIG_STATE, type MigState, migStateName } from "./constants.js";
import type { DataChannel, MigrationDevice } from "./device-io.js";

/** Reads the device state (GET MIG_DEVICE_STATE). */
export async function readMigState(dev: MigrationDevice, step: string): Promise<MigState> {
  try {
    return await dev.getState();
  } catch (e) {
    throw atStep(e, step, "device_state");
  }
}

/** Resets the device; a note saying how it went, and the state afterwards when it could be read. */
export async function resetDevice(dev: MigrationDevice, _step: string): Promise<string> {
  try {
    await dev.reset();
  } catch (e) {
    return `device reset failed (${describe(e)})`;
  }
  try {
    return `device reset (now ${migStateName(await dev.getState())}, its state lost)`;
  } catch {
    return "device reset (its state lost)";
  }
}

/** What a failed SET left: the state re-read, and a reset when it is ERROR or unreadable. */
async function afterFailedSet(
  dev: MigrationDevice,
  step: string,
  from: MigState | undefined,
  to: MigState,
): Promise<string> {
  const tried = `${from === undefined ? "" : `${migStateName(from)} → `}${migStateName(to)} failed`;
  let now: MigState;
  try {
    now = await dev.getState();
  } catch (e) {
    return `${tried}; re-reading the state failed (${describe(e)}); ${await resetDevice(dev, step)}`;
  }
  if (now === MIG_STATE.ERROR) return `${tried}; device entered ERROR; ${await resetDevice(dev, step)}`;
  return `${tried}; device is in ${migStateName(now)}`;
}

/**
 * SET MIG_DEVICE_STATE to `to` from `from` (the state the caller believes
 * the device is in; undefined when unknown). Resolves with the channel the
 * SET opened, or null. On failure the error notes what the device is in now
 * (after a reset if it was in ERROR).
 */
export async function setMigState(
  dev: MigrationDevice,
  from: MigState | undefined,
  to: MigState,
  step: string,
): Promise<DataChannel | null> {
  try {
    return await dev.setState(to);
  } catch (e) {
    throw withNote(atStep(e, step, "device_state"), await afterFailedSet(dev, step, from, to));
  }
}

/**
 * A SET whose path must open a session (e.g. RUNNING → PRE_COPY, STOP →
 * STOP_COPY, STOP → RESUMING): a missing channel is a PROTOCOL error.
 */
export function expectChannel(ch: DataChannel | null, step: string, what: string): DataChannel {
  if (ch === null)
    throw new MigstreamError("PROTOCOL", `${step}: ${what} opened no data session (data_fd -1)`, {
      step,
      field: "data_fd",
    });
  return ch;
}

/**
 * A SET whose path must not open a session (e.g. PRE_COPY → STOP_COPY
 * continues it) while `held` is open: a new channel means driver and device
 * are out of sync (case 7; QEMU: EBADF). The new one is closed.
 */
export async function expectNoChannel(ch: DataChannel | null, held: DataChannel | null, step: string): Promise<void> {
  if (ch === null) return;
  await ch.close().catch(() => {});
  const why = held ? "while the session's data_fd is still held" : "where no session starts";
  throw new MigstreamError(
    "PROTOCOL",
    `${step}: the device returned a new data_fd ${why}: driver and device are out of sync (new fd closed)`,
    {
      step,
      field: "data_fd",
      errno: "EBADF",
    },
  );
}
