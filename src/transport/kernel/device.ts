// The kernel v2 driver's transport: a MigrationDevice over a VFIO device fd,
// issuing VFIO_DEVICE_FEATURE / VFIO_DEVICE_RESET / VFIO_MIG_GET_PRECOPY_INFO
// and read()/write() on the data fds through a Syscalls layer (Deno's FFI:
// ioctl-deno.ts; Node has none built in, see docs/TRANSPORTS.md). Every
// failing call is a DEVICE error with the errno; a SET hands out the new
// data_fd the kernel returned as the channel, and that fd is closed with it.
import { MigstreamError } from "../../errors.js";
import { errnoName } from "../../protocol/region-io.js";
import {
  type MigState,
  migStateName,
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_RESET,
  VFIO_MIG_GET_PRECOPY_INFO,
} from "../../protocol/v2/constants.js";
import type { DataChannel, MigrationDevice, PrecopyInfo } from "../../protocol/v2/device-io.js";
import {
  dataSizeRequest,
  getMigrationRequest,
  getStateRequest,
  migrationFlagsOf,
  precopyInfoOf,
  precopyInfoRequest,
  setStateRequest,
  stateOf,
  stopCopyLengthOf,
} from "./uapi.js";

/**
 * The system calls the kernel driver needs. Each returns the result, or a
 * negative errno (-errno) on failure: no exceptions across the FFI.
 */
export interface Syscalls {
  ioctl(fd: number, request: number, arg: Uint8Array | null): number;
  read(fd: number, into: Uint8Array): number;
  write(fd: number, data: Uint8Array): number;
  close(fd: number): number;
}

function failed(label: string, what: string, ret: number): MigstreamError {
  const errno = errnoName(-ret);
  return new MigstreamError("DEVICE", `${label}: ${what} failed with ${errno}`, { errno });
}

class KernelChannel implements DataChannel {
  #closed = false;
  constructor(
    private readonly sys: Syscalls,
    readonly fd: number,
    readonly label: string,
  ) {}

  #open(what: string): void {
    if (this.#closed)
      throw new MigstreamError("USAGE", `${this.label}: ${what} on a closed data fd`, { errno: "EBADF" });
  }

  async read(into: Uint8Array): Promise<number> {
    this.#open("read");
    const n = this.sys.read(this.fd, into);
    if (n < 0) throw failed(this.label, `read of ${into.length} bytes`, n);
    return n;
  }

  async write(data: Uint8Array): Promise<number> {
    this.#open("write");
    const n = this.sys.write(this.fd, data);
    if (n < 0) throw failed(this.label, `write of ${data.length} bytes`, n);
    return n;
  }

  async precopyInfo(): Promise<PrecopyInfo> {
    this.#open("VFIO_MIG_GET_PRECOPY_INFO");
    const buf = precopyInfoRequest();
    const r = this.sys.ioctl(this.fd, VFIO_MIG_GET_PRECOPY_INFO, buf);
    if (r < 0) throw failed(this.label, "VFIO_MIG_GET_PRECOPY_INFO", r);
    return precopyInfoOf(buf);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.sys.close(this.fd);
  }
}

/** A v2 MigrationDevice over the kernel's VFIO device fd (VFIO_DEVICE_FEATURE ioctls and the data fd), through `Syscalls` (Deno's FFI: denoSyscalls). */
export class KernelMigration implements MigrationDevice {
  readonly generation = 2 as const;
  /** read()/write() take any size; the driver's buffer bounds them. */
  readonly maxAccess = Infinity;
  readonly label: string;

  constructor(
    private readonly sys: Syscalls,
    /** The VFIO device fd (the VMM's, inherited, or one we opened). */
    readonly fd: number,
    /** Close `fd` on close() (we opened it). */
    private readonly owned = false,
  ) {
    this.label = `vfio device fd ${fd}`;
  }

  #feature(buf: Uint8Array, what: string): Uint8Array {
    const r = this.sys.ioctl(this.fd, VFIO_DEVICE_FEATURE, buf);
    if (r < 0) throw failed(this.label, `VFIO_DEVICE_FEATURE ${what}`, r);
    return buf;
  }

  async migrationFlags(): Promise<number> {
    return migrationFlagsOf(this.#feature(getMigrationRequest(), "GET MIGRATION"));
  }

  async getState(): Promise<MigState> {
    return stateOf(this.#feature(getStateRequest(), "GET MIG_DEVICE_STATE")).state;
  }

  async setState(s: MigState): Promise<DataChannel | null> {
    const { dataFd } = stateOf(this.#feature(setStateRequest(s), `SET MIG_DEVICE_STATE ${migStateName(s)}`));
    return dataFd >= 0 ? new KernelChannel(this.sys, dataFd, `data fd ${dataFd}`) : null;
  }

  async stopCopySize(): Promise<number> {
    return stopCopyLengthOf(this.#feature(dataSizeRequest(), "GET MIG_DATA_SIZE"));
  }

  async reset(): Promise<void> {
    const r = this.sys.ioctl(this.fd, VFIO_DEVICE_RESET, null);
    if (r < 0) throw failed(this.label, "VFIO_DEVICE_RESET", r);
  }

  async close(): Promise<void> {
    if (this.owned) this.sys.close(this.fd);
  }
}
