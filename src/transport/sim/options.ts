// Settings of a simulated device as text: the `sim:` device spec and the
// `migstream sim serve` flags both come down to the same keys, and named
// vendor variants (the behaviours real v1 vendors differ in; see the protocol
// notes §7) that can be combined.

import type { SimDeviceOptions } from "../../device/index.js";
import type { MigrationSimOptions } from "../../device/migration-sim.js";
import { MigstreamError } from "../../errors.js";
import { parseSize } from "../size.js";

/** How long a "slow-prepare" device blocks in each data_offset read, ms. */
const SLOW_PREPARE_MS = 5;

/**
 * Vendor variants. Each sets the SimDevice options that model one way real
 * vendors behave; several may be combined (later ones win on conflicts).
 */
export const SIM_VARIANTS = {
  /** The UAPI text: the pending_bytes read after data_offset acknowledges a buffer; reserved reads 0. */
  spec: {},
  /**
   * The reference vfio-user server library's v1 samples (protocol notes §7,
   * vfio-user notes §5): the pending_bytes read after data_offset acknowledges
   * a buffer; pending_bytes stays 0 once it read 0 until the next device_state
   * write; data only as the whole buffer in one access; any access to
   * `reserved` is EINVAL; its transition matrix (no 0→2, 0→4, 3→3); a
   * same-state write restarts the iteration. Served, the server behaves as
   * that library's too (see vfio-user/reference.ts).
   */
  "libvfio-user": {
    ack: "data_offset",
    stickyZeroPending: true,
    wholeBufferOnly: true,
    reservedEinval: true,
    matrix: "libvfio-user",
    sameStateResets: true,
  },
  /** mlx5 v1: a buffer is acknowledged only once data_size was read too. */
  mlx5: { ack: "data_size" },
  /** Once pending_bytes reads 0 in pre-copy it stays 0 until the next device_state write. */
  "sticky-zero": { stickyZeroPending: true },
  /** The saved buffer must be read, and written, in one access of the whole buffer. */
  "whole-buffer": { wholeBufferOnly: true },
  /** No pre-copy data at all: everything comes in stop-and-copy. */
  "no-precopy": { precopyData: false },
  /** device_state carries reserved bit 8, which every write must keep. */
  "reserved-bits": { reservedBits: 0x100 },
  /** The data section right after the 32-byte header (no page alignment, no sparse area). */
  packed: { dataOffset: 32 },
  /** data_offset reads block while the buffer is prepared. */
  "slow-prepare": { dataOffsetDelayMs: SLOW_PREPARE_MS },
} as const satisfies Record<string, SimDeviceOptions>;

/**
 * v2 vendor variants (notes §1, §3.7), combinable like the v1 ones. Over
 * vfio-user every one of them migrates when the client declares what the
 * protocol cannot tell (fixed-access, restarts, write-einval: see the
 * vfio-user spec options).
 */
export const SIM_V2_VARIANTS = {
  /** The kernel's rule: one stream across PRE_COPY → STOP_COPY, reads and writes of any size. */
  spec: {},
  /** MIGRATION flags without PRE_COPY: the save goes RUNNING → STOP_COPY at once. */
  "no-precopy": { precopy: false },
  /** MIGRATION flags with P2P (the FSM walks through RUNNING_P2P and PRE_COPY_P2P). */
  p2p: { p2p: true },
  /** The stream starts over at STOP_COPY (libvfio-user's sample server): only the stop-copy bytes restore. */
  restarts: { restarts: true },
  /** Every data read and write must be exactly 64 bytes (libvfio-user's gpio sample). */
  "fixed-access": { fixedAccess: 64 },
  /** Writes are applied, then answered EINVAL (the gpio sample). */
  "write-einval": { writeEinval: true },
  /** libvfio-user's gpio sample: both of the above. */
  gpio: { fixedAccess: 64, writeEinval: true },
  /** Reads return fewer bytes than asked. */
  "short-reads": { shortReads: true },
  /** PRE_COPY "nothing now" is ENOMSG instead of a 0-byte read. */
  enomsg: { enomsg: true },
} as const satisfies Record<string, MigrationSimOptions>;

export type SimV2Variant = keyof typeof SIM_V2_VARIANTS;
export const SIM_V2_VARIANT_NAMES = Object.keys(SIM_V2_VARIANTS) as SimV2Variant[];

export type SimVariant = keyof typeof SIM_VARIANTS;

/** Variants whose server behaves as the reference server too (see vfio-user/reference.ts). */
const REFERENCE_SERVER_VARIANTS: ReadonlySet<string> = new Set(["libvfio-user"]);

/** The vfio-user server variant for a variant list (`a+b` or `a,b`): "libvfio-user" when it names that variant. */
export function serverVariantOf(text: string | undefined): "default" | "libvfio-user" {
  const names = (text ?? "").split(/[+,]/).map((s) => s.trim());
  return names.some((n) => REFERENCE_SERVER_VARIANTS.has(n)) ? "libvfio-user" : "default";
}
export const SIM_VARIANT_NAMES = Object.keys(SIM_VARIANTS) as SimVariant[];

/** Keys a `sim:` spec (and the serve flags) may set. */
const SIM_KEYS = ["state", "seed", "txn", "dirty", "variant", "empty", "data-size", "protocol"] as const;

/** `protocol=v1` (default) or `protocol=v2`. */
export function simProtocol(kv: Record<string, string>): 1 | 2 {
  const p = kv.protocol ?? "v1";
  if (p !== "v1" && p !== "v2") throw usage(`protocol '${p}' is neither v1 nor v2`);
  return p === "v2" ? 2 : 1;
}

/**
 * A v2 simulated device's options from the same keys (state, seed, empty,
 * variant from SIM_V2_VARIANTS, dirty = pages changed per MiB read in
 * PRE_COPY); txn and data-size belong to v1.
 */
export function simMigrationOptions(kv: Record<string, string>): MigrationSimOptions {
  for (const k of Object.keys(kv)) {
    if (!(SIM_KEYS as readonly string[]).includes(k))
      throw usage(`unknown option '${k}' (known: ${SIM_KEYS.join(", ")})`);
    if (k === "txn" || k === "data-size")
      throw usage(`'${k}' applies to v1 devices only (a v2 device streams its state)`);
  }
  simProtocol(kv);
  const out: MigrationSimOptions = {};
  for (const name of (kv.variant ?? "")
    .split(/[+,]/)
    .map((s) => s.trim())
    .filter(Boolean)) {
    if (!(name in SIM_V2_VARIANTS))
      throw usage(`unknown v2 variant '${name}' (known: ${SIM_V2_VARIANT_NAMES.join(", ")})`);
    Object.assign(out, SIM_V2_VARIANTS[name as SimV2Variant]);
  }
  if (kv.state !== undefined) out.stateSize = parseSize(kv.state, "state size");
  if (kv.seed !== undefined) out.seed = integer(kv.seed, "seed", MAX_SEED);
  if (kv.dirty !== undefined)
    out.dirtyPerMiB = integer(kv.dirty, "dirty rate (pages per MiB read in pre-copy)", 2 ** 31);
  if (kv.empty !== undefined) out.empty = flag(kv.empty, "empty");
  return out;
}

/** Largest seed (u32). */
const MAX_SEED = 0xffff_ffff;

function usage(message: string): MigstreamError {
  return new MigstreamError("USAGE", `sim: ${message}`);
}

function integer(text: string, what: string, max: number): number {
  if (!/^\s*(0x[0-9a-f]+|\d+)\s*$/i.test(text)) throw usage(`${what} '${text}' is not a whole number`);
  const n = Number(text);
  if (n > max) throw usage(`${what} ${n} is above ${max}`);
  return n;
}

/** `a+b` or `a,b` → the merged options of those variants. */
export function variantOptions(text: string): SimDeviceOptions {
  const out: SimDeviceOptions = {};
  for (const name of text
    .split(/[+,]/)
    .map((s) => s.trim())
    .filter(Boolean)) {
    if (!(name in SIM_VARIANTS)) throw usage(`unknown variant '${name}' (known: ${SIM_VARIANT_NAMES.join(", ")})`);
    Object.assign(out, SIM_VARIANTS[name as SimVariant]);
  }
  return out;
}

/** `64KiB` or `16KiB-64KiB` (a range drawn per buffer). */
function txnSize(text: string): number | [number, number] {
  const dash = text.indexOf("-");
  if (dash < 0) return parseSize(text, "transaction size");
  const lo = parseSize(text.slice(0, dash), "transaction size");
  const hi = parseSize(text.slice(dash + 1), "transaction size");
  if (hi < lo) throw usage(`transaction size range '${text}' runs backwards`);
  return [lo, hi];
}

function flag(text: string, what: string): boolean {
  if (text === "" || text === "1" || text === "true") return true;
  if (text === "0" || text === "false") return false;
  throw usage(`${what} '${text}' is not true or false`);
}

/**
 * Turns `{ state: "64MiB", seed: "1", txn: "1MiB", dirty: "4", variant: "mlx5+whole-buffer", empty: "" }`
 * into SimDevice options. Unknown keys and bad values are USAGE errors.
 */
export function simDeviceOptions(kv: Record<string, string>): SimDeviceOptions {
  const out: SimDeviceOptions = {};
  for (const k of Object.keys(kv))
    if (!(SIM_KEYS as readonly string[]).includes(k))
      throw usage(`unknown option '${k}' (known: ${SIM_KEYS.join(", ")})`);
  if (simProtocol(kv) !== 1) throw usage("protocol=v2 options are read by simMigrationOptions");
  if (kv.variant !== undefined) Object.assign(out, variantOptions(kv.variant));
  if (kv.state !== undefined) out.stateSize = parseSize(kv.state, "state size");
  if (kv.seed !== undefined) out.seed = integer(kv.seed, "seed", MAX_SEED);
  if (kv.txn !== undefined) out.txnSize = txnSize(kv.txn);
  if (kv["data-size"] !== undefined) out.dataSize = parseSize(kv["data-size"], "data section size");
  if (kv.dirty !== undefined)
    out.dirtyPerTxn = integer(kv.dirty, "dirty rate (pages per pre-copy transaction)", 2 ** 31);
  if (kv.empty !== undefined) out.empty = flag(kv.empty, "empty");
  return out;
}
