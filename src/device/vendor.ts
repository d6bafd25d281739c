// The vendor side of a migration region: what a device implementation exposes.
// The simulated device implements it; the in-process transport and the
// vfio-user server put a RegionIO / a socket in front of it.

export interface VendorRegion {
  /** Size of the migration region in bytes. */
  readonly size: number;
  /**
   * Handles a user read of `count` bytes at region `offset`. Rejects with a
   * VendorErrno to return an errno to the user. May block (e.g. data_offset).
   */
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
