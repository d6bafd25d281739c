// The data channel of a transport without real data fds (the in-process
// simulated device, vfio-user): it stands for the data_fd of one session and
// behaves like one — once the session ends (the state left PRE_COPY,
// STOP_COPY or RESUMING, or a reset) every read and write fails with ENODEV
// (case 22), and after close() with EBADF; only close() is always allowed.
import { MigstreamError } from "../errors.js";
import type { DataChannel, PrecopyInfo } from "../protocol/v2/device-io.js";

/** How the session's bytes actually move. */
export interface SessionIO {
  read(into: Uint8Array): Promise<number>;
  write(data: Uint8Array): Promise<number>;
  precopyInfo?(): Promise<PrecopyInfo>;
}

export class SessionChannel implements DataChannel {
  /** False once the session ended (the transport says so). */
  alive = true;
  closed = false;
  readonly precopyInfo?: () => Promise<PrecopyInfo>;

  constructor(
    readonly label: string,
    private readonly io: SessionIO,
  ) {
    const info = io.precopyInfo?.bind(io);
    if (info) this.precopyInfo = () => this.#check("VFIO_MIG_GET_PRECOPY_INFO").then(info);
  }

  async #check(what: string): Promise<void> {
    if (this.closed)
      throw new MigstreamError("USAGE", `${this.label}: ${what} on a closed data fd`, { errno: "EBADF" });
    if (!this.alive)
      throw new MigstreamError("DEVICE", `${this.label}: ${what}: ENODEV (the data session ended)`, {
        errno: "ENODEV",
      });
  }

  async read(into: Uint8Array): Promise<number> {
    await this.#check("read");
    return this.io.read(into);
  }

  async write(data: Uint8Array): Promise<number> {
    await this.#check("write");
    return this.io.write(data);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
