// File-descriptor region transport: the migration region as a window of a
// file descriptor, accessed with positioned reads and writes at
// `regionOffset + x` (async fs.read/fs.write, so a device that blocks in a
// read does not block the event loop).
//
// How a VMM hands a VFIO device to migstream:
//   1. The VMM owns the VFIO device fd (from VFIO_GROUP_GET_DEVICE_FD or
//      /dev/vfio/devices/*). It calls VFIO_DEVICE_GET_REGION_INFO on each index,
//      finds the region whose VFIO_REGION_INFO_CAP_TYPE is (3, 1) (the v1
//      migration region), and notes its `offset` and `size`.
//   2. It starts migstream with the device fd inherited, e.g. from Node:
//        spawn("migstream", ["save", "--device", `fd:3,offset=0x${off},size=0x${size}`],
//              { stdio: ["pipe", "pipe", "inherit", deviceFd] })
//      (stdio entry 3 makes the child's fd 3 the device fd), or from a shell /
//      C VMM by dup2()ing it to a known number without FD_CLOEXEC.
//   3. Alternatively, a process may name an fd it can see through procfs:
//      `file:/proc/<vmm-pid>/fd/<n>,offset=...,size=...` re-opens the same
//      device (needs the same permissions as opening the device node).
// The offset must be the one GET_REGION_INFO returned (for vfio-pci it is
// index << 40, but that encoding is private to the kernel: never compute it).
//
// VFIO_DEVICE_RESET is an ioctl, which Node cannot issue: reset() rejects with
// TRANSPORT and the VMM must reset the device itself when the driver reports
// that it needs one.
import { MigstreamError } from "../../errors.js";
import { checkRegionAccess, type RegionIO } from "../../protocol/region-io.js";
import { builtin } from "../builtin.js";

/** Largest single pread/pwrite (Linux moves at most ~2 GiB per call; the driver splits above this). */
const MAX_FD_ACCESS = 64 << 20;
/** Smallest region that can hold the v1 register header. */
const MIN_REGION_SIZE = 32;

type Fs = typeof import("node:fs");

/** Where an FdRegion's descriptor comes from: an inherited fd, or a path to open. */
export type FdSource = { kind: "fd"; fd: number } | { kind: "file"; path: string };

/** Options of FdRegion: where the region lies in the descriptor, and its size. */
export interface FdRegionOptions {
  /** Byte offset of the migration region in the fd (from VFIO_DEVICE_GET_REGION_INFO). */
  offset: number;
  /** Region size; for a regular file it defaults to the rest of the file. */
  size?: number;
}

/** errno names that say the fd itself is unusable (not a device answer). */
const FD_FAULTS = new Set(["ESPIPE", "EBADF", "EISDIR"]);

/** Maps an fs error of a positioned access to a MigstreamError. */
export function fdError(e: unknown, what: string, label: string): MigstreamError {
  const code = (e as { code?: unknown })?.code;
  const errno = typeof code === "string" ? code : undefined;
  const msg = e instanceof Error ? e.message : String(e);
  if (errno === "ESPIPE") {
    return new MigstreamError(
      "TRANSPORT",
      `${label}: positioned ${what} failed with ESPIPE: the fd must be a seekable device fd (a VFIO device fd or a regular file), not a pipe, FIFO or socket`,
      { errno, cause: e },
    );
  }
  if (errno === undefined || FD_FAULTS.has(errno))
    return new MigstreamError("TRANSPORT", `${label}: ${what} failed: ${msg}`, { errno, cause: e });
  // Anything else is the device (vendor driver) answering with an errno.
  return new MigstreamError("DEVICE", `${label}: ${what} failed with ${errno}`, { errno, cause: e });
}

/** A RegionIO over a file descriptor: a VFIO device fd at its migration region's offset (or a file standing in for one). */
export class FdRegion implements RegionIO {
  readonly maxAccess = MAX_FD_ACCESS;
  private closed = false;

  private constructor(
    private readonly fs: Fs,
    readonly fd: number,
    /** Offset of the region inside the fd. */
    readonly regionOffset: number,
    readonly size: number,
    /** We opened the fd (file:) and close it; an inherited fd (fd:N) belongs to the caller. */
    private readonly owned: boolean,
    readonly label: string,
  ) {}

  /** Opens a region on an inherited fd or a file path. */
  static async open(src: FdSource, opts: FdRegionOptions): Promise<FdRegion> {
    const fs = await builtin<Fs>("fs");
    const label = src.kind === "fd" ? `fd ${src.fd}` : src.path;
    if (!Number.isSafeInteger(opts.offset) || opts.offset < 0)
      throw new MigstreamError("USAGE", `${label}: bad region offset ${opts.offset}`);
    let fd: number;
    if (src.kind === "fd") {
      if (!Number.isInteger(src.fd) || src.fd < 0) throw new MigstreamError("USAGE", `bad fd number ${src.fd}`);
      fd = src.fd;
    } else {
      try {
        fd = fs.openSync(src.path, "r+");
      } catch (e) {
        const code = (e as { code?: string }).code;
        throw new MigstreamError(
          "TRANSPORT",
          `cannot open ${src.path}: ${e instanceof Error ? e.message : String(e)}`,
          { errno: code, cause: e },
        );
      }
    }
    const owned = src.kind === "file";
    try {
      let st: import("node:fs").Stats;
      try {
        st = fs.fstatSync(fd);
      } catch (e) {
        throw new MigstreamError(
          "TRANSPORT",
          `${label}: not an open file descriptor (${e instanceof Error ? e.message : String(e)})`,
          { errno: (e as { code?: string }).code, cause: e },
        );
      }
      if (st.isFIFO() || st.isSocket()) {
        throw new MigstreamError(
          "TRANSPORT",
          `${label} is a ${st.isFIFO() ? "pipe/FIFO" : "socket"}: the fd must be a seekable device fd (a VFIO device fd or a regular file)`,
          { errno: "ESPIPE" },
        );
      }
      let size = opts.size;
      if (st.isFile()) {
        const rest = st.size - opts.offset;
        size ??= rest;
        if (size > rest)
          throw new MigstreamError(
            "USAGE",
            `${label}: region 0x${opts.offset.toString(16)}+0x${size.toString(16)} runs past the end of the ${st.size}-byte file`,
          );
      }
      if (size === undefined)
        throw new MigstreamError(
          "USAGE",
          `${label}: size= is required for a device fd (the region size from VFIO_DEVICE_GET_REGION_INFO)`,
        );
      if (!Number.isSafeInteger(size) || size < MIN_REGION_SIZE)
        throw new MigstreamError(
          "USAGE",
          `${label}: region size ${size} is below the ${MIN_REGION_SIZE}-byte register header`,
        );
      return new FdRegion(fs, fd, opts.offset, size, owned, label);
    } catch (e) {
      if (owned) fs.closeSync(fd);
      throw e;
    }
  }

  async read(offset: number, count: number, into?: Uint8Array): Promise<Uint8Array> {
    this.check(offset, count, "read");
    if (into && into.length < count)
      throw new MigstreamError("USAGE", `read of ${count} bytes into a ${into.length}-byte buffer`);
    const buf = into ?? new Uint8Array(count);
    if (count === 0) return buf.subarray(0, 0);
    const pos = this.regionOffset + offset;
    const n = await new Promise<number>((resolve, reject) => {
      this.fs.read(this.fd, buf, 0, count, pos, (err, bytes) =>
        err ? reject(fdError(err, `read of ${count} bytes at region offset ${offset}`, this.label)) : resolve(bytes),
      );
    });
    if (n !== count)
      throw new MigstreamError(
        "TRANSPORT",
        `${this.label}: short read: ${n} of ${count} bytes at region offset ${offset}`,
        { offset },
      );
    return buf.subarray(0, count);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.check(offset, data.length, "write");
    if (data.length === 0) return;
    const pos = this.regionOffset + offset;
    const n = await new Promise<number>((resolve, reject) => {
      this.fs.write(this.fd, data, 0, data.length, pos, (err, bytes) =>
        err
          ? reject(fdError(err, `write of ${data.length} bytes at region offset ${offset}`, this.label))
          : resolve(bytes),
      );
    });
    if (n !== data.length)
      throw new MigstreamError(
        "TRANSPORT",
        `${this.label}: short write: ${n} of ${data.length} bytes at region offset ${offset}`,
        { offset },
      );
  }

  /** Always rejects: VFIO_DEVICE_RESET is an ioctl; the VMM that owns the fd must issue it. */
  async reset(): Promise<void> {
    throw new MigstreamError(
      "TRANSPORT",
      `${this.label}: device reset is unsupported on an fd region (VFIO_DEVICE_RESET is an ioctl Node cannot issue); the VMM owning the device must reset it`,
      { step: "device reset", errno: "ENOTSUP" },
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.owned) this.fs.closeSync(this.fd);
  }

  private check(offset: number, count: number, what: string): void {
    if (this.closed) throw new MigstreamError("TRANSPORT", `${this.label}: region is closed`);
    checkRegionAccess(this.label, this.size, offset, count, what);
    if (count > MAX_FD_ACCESS)
      throw new MigstreamError("USAGE", `${this.label}: ${what} of ${count} bytes exceeds ${MAX_FD_ACCESS}`);
  }
}
