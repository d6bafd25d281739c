// vfio-user v2 migration, server side: DEVICE_FEATURE (16), MIG_DATA_READ
// (17) and MIG_DATA_WRITE (18) for a MigrationVendor, as libvfio-user (HEAD,
// notes §3.2–§3.6) serves them — strict where it is strict:
//   * DEVICE_FEATURE: unknown flag bits, GET|SET without PROBE, no operation,
//     an operation the feature lacks, a short argsz: EINVAL. PROBE answers the
//     8-byte echo (DMA logging 6/7/8 included: they are probed, never served).
//     GET MIGRATION and GET MIG_DEVICE_STATE answer 16 bytes (data_fd 0);
//     SET walks the path (the kernel's table) calling the device per arc and
//     echoes the request; a failed SET answers an error **with the 16-byte
//     echo as its body** (msg_size 32), the state at the last arc that worked.
//   * MIG_DATA_READ: PRE_COPY or STOP_COPY only; size ≤ the client's
//     max_data_xfer_size; the reply is always 8 + size asked bytes, zero-padded
//     after the n bytes read (n in `size`).
//   * MIG_DATA_WRITE: RESUMING only; the device must take every byte, else
//     EINVAL ("partial write"); the reply is header only.
//   * In STOP and STOP_COPY every command but REGION_READ/WRITE,
//     DEVICE_FEATURE and MIG_DATA_READ is refused (EINVAL), DEVICE_RESET too.
//   * DEVICE_RESET resets the device and keeps the migration state (from
//     4f4fce4 on); a client leaving changes nothing (see serve.ts).

import { type MigrationVendor, transportFault, walk } from "../../device/migration-vendor.js";
import { VendorErrno } from "../../device/vendor.js";
import { ERRNO } from "../../protocol/region-io.js";
import {
  asMigState,
  FEATURE,
  FEATURE_GET,
  FEATURE_HEADER_SIZE,
  FEATURE_MASK,
  FEATURE_PROBE,
  FEATURE_SET,
  MIG_STATE,
} from "../../protocol/v2/constants.js";
import { CMD, HEADER_SIZE, MIG_DATA_HEADER_SIZE } from "./constants.js";
import { type ExtensionClient, Rejection, type Reply, type ServerExtension } from "./server.js";

/** Operations each feature supports (libvfio-user). */
const OPS: Readonly<Record<number, number>> = {
  [FEATURE.MIGRATION]: FEATURE_GET,
  [FEATURE.MIG_DEVICE_STATE]: FEATURE_GET | FEATURE_SET,
  [FEATURE.DMA_LOGGING_START]: FEATURE_SET,
  [FEATURE.DMA_LOGGING_STOP]: FEATURE_SET,
  [FEATURE.DMA_LOGGING_REPORT]: FEATURE_GET,
};

/** Commands a libvfio-user server still takes in STOP and STOP_COPY. */
const ALLOWED_STOPPED: ReadonlySet<number> = new Set([
  CMD.REGION_READ,
  CMD.REGION_WRITE,
  CMD.DEVICE_FEATURE,
  CMD.MIG_DATA_READ,
]);

const einval = (why: string, body?: Uint8Array) => new Rejection(ERRNO.EINVAL, why, false, body);

/** Options of the v2 handler. */
export interface V2HandlerOptions {
  /** DEVICE_RESET keeps the migration state (default true, libvfio-user ≥ 4f4fce4); false: back to RUNNING (190f85bf–4f4fce4^). */
  resetKeepsState?: boolean;
}

/** The v2 migration extension of a VfioUserServer. */
export class V2Handler implements ServerExtension {
  readonly noMigrationRegion = true;
  /** Every DEVICE_FEATURE the server took, as "flags" words (tests check DMA logging is never SET). */
  readonly features: number[] = [];

  constructor(
    readonly vendor: MigrationVendor,
    readonly opts: V2HandlerOptions = {},
  ) {}

  gate(cmd: number): void {
    const s = this.vendor.state;
    if ((s === MIG_STATE.STOP || s === MIG_STATE.STOP_COPY) && !ALLOWED_STOPPED.has(cmd)) {
      throw einval(`command ${cmd} refused while the device is stopped`);
    }
  }

  handle(cmd: number, p: Uint8Array, client: ExtensionClient): Promise<Reply> | undefined {
    switch (cmd) {
      case CMD.DEVICE_FEATURE:
        return this.feature(p);
      case CMD.MIG_DATA_READ:
        return this.read(p, client);
      case CMD.MIG_DATA_WRITE:
        return this.write(p, client.maxDataXfer);
      case CMD.DIRTY_PAGES:
        return Promise.reject(einval("DIRTY_PAGES is v1 only")); // a v2 server: "bad command"
      default:
        return undefined;
    }
  }

  async reset(): Promise<void> {
    await this.vendor.reset(this.opts.resetKeepsState !== false);
  }

  private async feature(p: Uint8Array): Promise<Reply> {
    if (p.length < FEATURE_HEADER_SIZE) throw einval("short DEVICE_FEATURE");
    const dv = new DataView(p.buffer, p.byteOffset, p.length);
    const argsz = dv.getUint32(0, true);
    const flags = dv.getUint32(4, true);
    this.features.push(flags);
    const feature = flags & FEATURE_MASK;
    const op = flags & (FEATURE_GET | FEATURE_SET | FEATURE_PROBE);
    if ((flags & ~(FEATURE_MASK | FEATURE_GET | FEATURE_SET | FEATURE_PROBE)) !== 0)
      throw einval("unknown feature flag bits");
    const getset = op & (FEATURE_GET | FEATURE_SET);
    if (getset === (FEATURE_GET | FEATURE_SET) && !(op & FEATURE_PROBE))
      throw einval("GET and SET together without PROBE");
    if (getset === 0) throw einval("no operation");
    const ops = OPS[feature];
    if (ops === undefined || (getset & ~ops) !== 0)
      throw einval(`feature ${feature} does not support flags 0x${flags.toString(16)}`);
    if (op & FEATURE_PROBE) {
      if (argsz < p.length) throw einval("argsz below the request");
      return [p.slice(0, FEATURE_HEADER_SIZE)];
    }
    if (feature === FEATURE.MIGRATION) {
      if (argsz < 16) throw einval("argsz below 16");
      transportFault(this.vendor, "get migration");
      const out = new Uint8Array(16);
      const o = new DataView(out.buffer);
      o.setUint32(0, 16, true);
      o.setUint32(4, flags, true);
      o.setBigUint64(8, BigInt(this.vendor.migrationFlags), true);
      return [out];
    }
    if (feature === FEATURE.MIG_DEVICE_STATE && getset === FEATURE_GET) {
      if (argsz < 16) throw einval("argsz below 16");
      transportFault(this.vendor, "get state");
      const out = new Uint8Array(16);
      const o = new DataView(out.buffer);
      o.setUint32(0, 16, true);
      o.setUint32(4, flags, true);
      o.setUint32(8, this.vendor.state, true);
      o.setUint32(12, 0, true); // no fd over vfio-user
      return [out];
    }
    if (feature === FEATURE.MIG_DEVICE_STATE) return this.setState(p, argsz);
    // DMA logging SET/GET: a server without DMA support would abort here (notes §3.5); we refuse.
    throw einval(`feature ${feature} is not served`);
  }

  private async setState(p: Uint8Array, argsz: number): Promise<Reply> {
    if (p.length < 16) throw einval("short SET MIG_DEVICE_STATE");
    const echo = p.slice(0, 16);
    if (argsz < p.length) throw einval("argsz below the request", echo);
    const to = asMigState(new DataView(p.buffer, p.byteOffset, p.length).getUint32(8, true));
    if (to === undefined || to === MIG_STATE.ERROR) throw einval("not a state a client may ask for", echo);
    try {
      await walk(this.vendor, to);
    } catch (e) {
      const errno = e instanceof VendorErrno ? e.errno || ERRNO.EINVAL : ERRNO.EIO;
      throw new Rejection(errno, e instanceof Error ? e.message : String(e), false, echo);
    }
    return [echo];
  }

  private async read(p: Uint8Array, client: ExtensionClient): Promise<Reply> {
    const max = client.maxDataXfer;
    if (p.length < MIG_DATA_HEADER_SIZE) throw einval("short MIG_DATA_READ");
    const dv = new DataView(p.buffer, p.byteOffset, p.length);
    const argsz = dv.getUint32(0, true);
    const size = dv.getUint32(4, true);
    const s = this.vendor.state;
    if (s !== MIG_STATE.PRE_COPY && s !== MIG_STATE.STOP_COPY)
      throw einval("MIG_DATA_READ outside PRE_COPY and STOP_COPY");
    if (size > max) throw einval(`size ${size} above the client's max_data_xfer_size ${max}`);
    if (argsz < MIG_DATA_HEADER_SIZE + size) throw einval("argsz below 8 + size");
    // The device reads straight into the spare reply message: header, {argsz, size}, data, zero padding.
    const message = client.takeBuffer(HEADER_SIZE + MIG_DATA_HEADER_SIZE + size);
    const body = message.subarray(HEADER_SIZE);
    let n: number;
    try {
      n = await this.vendor.readData(body.subarray(MIG_DATA_HEADER_SIZE));
    } catch (e) {
      client.giveBuffer(message);
      throw e;
    }
    const o = new DataView(body.buffer, body.byteOffset, MIG_DATA_HEADER_SIZE);
    o.setUint32(0, MIG_DATA_HEADER_SIZE + n, true);
    o.setUint32(4, n, true);
    body.fill(0, MIG_DATA_HEADER_SIZE + n);
    return { message };
  }

  private async write(p: Uint8Array, max: number): Promise<Reply> {
    if (p.length < MIG_DATA_HEADER_SIZE) throw einval("short MIG_DATA_WRITE");
    const dv = new DataView(p.buffer, p.byteOffset, p.length);
    const argsz = dv.getUint32(0, true);
    const size = dv.getUint32(4, true);
    if (this.vendor.state !== MIG_STATE.RESUMING) throw einval("MIG_DATA_WRITE outside RESUMING");
    if (p.length < MIG_DATA_HEADER_SIZE + size || argsz < MIG_DATA_HEADER_SIZE + size)
      throw einval("payload shorter than 8 + size");
    if (size > max) throw einval(`size ${size} above the client's max_data_xfer_size ${max}`);
    const took = await this.vendor.writeData(p.subarray(MIG_DATA_HEADER_SIZE, MIG_DATA_HEADER_SIZE + size));
    if (took !== size) throw einval(`partial write (${took} of ${size})`);
    return [];
  }
}
