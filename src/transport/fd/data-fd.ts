// A v2 data fd handed over by a VMM (`fd:N,protocol=v2`): the VMM keeps the
// state machine — it issued VFIO_DEVICE_FEATURE SET MIG_DEVICE_STATE (STOP_COPY
// on the source, RESUMING on the destination), got the data_fd, and passes it
// to migstream, which only moves the bytes: reads until read() returns 0
// (save) or writes the stream (restore), with plain read()/write() — never
// pread/pwrite, which a data fd refuses with ESPIPE (case 23). Afterwards the
// VMM closes its copy and SETs the next state (STOP, or STOP → RUNNING after
// the restore); on a failure it is the VMM that puts the source back in
// RUNNING or resets the destination. See docs/TRANSPORTS.md for the sequence.
import { MigstreamError } from "../../errors.js";
import { MIGRATION_STOP_COPY, type MigState } from "../../protocol/v2/constants.js";
import type { DataChannel, MigrationDevice } from "../../protocol/v2/device-io.js";
import { builtin } from "../builtin.js";
import { fdError } from "./region.js";

type Fs = typeof import("node:fs");

/** Largest single read()/write() on a data fd (the driver's buffer is 1 MiB anyway). */
const MAX_DATA_FD_ACCESS = 16 << 20;

/** The handed-over fd as the session's data channel (plain read()/write() at the fd's own position). */
class FdChannel implements DataChannel {
  closed = false;
  constructor(
    private readonly fs: Fs,
    readonly fd: number,
    readonly label: string,
  ) {}

  read(into: Uint8Array): Promise<number> {
    if (this.closed)
      return Promise.reject(new MigstreamError("USAGE", `${this.label}: read after close`, { errno: "EBADF" }));
    return new Promise((resolve, reject) => {
      // position null: read(2) at the current position — a data fd is a stream.
      this.fs.read(this.fd, into, 0, into.length, null, (err, n) =>
        err ? reject(fdError(err, `read of ${into.length} bytes`, this.label)) : resolve(n),
      );
    });
  }

  write(data: Uint8Array): Promise<number> {
    if (this.closed)
      return Promise.reject(new MigstreamError("USAGE", `${this.label}: write after close`, { errno: "EBADF" }));
    return new Promise((resolve, reject) => {
      this.fs.write(this.fd, data, 0, data.length, null, (err, n) =>
        err ? reject(fdError(err, `write of ${data.length} bytes`, this.label)) : resolve(n),
      );
    });
  }

  /** The fd is the VMM's: migstream stops using it, the VMM closes it. */
  async close(): Promise<void> {
    this.closed = true;
  }
}

/**
 * A MigrationDevice whose state machine the VMM runs: `vmmOwnsStates` tells
 * the v2 drivers to skip every SET/GET and use `handedOver` as the session.
 */
export class HandedOverDataFd implements MigrationDevice {
  readonly generation = 2 as const;
  readonly vmmOwnsStates = true;
  readonly maxAccess = MAX_DATA_FD_ACCESS;
  readonly handedOver: DataChannel;
  readonly label: string;

  private constructor(
    fs: Fs,
    readonly fd: number,
    readonly restartsAtStopCopy: boolean,
  ) {
    this.label = `data fd ${fd}`;
    this.handedOver = new FdChannel(fs, fd, this.label);
  }

  /** Wraps inherited fd `fd` (checked to be open). */
  static async open(fd: number, opts: { restartsAtStopCopy?: boolean } = {}): Promise<HandedOverDataFd> {
    const fs = await builtin<Fs>("fs");
    if (!Number.isInteger(fd) || fd < 0) throw new MigstreamError("USAGE", `bad fd number ${fd}`);
    try {
      fs.fstatSync(fd);
    } catch (e) {
      throw new MigstreamError(
        "TRANSPORT",
        `data fd ${fd}: not an open file descriptor (${e instanceof Error ? e.message : String(e)})`,
        { errno: (e as { code?: string }).code, cause: e },
      );
    }
    return new HandedOverDataFd(fs, fd, opts.restartsAtStopCopy === true);
  }

  #owned(what: string): Promise<never> {
    return Promise.reject(
      new MigstreamError("USAGE", `${this.label}: ${what} is the VMM's (it owns the device fd and the state machine)`),
    );
  }

  /** The VMM checked migration support before it handed the fd over. */
  async migrationFlags(): Promise<number> {
    return MIGRATION_STOP_COPY;
  }
  getState(): Promise<MigState> {
    return this.#owned("GET MIG_DEVICE_STATE");
  }
  setState(_s: MigState): Promise<DataChannel | null> {
    return this.#owned("SET MIG_DEVICE_STATE");
  }
  reset(): Promise<void> {
    return this.#owned("VFIO_DEVICE_RESET");
  }
  async close(): Promise<void> {
    await this.handedOver.close();
  }
}
