// The vfio-user wire layouts: encoders and decoders for the messages we
// speak — the header, VERSION, DEVICE_GET_INFO, DEVICE_GET_REGION_INFO (with
// its capability chain) and the REGION_READ/WRITE prefix. Decoders check
// every length against the bytes at hand and throw MigstreamError("PROTOCOL")
// on anything malformed.
import { MigstreamError } from "../../errors.js";
import {
  CAP_HEADER_SIZE,
  CAP_SPARSE_MMAP,
  CAP_TYPE,
  DEVICE_INFO_SIZE,
  FLAG_TYPE_MASK,
  HEADER_SIZE,
  MAX_CAPS,
  MAX_REGION_INFO_SIZE,
  MAX_VERSION_JSON,
  REGION_ACCESS_SIZE,
  REGION_FLAG_CAPS,
  REGION_INFO_SIZE,
  TYPE_REPLY,
} from "./constants.js";

export interface Header {
  id: number;
  cmd: number;
  /** Whole message size, header included. */
  size: number;
  flags: number;
  errno: number;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function bad(message: string, field?: string): MigstreamError {
  return new MigstreamError("PROTOCOL", `vfio-user: ${message}`, { field });
}

/** Reads a u64 that must fit a JS number (sizes, offsets). */
function u64(dv: DataView, at: number, field: string): number {
  const v = dv.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`${field} 0x${v.toString(16)} is out of range`, field);
  return Number(v);
}

// The header and the region access are read and written byte by byte: they
// are on every message's path, where a DataView (and a BigInt) per call cost
// more than the rest of the decoding.

/** Little-endian u16 / u32 at `at`. */
const le16 = (b: Uint8Array, at: number): number => b[at] | (b[at + 1] << 8);
const le32 = (b: Uint8Array, at: number): number =>
  (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;

function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = v;
  b[at + 1] = v >>> 8;
}

function put32(b: Uint8Array, at: number, v: number): void {
  b[at] = v;
  b[at + 1] = v >>> 8;
  b[at + 2] = v >>> 16;
  b[at + 3] = v >>> 24;
}

export function readHeader(b: Uint8Array, at = 0): Header {
  return {
    id: le16(b, at),
    cmd: le16(b, at + 2),
    size: le32(b, at + 4),
    flags: le32(b, at + 8),
    errno: le32(b, at + 12),
  };
}

export function writeHeader(b: Uint8Array, h: Header, at = 0): void {
  put16(b, at, h.id);
  put16(b, at + 2, h.cmd);
  put32(b, at + 4, h.size);
  put32(b, at + 8, h.flags);
  put32(b, at + 12, h.errno);
}

/** A whole message buffer: the header written, `payloadSize` bytes after it for the caller. */
export function newMessage(id: number, cmd: number, flags: number, payloadSize: number, errno = 0): Uint8Array {
  const b = new Uint8Array(HEADER_SIZE + payloadSize);
  writeHeader(b, { id, cmd, size: b.length, flags, errno });
  return b;
}

export function isReply(flags: number): boolean {
  return (flags & FLAG_TYPE_MASK) === TYPE_REPLY;
}

// ---- VERSION ----------------------------------------------------------------

/** VERSION payload: major u16, minor u16, JSON text (`caps` as an object, or as text) with its terminating NUL. */
export function encodeVersion(major: number, minor: number, caps?: object | string): Uint8Array {
  const text = typeof caps === "string" ? caps : JSON.stringify(caps);
  const json = caps === undefined ? new Uint8Array(0) : new TextEncoder().encode(`${text}\0`);
  if (json.length > MAX_VERSION_JSON) throw new MigstreamError("LIMIT", "vfio-user: VERSION JSON too long");
  const b = new Uint8Array(4 + json.length);
  const dv = view(b);
  dv.setUint16(0, major, true);
  dv.setUint16(2, minor, true);
  b.set(json, 4);
  return b;
}

export interface Version {
  major: number;
  minor: number;
  /** The `capabilities` object ({} when absent). */
  caps: Record<string, unknown>;
}

/** Parses a VERSION payload. A missing terminating NUL is tolerated; bad JSON is not. */
export function decodeVersion(p: Uint8Array): Version {
  if (p.length < 4) throw bad(`VERSION payload of ${p.length} bytes`, "version");
  if (p.length - 4 > MAX_VERSION_JSON)
    throw bad(`VERSION JSON of ${p.length - 4} bytes exceeds ${MAX_VERSION_JSON}`, "version");
  const dv = view(p);
  let text = p.subarray(4);
  const nul = text.indexOf(0);
  if (nul >= 0) text = text.subarray(0, nul);
  let caps: Record<string, unknown> = {};
  if (text.length > 0) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(text));
    } catch (cause) {
      throw new MigstreamError("PROTOCOL", "vfio-user: VERSION JSON does not parse", { field: "version", cause });
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
      throw bad("VERSION JSON is not an object", "version");
    const c = (parsed as { capabilities?: unknown }).capabilities;
    if (c !== undefined) {
      if (c === null || typeof c !== "object" || Array.isArray(c))
        throw bad("VERSION capabilities is not an object", "capabilities");
      caps = c as Record<string, unknown>;
    }
  }
  return { major: dv.getUint16(0, true), minor: dv.getUint16(2, true), caps };
}

// ---- DEVICE_GET_INFO --------------------------------------------------------

export interface DeviceInfo {
  argsz: number;
  flags: number;
  numRegions: number;
  numIrqs: number;
}

export function encodeDeviceInfo(d: DeviceInfo, size = DEVICE_INFO_SIZE): Uint8Array {
  const b = new Uint8Array(size);
  const dv = view(b);
  dv.setUint32(0, d.argsz, true);
  dv.setUint32(4, d.flags, true);
  dv.setUint32(8, d.numRegions, true);
  dv.setUint32(12, d.numIrqs, true);
  return b;
}

export function decodeDeviceInfo(p: Uint8Array): DeviceInfo {
  if (p.length < DEVICE_INFO_SIZE) throw bad(`DEVICE_GET_INFO reply of ${p.length} bytes`, "device_info");
  const dv = view(p);
  return {
    argsz: dv.getUint32(0, true),
    flags: dv.getUint32(4, true),
    numRegions: dv.getUint32(8, true),
    numIrqs: dv.getUint32(12, true),
  };
}

// ---- DEVICE_GET_REGION_INFO -------------------------------------------------

/** Request: struct vfio_region_info with only argsz and index set. */
export function encodeRegionInfoRequest(index: number, argsz: number): Uint8Array {
  const b = new Uint8Array(REGION_INFO_SIZE);
  const dv = view(b);
  dv.setUint32(0, argsz, true);
  dv.setUint32(8, index, true);
  return b;
}

/** One capability of a region-info reply; `body` follows the 8-byte cap header. */
export interface RegionCap {
  id: number;
  version: number;
  /** Offset of the cap header from the start of the region-info structure. */
  at: number;
  body: Uint8Array;
}

export interface RegionInfo {
  /** Size the server needs for the whole reply (caps included). */
  argsz: number;
  flags: number;
  index: number;
  capOffset: number;
  size: number;
  /** mmap offset of the region in the server's fd (informational: we never mmap). */
  offset: bigint;
  caps: RegionCap[];
  /**
   * The reply's argsz is larger than the argsz we asked with (or than the
   * reply): its caps are not all there, whatever its flags say, and the
   * request must be repeated with `argsz`. Its caps are then not read.
   */
  truncated: boolean;
}

/**
 * Parses a region-info reply to a request made with `askedArgsz` (default:
 * the reply's length) and, when it is complete and has VFIO_REGION_INFO_FLAG_CAPS,
 * walks its capability chain. Both conventions are met: the kernel sets CAPS
 * even when the caps did not fit (cap_offset 0), the vfio-user reference
 * server only when they did; either way a reply argsz above the asked one
 * means "ask again" (see `truncated`). The walk is bounded: every cap must lie
 * inside both the reply and its argsz, start after the 32-byte structure,
 * never be visited twice, and there are at most MAX_CAPS.
 */
export function decodeRegionInfo(p: Uint8Array, askedArgsz = p.length): RegionInfo {
  if (p.length < REGION_INFO_SIZE) throw bad(`region info reply of ${p.length} bytes`, "region_info");
  const dv = view(p);
  const info: RegionInfo = {
    argsz: dv.getUint32(0, true),
    flags: dv.getUint32(4, true),
    index: dv.getUint32(8, true),
    capOffset: dv.getUint32(12, true),
    size: u64(dv, 16, "region size"),
    offset: dv.getBigUint64(24, true),
    caps: [],
    truncated: false,
  };
  if (info.argsz > MAX_REGION_INFO_SIZE)
    throw bad(`region info argsz ${info.argsz} exceeds ${MAX_REGION_INFO_SIZE}`, "argsz");
  if (info.argsz > askedArgsz) {
    info.truncated = true;
    return info;
  }
  if (!(info.flags & REGION_FLAG_CAPS)) return info;
  const end = Math.min(info.argsz, p.length);
  const seen = new Set<number>();
  for (let at = info.capOffset; at !== 0; ) {
    if (info.caps.length >= MAX_CAPS) throw bad(`capability chain longer than ${MAX_CAPS}`, "cap_offset");
    if (seen.has(at)) throw bad(`capability chain loops (offset ${at} visited twice)`, "cap_offset");
    if (at < REGION_INFO_SIZE || at + CAP_HEADER_SIZE > end)
      throw bad(`capability at ${at} lies outside the reply (argsz ${info.argsz})`, "cap_offset");
    seen.add(at);
    const next = dv.getUint32(at + 4, true);
    // A cap's body runs to the next cap when that one follows, else to the end.
    const bodyEnd = next > at && next <= end ? next : end;
    info.caps.push({
      id: dv.getUint16(at, true),
      version: dv.getUint16(at + 2, true),
      at,
      body: p.subarray(at + CAP_HEADER_SIZE, bodyEnd),
    });
    at = next;
  }
  return info;
}

/**
 * A region-info reply to a request with `requestArgsz`, as the vfio-user
 * reference server builds it: `argsz` is the size the whole reply needs; the
 * caps and VFIO_REGION_INFO_FLAG_CAPS (cap_offset 32) only when that fits the
 * request; the reply is min(needed, requestArgsz) bytes long (zeros after the
 * structure when the caps did not fit).
 */
export function encodeRegionInfoReply(
  r: { flags: number; index: number; size: number; offset?: bigint },
  caps: Uint8Array[],
  requestArgsz: number,
): Uint8Array {
  const capBytes = caps.reduce((n, c) => n + c.length, 0);
  const full = REGION_INFO_SIZE + capBytes;
  const fits = caps.length > 0 && requestArgsz >= full;
  const b = new Uint8Array(Math.max(REGION_INFO_SIZE, Math.min(full, requestArgsz)));
  const dv = view(b);
  dv.setUint32(0, full, true);
  dv.setUint32(4, r.flags | (fits ? REGION_FLAG_CAPS : 0), true);
  dv.setUint32(8, r.index, true);
  dv.setUint32(12, fits ? REGION_INFO_SIZE : 0, true);
  dv.setBigUint64(16, BigInt(r.size), true);
  dv.setBigUint64(24, r.offset ?? 0n, true);
  if (fits) {
    let at = REGION_INFO_SIZE;
    for (let i = 0; i < caps.length; i++) {
      b.set(caps[i], at);
      const next = i + 1 < caps.length ? at + caps[i].length : 0;
      dv.setUint32(at + 4, next, true);
      at += caps[i].length;
    }
  }
  return b;
}

/** A capability with its header (`next` is filled in by encodeRegionInfoReply). */
function cap(id: number, version: number, bodySize: number): { b: Uint8Array; dv: DataView } {
  const b = new Uint8Array(CAP_HEADER_SIZE + bodySize);
  const dv = view(b);
  dv.setUint16(0, id, true);
  dv.setUint16(2, version, true);
  return { b, dv };
}

/** VFIO_REGION_INFO_CAP_TYPE, version 1: type u32, subtype u32. */
export function encodeTypeCap(type: number, subtype: number): Uint8Array {
  const { b, dv } = cap(CAP_TYPE, 1, 8);
  dv.setUint32(8, type, true);
  dv.setUint32(12, subtype, true);
  return b;
}

/** VFIO_REGION_INFO_CAP_SPARSE_MMAP, version 1: nr_areas, reserved, {offset u64, size u64}[]. */
export function encodeSparseCap(areas: ReadonlyArray<{ offset: number; size: number }>): Uint8Array {
  const { b, dv } = cap(CAP_SPARSE_MMAP, 1, 8 + 16 * areas.length);
  dv.setUint32(8, areas.length, true);
  areas.forEach((a, i) => {
    dv.setBigUint64(16 + i * 16, BigInt(a.offset), true);
    dv.setBigUint64(24 + i * 16, BigInt(a.size), true);
  });
  return b;
}

export function decodeTypeCap(c: RegionCap): { type: number; subtype: number } {
  if (c.body.length < 8) throw bad(`type capability body of ${c.body.length} bytes`, "cap_type");
  const dv = view(c.body);
  return { type: dv.getUint32(0, true), subtype: dv.getUint32(4, true) };
}

export function decodeSparseCap(c: RegionCap): Array<{ offset: number; size: number }> {
  if (c.body.length < 8) throw bad(`sparse mmap capability body of ${c.body.length} bytes`, "cap_sparse_mmap");
  const dv = view(c.body);
  const n = dv.getUint32(0, true);
  if (8 + n * 16 > c.body.length)
    throw bad(`sparse mmap capability claims ${n} areas in ${c.body.length} bytes`, "nr_areas");
  const areas: Array<{ offset: number; size: number }> = [];
  for (let i = 0; i < n; i++)
    areas.push({ offset: u64(dv, 8 + i * 16, "area offset"), size: u64(dv, 16 + i * 16, "area size") });
  return areas;
}

// ---- REGION_READ / REGION_WRITE ---------------------------------------------

export interface Access {
  offset: number;
  region: number;
  count: number;
}

/** Largest high word of a u64 that is still a safe integer. */
const MAX_SAFE_HIGH = 0x1f_ffff;

export function writeAccess(b: Uint8Array, at: number, a: Access): void {
  if (!Number.isSafeInteger(a.offset) || a.offset < 0)
    throw new MigstreamError("USAGE", `vfio-user: access offset ${a.offset} is not a u64 we can carry`);
  put32(b, at, a.offset % 0x1_0000_0000);
  put32(b, at + 4, Math.floor(a.offset / 0x1_0000_0000));
  put32(b, at + 8, a.region);
  put32(b, at + 12, a.count);
}

export function readAccess(p: Uint8Array): Access {
  if (p.length < REGION_ACCESS_SIZE) throw bad(`region access of ${p.length} bytes`, "region_access");
  const hi = le32(p, 4);
  if (hi > MAX_SAFE_HIGH)
    throw bad(`access offset 0x${view(p).getBigUint64(0, true).toString(16)} is out of range`, "access offset");
  return { offset: hi * 0x1_0000_0000 + le32(p, 0), region: le32(p, 8), count: le32(p, 12) };
}
