// The vendor side of a migration region: what a device implementation exposes.
// The simulated device implements it; the in-process transport and the
// vfio-user server put a RegionIO / a socket in front of it.

/**
 * A device's migration region as its vendor implements it (the VFIO v1
 * layout: the register header, then the data section). A transport puts it in
 * front of a user: InProcessRegion in the same process, VfioUserServer over a
 * socket.
 *
 * - Calls come one at a time, in the user's order (the transports serialize
 *   them); offsets are region offsets the transport has checked against
 *   `size`.
 * - `read` resolves with exactly `count` bytes (fewer is a short read, which
 *   the user sees as an error); the transport copies them before the next call.
 *   `write` may keep `data` only until it settles.
 * - Refusals reject with a VendorErrno (its errno reaches the user); any other
 *   rejection is a device failure (EIO). A call may take its time (e.g. the
 *   read of data_offset while the vendor prepares the next buffer).
 * - `reset` is VFIO_DEVICE_RESET: the device returns to RUNNING and any
 *   migration session is dropped.
 */
export interface VendorRegion {
  /** Size of the migration region in bytes. */
  readonly size: number;
  /** Handles a user read of `count` bytes at region `offset`. */
  read(offset: number, count: number): Promise<Uint8Array>;
  /** Handles a user write at region `offset`. */
  write(offset: number, data: Uint8Array): Promise<void>;
  /** VFIO_DEVICE_RESET. */
  reset(): Promise<void>;
  /** Sparse mmap areas of the data section the vendor offers (may be empty). */
  readonly sparseAreas?: ReadonlyArray<{ offset: number; size: number }>;
}

/** An errno returned by the vendor for one access. */
export class VendorErrno extends Error {
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message);
    this.name = "VendorErrno";
  }
}
