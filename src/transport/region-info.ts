// Finding a device's v1 migration region from VFIO_DEVICE_GET_REGION_INFO
// answers, written once for every way of asking: the vfio-user client (a
// DEVICE_GET_REGION_INFO message) and a VMM that holds the device fd (the
// kernel's ioctl, e.g. through a native binding; the `fd:` spec then takes the
// offset and size found here). Both answer the same struct vfio_region_info
// but differ in one convention: the kernel sets VFIO_REGION_INFO_FLAG_CAPS
// even when the caps did not fit (cap_offset 0), the vfio-user reference
// server only when they did. What works for both is QEMU's rule: ask with
// argsz 32, and ask again with the returned argsz whenever it is larger than
// the one sent, whatever the flags say; read the caps only when CAPS is set.
import { MigstreamError } from "../errors.js";
import {
  CAP_SPARSE_MMAP,
  CAP_TYPE,
  MAX_REGION_INFO_SIZE,
  MAX_REGIONS,
  REGION_FLAG_READ,
  REGION_FLAG_WRITE,
  REGION_INFO_SIZE,
  REGION_SUBTYPE_MIGRATION,
  REGION_TYPE_MIGRATION,
} from "./vfio-user/constants.js";
import { decodeRegionInfo, decodeSparseCap, decodeTypeCap, type RegionInfo } from "./vfio-user/wire.js";

/** Re-asks with a grown argsz before giving up on a region. */
const MAX_ARGSZ_RETRIES = 4;

/**
 * One GET_REGION_INFO: the region-info bytes answered for region `index` to a
 * request whose argsz is `argsz` (the kernel fills an argsz-byte buffer; a
 * vfio-user server replies min(needed, argsz) bytes). Rejects to fail the query.
 */
export type RegionInfoQuery = (index: number, argsz: number) => Promise<Uint8Array> | Uint8Array;

/** A region as discovery saw it. */
export interface DiscoveredRegion {
  index: number;
  size: number;
  flags: number;
  /** The region's offset in the device fd (the `offset=` of an `fd:` spec; unused over vfio-user). */
  offset: bigint;
  /** Type capability, when present. */
  type?: { type: number; subtype: number };
  /** Sparse mmap areas, when a SPARSE_MMAP capability is present. */
  sparseAreas: Array<{ offset: number; size: number }>;
}

/**
 * The info of region `index`: asked with argsz 32, then again with the argsz
 * the answer says it needs as long as that is larger than the one sent
 * (bounded by MAX_REGION_INFO_SIZE and MAX_ARGSZ_RETRIES).
 */
export async function queryRegionInfo(
  query: RegionInfoQuery,
  index: number,
  step = `region info ${index}`,
): Promise<RegionInfo> {
  let argsz = REGION_INFO_SIZE;
  for (let attempt = 0; ; attempt++) {
    const info = decodeRegionInfo(await query(index, argsz), argsz);
    if (info.index !== index && info.index !== 0) {
      // Servers echo the index; 0 is tolerated for servers that leave it unset.
      throw new MigstreamError("PROTOCOL", `region info: asked for region ${index}, got region ${info.index}`, {
        step,
        field: "index",
      });
    }
    if (!info.truncated) return info;
    if (info.argsz > MAX_REGION_INFO_SIZE || attempt >= MAX_ARGSZ_RETRIES) {
      throw new MigstreamError(
        "PROTOCOL",
        `region info: region ${index} still needs argsz ${info.argsz} after ${attempt + 1} requests (last sent ${argsz})`,
        { step, field: "argsz" },
      );
    }
    argsz = info.argsz;
  }
}

/** Region info → the facts we keep. Bad capability bodies are PROTOCOL errors. */
export function describeRegion(info: RegionInfo, index: number): DiscoveredRegion {
  const r: DiscoveredRegion = { index, size: info.size, flags: info.flags, offset: info.offset, sparseAreas: [] };
  for (const c of info.caps) {
    if (c.id === CAP_TYPE && r.type === undefined) r.type = decodeTypeCap(c);
    else if (c.id === CAP_SPARSE_MMAP) r.sparseAreas = decodeSparseCap(c);
  }
  return r;
}

/**
 * The v1 migration region among `regions`: the first whose type capability is
 * (3, 1), on any index. Size 0 (migration unsupported) and a region that is
 * not both readable and writable are refused.
 */
export function migrationRegionOf(regions: readonly DiscoveredRegion[], step = "discovery"): DiscoveredRegion {
  const where = { step };
  const region = regions.find(
    (r) => r.type?.type === REGION_TYPE_MIGRATION && r.type.subtype === REGION_SUBTYPE_MIGRATION,
  );
  if (!region) {
    throw new MigstreamError(
      "PROTOCOL",
      `no migration region (type ${REGION_TYPE_MIGRATION}/${REGION_SUBTYPE_MIGRATION}) among ${regions.length} regions`,
      where,
    );
  }
  if (region.size === 0)
    throw new MigstreamError(
      "PROTOCOL",
      `migration region ${region.index} has size 0 (migration not supported)`,
      where,
    );
  if ((region.flags & (REGION_FLAG_READ | REGION_FLAG_WRITE)) !== (REGION_FLAG_READ | REGION_FLAG_WRITE)) {
    throw new MigstreamError(
      "PROTOCOL",
      `migration region ${region.index} is not readable and writable (flags 0x${region.flags.toString(16)})`,
      where,
    );
  }
  return region;
}

/**
 * Asks every region `0..numRegions-1` (from VFIO_DEVICE_GET_INFO) through
 * `query` and returns the migration region: its `offset` and `size` are what
 * an `fd:N,offset=...,size=...` spec needs.
 */
export async function findMigrationRegion(query: RegionInfoQuery, numRegions: number): Promise<DiscoveredRegion> {
  if (!Number.isInteger(numRegions) || numRegions < 0 || numRegions > MAX_REGIONS) {
    throw new MigstreamError("PROTOCOL", `device reports ${numRegions} regions (limit ${MAX_REGIONS})`, {
      step: "device info",
      field: "num_regions",
    });
  }
  const regions: DiscoveredRegion[] = [];
  for (let i = 0; i < numRegions; i++) regions.push(describeRegion(await queryRegionInfo(query, i), i));
  return migrationRegionOf(regions);
}
