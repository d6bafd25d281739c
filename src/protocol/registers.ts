// Native-width access to the register header: u32 device_state, u64
// pending_bytes / data_offset / data_size, little-endian, one access each.
// Every failure names the step and the field.
import { MigstreamError } from "../errors.js";
import { FIELDS, type Field } from "./constants.js";
import { atStep, protocolError } from "./failure.js";
import type { RegionIO } from "./region-io.js";

/** Registers need one 8-byte access; a transport that cannot carry it is unusable. */
export const MIN_ACCESS = 8;
/** Largest high word of a u64 that is still a safe integer (2^53 − 1). */
const MAX_SAFE_HIGH = 0x1f_ffff;

/** One 8-byte scratch buffer for a register's value, and a view of it. */
class Slot {
  readonly buf = new Uint8Array(8);
  readonly view = new DataView(this.buf.buffer);
}

/**
 * The register header of one region. Each field has its own scratch buffer,
 * so accesses to different fields may be in flight together (pipelined
 * transports); at most one access per field at a time.
 */
export class Registers {
  readonly #slots: Record<Field, Slot> = {
    device_state: new Slot(),
    reserved: new Slot(),
    pending_bytes: new Slot(),
    data_offset: new Slot(),
    data_size: new Slot(),
  };
  /** Device resets this driver issued on this region, and how many of them succeeded. */
  resets = 0;
  resetsDone = 0;

  constructor(readonly io: RegionIO) {
    if (!(io.maxAccess >= MIN_ACCESS)) {
      throw new MigstreamError(
        "USAGE",
        `transport maxAccess ${io.maxAccess} is below the ${MIN_ACCESS}-byte register width`,
      );
    }
  }

  async #read(field: Field, step: string): Promise<DataView> {
    const { offset, width } = FIELDS[field];
    const slot = this.#slots[field];
    let got: Uint8Array;
    try {
      got = await this.io.read(offset, width, slot.buf);
    } catch (e) {
      throw atStep(e, step, field);
    }
    if (got.length !== width) {
      throw new MigstreamError("TRANSPORT", `${step}: short read of ${field} (${got.length} of ${width} bytes)`, {
        step,
        field,
      });
    }
    if (got.buffer !== slot.buf.buffer || got.byteOffset !== 0) slot.buf.set(got);
    return slot.view;
  }

  /** Reads u32 device_state. */
  async readState(step: string): Promise<number> {
    return (await this.#read("device_state", step)).getUint32(0, true);
  }

  /** Writes u32 device_state (callers go through setDeviceState). */
  async writeState(value: number, step: string): Promise<void> {
    const slot = this.#slots.device_state;
    slot.view.setUint32(0, value >>> 0, true);
    try {
      await this.io.write(FIELDS.device_state.offset, slot.buf.subarray(0, 4));
    } catch (e) {
      throw atStep(e, step, "device_state");
    }
  }

  /** Reads a u64 field as a safe integer (a larger value is a PROTOCOL error). */
  async readU64(field: "pending_bytes" | "data_offset" | "data_size", step: string): Promise<number> {
    const dv = await this.#read(field, step);
    const hi = dv.getUint32(4, true);
    if (hi > MAX_SAFE_HIGH)
      throw protocolError(step, field, `${field} 0x${dv.getBigUint64(0, true).toString(16)} is beyond 2^53`);
    return hi * 0x1_0000_0000 + dv.getUint32(0, true);
  }

  /** Writes u64 data_size (resume only; n a safe integer). */
  async writeDataSize(n: number, step: string): Promise<void> {
    const slot = this.#slots.data_size;
    slot.view.setUint32(0, n % 0x1_0000_0000, true);
    slot.view.setUint32(4, Math.floor(n / 0x1_0000_0000), true);
    try {
      await this.io.write(FIELDS.data_size.offset, slot.buf);
    } catch (e) {
      throw atStep(e, step, "data_size");
    }
  }

  /** VFIO_DEVICE_RESET (counted). */
  async reset(step: string): Promise<void> {
    this.resets++;
    try {
      await this.io.reset();
    } catch (e) {
      throw atStep(e, step, "reset");
    }
    this.resetsDone++;
  }
}
