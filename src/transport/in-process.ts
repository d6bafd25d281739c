// The in-process transport: a RegionIO straight over a VendorRegion (the
// simulated device) in the same process. Vendor errnos become DEVICE errors; a
// short read (fewer bytes than asked) is a TRANSPORT error, as with an fd.

import { VendorErrno, type VendorRegion } from "../device/vendor.js";
import { MigstreamError } from "../errors.js";
import { checkRegionAccess, errnoName, type RegionIO } from "../protocol/region-io.js";

/** A vendor that can read straight into the caller's buffer (one copy fewer). */
type ReadIntoVendor = VendorRegion & { readInto(offset: number, count: number, into: Uint8Array): Promise<number> };

/** Options of InProcessRegion. */
export interface InProcessOptions {
  /** Largest single access (default Infinity); the driver splits data accesses at it. */
  maxAccess?: number;
  /** Label for messages (default "sim"). */
  label?: string;
}

/** A RegionIO straight over a VendorRegion in the same process: vendor errnos become DEVICE errors. */
export class InProcessRegion implements RegionIO {
  readonly size: number;
  readonly maxAccess: number;
  readonly label: string;
  #closed = false;

  constructor(
    readonly vendor: VendorRegion,
    options: InProcessOptions = {},
  ) {
    this.size = vendor.size;
    this.maxAccess = options.maxAccess ?? Infinity;
    this.label = options.label ?? "sim";
    if (!(this.maxAccess >= 1))
      throw new MigstreamError("USAGE", `in-process region: maxAccess must be ≥ 1 (got ${this.maxAccess})`);
  }

  async read(offset: number, count: number, into?: Uint8Array): Promise<Uint8Array> {
    this.#check(offset, count, "read");
    if (into && into.length < count)
      throw new MigstreamError("USAGE", `${this.label}: read of ${count} bytes into a ${into.length}-byte buffer`);
    const v = this.vendor as Partial<ReadIntoVendor>;
    let got: Uint8Array;
    try {
      if (into && typeof v.readInto === "function") {
        const n = await v.readInto(offset, count, into);
        got = into.subarray(0, n);
      } else {
        got = await this.vendor.read(offset, count);
        if (into && got.length === count) {
          into.set(got);
          got = into.subarray(0, count);
        }
      }
    } catch (e) {
      throw this.#deviceError(e, `read of ${count} bytes at ${offset}`, offset);
    }
    if (got.length !== count) {
      throw new MigstreamError(
        "TRANSPORT",
        `${this.label}: short read: ${got.length} of ${count} bytes at region offset ${offset}`,
        { offset },
      );
    }
    return got;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.#check(offset, data.length, "write");
    try {
      await this.vendor.write(offset, data);
    } catch (e) {
      throw this.#deviceError(e, `write of ${data.length} bytes at ${offset}`, offset);
    }
  }

  async reset(): Promise<void> {
    this.#open("reset");
    try {
      await this.vendor.reset();
    } catch (e) {
      throw this.#deviceError(e, "reset");
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #open(what: string): void {
    if (this.#closed) throw new MigstreamError("USAGE", `${this.label}: ${what} after close`);
  }

  #check(offset: number, count: number, what: string): void {
    this.#open(what);
    checkRegionAccess(this.label, this.size, offset, count, what);
  }

  #deviceError(e: unknown, what: string, offset?: number): MigstreamError {
    if (e instanceof VendorErrno) {
      return new MigstreamError("DEVICE", `${this.label}: ${what}: ${errnoName(e.errno)} (${e.message})`, {
        errno: errnoName(e.errno),
        offset,
        cause: e,
      });
    }
    if (e instanceof MigstreamError) return e;
    return new MigstreamError(
      "INTERNAL",
      `${this.label}: ${what}: the device threw ${e instanceof Error ? e.message : String(e)}`,
      { offset, cause: e },
    );
  }
}
