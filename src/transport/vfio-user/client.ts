// vfio-user client transport: a RegionIO over a device's v1 migration region,
// found by its type capability (3, 1) on any region index. Every register and
// data access is a REGION_READ/REGION_WRITE message (we never mmap); an access
// that fits max_data_xfer_size goes in one message (some servers accept only
// whole-buffer accesses), larger ones are split at that limit.
import { MigstreamError } from "../../errors.js";
import { checkRegionAccess, type RegionIO } from "../../protocol/region-io.js";
import { type DiscoveredRegion, describeRegion, migrationRegionOf } from "../region-info.js";
import { DIGEST_REGION_SIZE, DIGEST_REGION_SUBTYPE, DIGEST_REGION_TYPE, MAX_REGIONS } from "./constants.js";
import { type SessionOptions, VfioUserSession } from "./session.js";
import type { DeviceInfo } from "./wire.js";

export { type DiscoveredRegion, describeRegion };

/** What connectVfioUser learned, for diagnostics. */
export interface VfioUserInfo {
  path: string;
  protocol: { major: number; minor: number };
  /** The server's VERSION capabilities. */
  serverCaps: Record<string, unknown>;
  maxDataXfer: number;
  device: DeviceInfo;
  /** The migration region. */
  region: DiscoveredRegion;
  /** Every region with a type capability (migration region included). */
  typedRegions: DiscoveredRegion[];
}

/** Options of connectVfioUser: timeouts and limits of the session. */
export interface ConnectOptions extends SessionOptions {}

/** Queries every region of the device (bounded by MAX_REGIONS). */
export async function discoverRegions(s: VfioUserSession, device: DeviceInfo): Promise<DiscoveredRegion[]> {
  if (device.numRegions > MAX_REGIONS) {
    throw new MigstreamError(
      "PROTOCOL",
      `vfio-user: device reports ${device.numRegions} regions (limit ${MAX_REGIONS})`,
      { step: "device info", field: "num_regions" },
    );
  }
  const out: DiscoveredRegion[] = [];
  for (let i = 0; i < device.numRegions; i++) out.push(describeRegion(await s.regionInfo(i), i));
  return out;
}

/** A RegionIO over a vfio-user socket: the device's migration region, found and checked when the session began (connectVfioUser). */
export class VfioUserRegion implements RegionIO {
  readonly size: number;
  readonly maxAccess: number;
  /** The server handles messages one at a time in order, and the client matches replies by msg_id. */
  readonly pipelined = true;
  /** A REGION_WRITE message (the data copied in) is built before write() returns its promise. */
  readonly writeCopies = true;

  constructor(
    readonly session: VfioUserSession,
    readonly info: VfioUserInfo,
  ) {
    this.size = info.region.size;
    this.maxAccess = session.maxDataXfer;
  }

  get index(): number {
    return this.info.region.index;
  }

  get label(): string {
    return `vfio-user:${this.info.path} (region ${this.index})`;
  }

  async read(offset: number, count: number, into?: Uint8Array): Promise<Uint8Array> {
    this.check(offset, count, "read");
    if (into && into.length < count)
      throw new MigstreamError("USAGE", `read of ${count} bytes into a ${into.length}-byte buffer`);
    if (count <= this.maxAccess) {
      const data = await this.session.regionRead(this.index, offset, count, into, step("read", offset, count));
      return data;
    }
    const out = into ?? new Uint8Array(count);
    for (let done = 0; done < count; ) {
      const n = Math.min(this.maxAccess, count - done);
      await this.session.regionRead(
        this.index,
        offset + done,
        n,
        out.subarray(done, done + n),
        step("read", offset + done, n),
      );
      done += n;
    }
    return out.subarray(0, count);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.check(offset, data.length, "write");
    for (let done = 0; done < data.length; ) {
      const n = Math.min(this.maxAccess, data.length - done);
      await this.session.regionWrite(
        this.index,
        offset + done,
        data.subarray(done, done + n),
        step("write", offset + done, n),
      );
      done += n;
    }
  }

  reset(): Promise<void> {
    return this.session.reset();
  }

  /** The digest region (our servers' DIGEST_REGION_TYPE), when the device has one. */
  get digestRegion(): DiscoveredRegion | undefined {
    return this.info.typedRegions.find(
      (r) =>
        r.type!.type === DIGEST_REGION_TYPE &&
        r.type!.subtype === DIGEST_REGION_SUBTYPE &&
        r.size >= DIGEST_REGION_SIZE,
    );
  }

  /** Reads the device's state digest from its digest region (same connection). */
  async stateDigest(): Promise<bigint> {
    const r = this.digestRegion;
    if (!r) throw new MigstreamError("USAGE", "vfio-user: the device offers no state digest region");
    const b = await this.session.regionRead(r.index, 0, DIGEST_REGION_SIZE, undefined, "digest read");
    return new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(0, true);
  }

  async close(): Promise<void> {
    this.session.close();
  }

  private check(offset: number, count: number, what: string): void {
    checkRegionAccess("vfio-user", this.size, offset, count, what);
  }
}

function step(what: string, offset: number, count: number): string {
  return `region ${what} ${count}@0x${offset.toString(16)}`;
}

/**
 * Connects to a vfio-user server, negotiates VERSION, reads the device info
 * and every region's info, and returns a RegionIO on the migration region
 * (the first region whose type capability is (3, 1), on any index).
 */
export async function connectVfioUser(path: string, opts: ConnectOptions = {}): Promise<VfioUserRegion> {
  const s = await VfioUserSession.connect(path, opts);
  try {
    return await regionOn(s, path);
  } catch (e) {
    s.close();
    throw e;
  }
}

/** The v1 migration region of the device on an open session (discovery as in connectVfioUser). */
export async function regionOn(s: VfioUserSession, path: string): Promise<VfioUserRegion> {
  {
    const device = await s.deviceInfo();
    const regions = await discoverRegions(s, device);
    const typed = regions.filter((r) => r.type !== undefined);
    let region: DiscoveredRegion;
    try {
      region = migrationRegionOf(regions);
    } catch (e) {
      throw e instanceof MigstreamError
        ? new MigstreamError(e.code, `vfio-user: ${e.message}`, { step: e.step, field: e.field })
        : e;
    }
    const info: VfioUserInfo = {
      path,
      protocol: { major: s.version.major, minor: s.version.minor },
      serverCaps: s.version.caps,
      maxDataXfer: s.maxDataXfer,
      device,
      region,
      typedRegions: typed,
    };
    return new VfioUserRegion(s, info);
  }
}
