// The in-process v2 transport: a MigrationDevice straight over a
// MigrationVendor in this process, with the kernel's semantics (notes §1):
// each SET walks the path arc by arc, an arc that opens a session hands out a
// new data channel (the data_fd), one that ends it makes the old channel fail
// with ENODEV, a reset ends every session and leaves the device RUNNING, and
// PRECOPY_INFO / MIG_DATA_SIZE are offered. Vendor errnos become DEVICE errors.

import { type MigrationVendor, transportFault, walk } from "../device/migration-vendor.js";
import { VendorErrno } from "../device/vendor.js";
import { MigstreamError } from "../errors.js";
import { errnoName } from "../protocol/region-io.js";
import { MIG_STATE, type MigState } from "../protocol/v2/constants.js";
import type { DataChannel, MigrationDevice } from "../protocol/v2/device-io.js";
import { sessionEffect } from "../protocol/v2/fsm.js";
import { SessionChannel } from "./session-channel.js";

export interface InProcessMigrationOptions {
  /** Largest data access (default: the vendor's fixed size, else Infinity). */
  maxAccess?: number;
  /** Declarations about the device (default: what a simulated device says of itself). */
  fixedAccess?: boolean;
  restartsAtStopCopy?: boolean;
  writeErrorsApplied?: boolean;
  /** Offer PRECOPY_INFO and MIG_DATA_SIZE (default true, as a kernel ≥ 6.2 device). */
  kernelInfo?: boolean;
  label?: string;
}

function deviceError(label: string, what: string, e: unknown): MigstreamError {
  if (e instanceof VendorErrno)
    return new MigstreamError("DEVICE", `${label}: ${what}: ${errnoName(e.errno)} (${e.message})`, {
      errno: errnoName(e.errno),
      cause: e,
    });
  if (e instanceof MigstreamError) return e;
  return new MigstreamError(
    "INTERNAL",
    `${label}: ${what}: the device threw ${e instanceof Error ? e.message : String(e)}`,
    { cause: e },
  );
}

/** A v2 MigrationDevice straight over a MigrationVendor in the same process (each SET walked arc by arc, as the kernel does). */
export class InProcessMigration implements MigrationDevice {
  readonly generation = 2 as const;
  readonly maxAccess: number;
  readonly fixedAccess: boolean;
  readonly restartsAtStopCopy: boolean;
  readonly writeErrorsApplied: boolean;
  readonly label: string;
  readonly stopCopySize?: () => Promise<number>;
  /** The channel of the session open now, if any. */
  #current: SessionChannel | null = null;
  #closed = false;
  readonly #info: boolean;

  constructor(
    readonly vendor: MigrationVendor,
    options: InProcessMigrationOptions = {},
  ) {
    const v = vendor as Partial<{ fixedAccess: number; restarts: boolean; writeEinval: boolean }>;
    const fixed = (v.fixedAccess ?? 0) > 0;
    this.fixedAccess = options.fixedAccess ?? fixed;
    this.maxAccess = options.maxAccess ?? (fixed ? v.fixedAccess! : Infinity);
    this.restartsAtStopCopy = options.restartsAtStopCopy ?? v.restarts === true;
    this.writeErrorsApplied = options.writeErrorsApplied ?? v.writeEinval === true;
    this.label = options.label ?? "sim v2";
    this.#info = options.kernelInfo !== false;
    if (this.#info) this.stopCopySize = () => this.#call("MIG_DATA_SIZE", () => this.vendor.stopCopySize());
  }

  #open(what: string): void {
    if (this.#closed) throw new MigstreamError("USAGE", `${this.label}: ${what} after close`);
  }

  async #call<T>(what: string, f: () => Promise<T>): Promise<T> {
    this.#open(what);
    try {
      return await f();
    } catch (e) {
      throw deviceError(this.label, what, e);
    }
  }

  migrationFlags(): Promise<number> {
    return this.#call("GET MIGRATION", async () => {
      transportFault(this.vendor, "get migration");
      return this.vendor.migrationFlags;
    });
  }

  getState(): Promise<MigState> {
    return this.#call("GET MIG_DEVICE_STATE", async () => {
      transportFault(this.vendor, "get state");
      return this.vendor.state;
    });
  }

  setState(to: MigState): Promise<DataChannel | null> {
    return this.#call(`SET MIG_DEVICE_STATE ${to}`, async () => {
      let opened: SessionChannel | null = null;
      try {
        await walk(this.vendor, to, (a, b) => {
          const fx = sessionEffect(a, b);
          if (fx === "ends") {
            if (this.#current) this.#current.alive = false;
            this.#current = null;
            if (opened) opened.alive = false;
            opened = null;
          } else if (fx === "opens") {
            opened = this.#newChannel(b);
          }
        });
      } catch (e) {
        // A failed SET hands out no fd (data_fd -1): a session opened on its path is gone with it.
        if (opened) (opened as SessionChannel).alive = false;
        throw e;
      }
      if (opened) {
        this.#current = opened;
        return opened;
      }
      const extra = this.vendor.hit?.("new data_fd", -1, to);
      return extra ? this.#newChannel(to) : null;
    });
  }

  #newChannel(s: MigState): SessionChannel {
    const v = this.vendor;
    const label = this.label;
    return new SessionChannel(`${label} data fd`, {
      read: (into) =>
        v.readData(into).catch((e) => Promise.reject(deviceError(label, `read of ${into.length} bytes`, e))),
      write: (d) => v.writeData(d).catch((e) => Promise.reject(deviceError(label, `write of ${d.length} bytes`, e))),
      ...(this.#info && s !== MIG_STATE.RESUMING
        ? { precopyInfo: () => this.#call("PRECOPY_INFO", () => v.precopyInfo()) }
        : {}),
    });
  }

  async reset(): Promise<void> {
    await this.#call("VFIO_DEVICE_RESET", () => this.vendor.reset(false));
    if (this.#current) this.#current.alive = false;
    this.#current = null;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}
