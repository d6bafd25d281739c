// The user side's view of a migration region: byte reads and writes at region
// offsets, plus device reset. Transports implement it (in-process simulated device,
// vfio-user socket, file descriptor); the protocol driver only ever talks to this.

import { MigstreamError } from "../errors.js";

/**
 * The user side's access to one device's migration region: what a transport
 * implements and the protocol driver uses, and nothing else does.
 *
 * - Offsets are relative to the start of the region; an access outside
 *   [0, size) is the caller's bug (USAGE). Every access transfers all its
 *   bytes or fails: a short read or write is an error, never a smaller result.
 * - Errors are MigstreamErrors: DEVICE (with `errno`) when the device refused
 *   the access, TRANSPORT or IO when the way to it failed, TIMEOUT when it did
 *   not answer. The driver decides what an error means for the migration.
 * - Without `pipelined`, the driver issues one access at a time and awaits it.
 * - Buffers: `read` may return a view the transport reuses, valid until the
 *   next access; `into` puts the bytes in the caller's buffer instead. `write`
 *   may read `data` until its promise settles.
 * - `reset` and `close` are the device's VFIO_DEVICE_RESET and the release of
 *   the transport; after `close`, accesses fail (USAGE or TRANSPORT).
 */
export interface RegionIO {
  /** Size of the migration region in bytes (header + data section). */
  readonly size: number;
  /**
   * Largest single access the transport can carry (e.g. vfio-user
   * `max_data_xfer_size`); larger data accesses are split by the driver.
   * `Infinity` when unlimited.
   */
  readonly maxAccess: number;
  /**
   * Reads `count` bytes at `offset`. When `into` is given (length ≥ count) the
   * bytes land there and `into.subarray(0, count)` is returned (zero-copy path).
   * A short read is an error. Device errors reject with a MigstreamError
   * (code "DEVICE", `errno` set).
   */
  read(offset: number, count: number, into?: Uint8Array): Promise<Uint8Array>;
  /** Writes all of `data` at `offset`; `data` must stay unchanged until the promise settles. */
  write(offset: number, data: Uint8Array): Promise<void>;
  /**
   * Accesses issued before earlier ones settled are still carried out one at
   * a time, in issue order (a pipelined transport: a vfio-user server handles
   * messages in order). The driver then issues the accesses of a fixed
   * sequence (data_offset, data_size; data, pending_bytes; data, data_size)
   * back to back instead of waiting for each reply: the device sees the same
   * accesses in the same order, one round trip apart less. Absent or false:
   * one access at a time.
   */
  readonly pipelined?: boolean;
  /**
   * write() of at most `maxAccess` bytes has taken a copy of `data` by the
   * time it returns its promise (a vfio-user message is built at once), so
   * the caller may reuse `data` before the write settles. The resume driver
   * then decodes the next buffer while the device applies this one. Absent
   * or false: `data` is needed until the write settles.
   */
  readonly writeCopies?: boolean;
  /** VFIO_DEVICE_RESET: the device returns to RUNNING, any session is dropped. */
  reset(): Promise<void>;
  /** Releases the transport (socket, fd). Idempotent. */
  close(): Promise<void>;
}

/**
 * The contract's bounds rule, for transports: an access of `count` bytes at
 * `offset` outside a region of `size` bytes is the caller's bug (USAGE), said
 * with the transport's `label` and the access (`what`: "read", "write").
 */
export function checkRegionAccess(label: string, size: number, offset: number, count: number, what: string): void {
  if (
    !Number.isSafeInteger(offset) ||
    !Number.isSafeInteger(count) ||
    offset < 0 ||
    count < 0 ||
    offset + count > size
  ) {
    throw new MigstreamError(
      "USAGE",
      `${label}: ${what} of ${count} bytes at ${offset} is outside the ${size}-byte migration region`,
      { offset },
    );
  }
}

/** errno names the protocol layer uses; numeric values are Linux's. */
export const ERRNO = {
  EPERM: 1,
  EIO: 5,
  EBADF: 9,
  E2BIG: 7,
  EAGAIN: 11,
  ENOMEM: 12,
  EFAULT: 14,
  EBUSY: 16,
  EINVAL: 22,
  ENODEV: 19,
  ENOSPC: 28,
  ESPIPE: 29,
  ENOMSG: 42,
  ENOTTY: 25,
  ENOTSUP: 95,
  ETIMEDOUT: 110,
} as const;

/** A name of ERRNO. */
export type ErrnoName = keyof typeof ERRNO;

/** Name of a Linux errno value (`"E<n>"` when unknown). */
export function errnoName(n: number): string {
  for (const [k, v] of Object.entries(ERRNO)) if (v === n) return k;
  return `E${n}`;
}
