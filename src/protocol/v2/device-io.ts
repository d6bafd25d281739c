// The user side's view of a v2 migration device: the MIG_DEVICE_STATE state
// machine, the data stream, and device reset. Transports implement it (the
// in-process simulated device, a vfio-user v2 server, a data fd handed over by
// a VMM); the v2 driver (save.ts, resume.ts) only ever talks to this.
//
// The contract follows the kernel UAPI (notes §1): a SET returns the data
// channel an arc on its path opened (the kernel's new data_fd), or null
// (data_fd -1); a channel stays valid until its session ends (the state left
// the saving/resuming states, or a reset), after which it fails with ENODEV
// and may only be closed. Transports without fds (vfio-user) present their
// implicit session the same way.
//
// Errors: a device errno rejects with MigstreamError("DEVICE", errno set,
// e.g. "EINVAL", "ENOTTY", "ENOMSG"); a transport failure with TRANSPORT.
import type { MigState } from "./constants.js";

/** struct vfio_precopy_info's two counters (kernel only). */
export interface PrecopyInfo {
  /** Bytes of the initial state not read yet (falls to 0). */
  initialBytes: number;
  /** Bytes the running device dirtied since (rises and falls). */
  dirtyBytes: number;
}

/** One data session: the data fd, or vfio-user's MIG_DATA_READ/WRITE. */
export interface DataChannel {
  /**
   * One read() of at most `into.length` bytes into `into`; resolves with the
   * count. 0 means end of stream in STOP_COPY and "nothing now" in PRE_COPY;
   * a PRE_COPY "nothing now" may also reject with errno ENOMSG. Fewer bytes
   * than asked is not the end.
   */
  read(into: Uint8Array): Promise<number>;
  /** One write() in RESUMING; resolves with the bytes the device took (may be fewer; 0 is an error to the caller). */
  write(data: Uint8Array): Promise<number>;
  /** VFIO_MIG_GET_PRECOPY_INFO (PRE_COPY only; EINVAL elsewhere). Absent where the transport has none (vfio-user). */
  precopyInfo?(): Promise<PrecopyInfo>;
  /** Releases the channel (closes the fd). Idempotent; the only call allowed after its session ended. */
  close(): Promise<void>;
}

/**
 * A device's v2 migration interface. `generation` tells it apart from a v1
 * RegionIO where both may appear (see drive.ts).
 */
export interface MigrationDevice {
  readonly generation: 2;
  /**
   * Largest data read or write the transport carries in one call (vfio-user:
   * min(max_data_xfer_size, 1 MiB)); Infinity when unlimited. The driver
   * never asks for more.
   */
  readonly maxAccess: number;
  /**
   * Every data read and write must be exactly `maxAccess` bytes (a device
   * that asserts its access size, like libvfio-user's gpio sample). Declared
   * by whoever opens the device; default false.
   */
  readonly fixedAccess?: boolean;
  /**
   * The device starts its stream over at PRE_COPY → STOP_COPY (its stop-copy
   * data is a whole state by itself; libvfio-user's sample server). The save
   * driver records it in the stream, and a destination then gets only the
   * stop-copy bytes. Declared by whoever opens the device; default false (the
   * kernel's rule: one stream across PRE_COPY → STOP_COPY).
   */
  readonly restartsAtStopCopy?: boolean;
  /**
   * The device answers MIG_DATA_WRITE with EINVAL although it applied the
   * bytes (libvfio-user's gpio sample). With this declared, the resume driver
   * counts such a write as taken and relies on RESUMING → STOP to validate.
   */
  readonly writeErrorsApplied?: boolean;
  /**
   * The VMM runs the state machine and handed over the session's data fd
   * (`handedOver`): it already SET STOP_COPY (save) or RESUMING (restore).
   * The drivers then only move the bytes, issue no GET/SET, and on a failure
   * leave recovery to the VMM.
   */
  readonly vmmOwnsStates?: boolean;
  readonly handedOver?: DataChannel;
  /** GET MIGRATION: the VFIO_MIGRATION_* flags. No v2 migration: DEVICE with ENOTTY (kernel) or EINVAL (vfio-user). */
  migrationFlags(): Promise<number>;
  /** GET MIG_DEVICE_STATE (never hands out a channel). */
  getState(): Promise<MigState>;
  /** SET MIG_DEVICE_STATE: the channel an arc on the path opened, or null. */
  setState(state: MigState): Promise<DataChannel | null>;
  /** GET MIG_DATA_SIZE: estimated STOP_COPY bytes. Absent where the transport has none (vfio-user). */
  stopCopySize?(): Promise<number>;
  /** VFIO_DEVICE_RESET / DEVICE_RESET: ends any session. The state afterwards is the transport's (kernel: RUNNING). */
  reset(): Promise<void>;
  /** Releases the transport. Idempotent. */
  close(): Promise<void>;
}
