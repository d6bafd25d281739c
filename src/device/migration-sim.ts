// A strict simulated v2 migration device (MigrationVendor): the FSM of
// MIG_DEVICE_STATE with the arcs the device's flags allow, a data stream out
// in PRE_COPY/STOP_COPY and in during RESUMING (migration-stream.ts), and
// the vendor behaviours the v2 notes describe (§1, §3.7):
//
//   precopy: false     MIGRATION flags without PRE_COPY
//   p2p: true          flags with P2P (RUNNING_P2P and PRE_COPY_P2P exist)
//   restarts: true     the stream starts over at PRE_COPY → STOP_COPY (the
//                      stop-copy bytes are a whole state; a destination fed
//                      the pre-copy bytes ahead of them rejects the stream)
//   fixedAccess: N     every data read and write must be exactly N bytes
//   writeEinval: true  writes are applied, then answered with EINVAL
//   shortReads/shortWrites: reads give, writes take, fewer bytes than asked
//   enomsg: true       PRE_COPY "nothing now" is ENOMSG instead of 0
//
// Strict: a data access in the wrong state, a wrong access size, reads after
// the end, or concurrent accesses are refused with an errno and recorded in
// `violations` (tests assert it stays empty after a correct run). Faults arm
// an errno (or a lie) at the nth access of a point.
import { MigstreamError } from "../errors.js";
import { xxh3_64 } from "../kernels/xxh3.js";
import { ERRNO } from "../protocol/region-io.js";
import {
  MIG_STATE,
  MIGRATION_P2P,
  MIGRATION_PRE_COPY,
  MIGRATION_STOP_COPY,
  type MigState,
  migStateName,
} from "../protocol/v2/constants.js";
import type { PrecopyInfo } from "../protocol/v2/device-io.js";
import { hasSession, isSaving, sessionEffect, stateSupported } from "../protocol/v2/fsm.js";
import { FaultPlan, faultErrno } from "./faults.js";
import { DeviceImage } from "./image.js";
import { StreamConsumer, StreamProducer } from "./migration-stream.js";
import type { MigrationVendor } from "./migration-vendor.js";
import { DEFAULT_MIX, fillImage, type PageMix } from "./pages.js";
import { DEFAULT_STATE_SIZE, MAX_STATE_SIZE } from "./simulated.js";
import { VendorErrno } from "./vendor.js";

/** Where a v2 fault can strike. */
export type MigrationFaultPoint =
  | "get migration"
  | "get state"
  | "set state"
  | "read data"
  | "write data"
  | "precopy info"
  | "data size"
  | "reset"
  /** Transport level (in-process only): a SET that opens no session returns a new data channel anyway (case 7). */
  | "new data_fd";

export const MIGRATION_FAULT_POINTS: readonly MigrationFaultPoint[] = [
  "get migration",
  "get state",
  "set state",
  "read data",
  "write data",
  "precopy info",
  "data size",
  "reset",
  "new data_fd",
];

/** A fault a simulated v2 device arms: an errno (or a lie) at the nth access of a point. */
export interface MigrationFault {
  at: MigrationFaultPoint;
  /** Fires at the nth matching access (1-based, default 1). */
  nth?: number;
  /** errno (default EIO). */
  errno?: number;
  /** set state: match only the arc from / to these states. */
  from?: number;
  to?: number;
  /** set state: stay in the old state (default) or enter ERROR (a kernel driver may). */
  then?: "stay" | "error";
  /** read data: give this many bytes fewer (no errno). write data: take this many fewer. */
  short?: number;
}

/** Options of MigrationSimDevice: state size, seed, the vendor behaviours above, faults. */
export interface MigrationSimOptions {
  /** Bytes of device state (default 1 MiB). Ignored with `image`. */
  stateSize?: number;
  seed?: number;
  mix?: PageMix;
  /** Adopt this image as the state (benchmarks: generate once). */
  image?: Uint8Array;
  /** Start all zero (a destination). */
  empty?: boolean;
  /** PRE_COPY in the MIGRATION flags (default true). */
  precopy?: boolean;
  /** P2P in the MIGRATION flags (default false). */
  p2p?: boolean;
  /** Pages the running device changes per MiB read in PRE_COPY (default 0; accumulated, so small reads count too). */
  dirtyPerMiB?: number;
  /** The stream starts over at PRE_COPY → STOP_COPY (libvfio-user's sample server). */
  restarts?: boolean;
  /** Every data read and write must be exactly this many bytes (libvfio-user's gpio sample: 64). */
  fixedAccess?: number;
  /** Writes are applied, then answered EINVAL (the gpio sample). */
  writeEinval?: boolean;
  /** Reads return fewer bytes than asked (seeded), never 0 while data remains. */
  shortReads?: boolean;
  /** Writes take fewer bytes than offered (seeded), at least 1. */
  shortWrites?: boolean;
  /** PRE_COPY "nothing now" is ENOMSG (a kernel driver) instead of a 0-byte read. */
  enomsg?: boolean;
  /** The END record carries the state digest, checked on RESUMING → STOP (default true). */
  endDigest?: boolean;
}

/** An access the device refused as a user mistake. */
export interface MigrationViolation {
  what: string;
  state: MigState;
  errno: number;
}

function usage(message: string): MigstreamError {
  return new MigstreamError("USAGE", `simulated v2 device: ${message}`);
}

/** A strict simulated v2 migration device (a MigrationVendor): the behaviours and checks listed above. */
export class MigrationSimDevice implements MigrationVendor {
  readonly migrationFlags: number;
  readonly image: DeviceImage;
  readonly faults = new FaultPlan<MigrationFault>();
  readonly violations: MigrationViolation[] = [];
  /** Streams refused for their content, and failed validations (not user mistakes). */
  readonly rejected: string[] = [];
  /** Every arc the device ran, as "FROM>TO". */
  readonly arcs: string[] = [];
  resets = 0;
  /** Save sessions started (restarts count as new ones). */
  sessions = 0;
  /** Stream bytes of the last save session, and bytes taken by the last resume. */
  get sentBytes(): number {
    return this.#producer?.produced ?? this.#lastSent;
  }
  get receivedBytes(): number {
    return this.#consumer?.taken ?? this.#lastReceived;
  }

  readonly #o: Required<Omit<MigrationSimOptions, "image" | "empty" | "mix" | "stateSize" | "fixedAccess">> & {
    fixedAccess: number;
  };
  #state: MigState = MIG_STATE.RUNNING;
  #producer: StreamProducer | null = null;
  #consumer: StreamConsumer | null = null;
  #lastSent = 0;
  #lastReceived = 0;
  #role: "none" | "save" | "restore" = "none";
  #busy = false;
  #dirtyDue = 0;
  #rng: number;

  constructor(options: MigrationSimOptions = {}) {
    const seed = options.seed ?? 1;
    const fixed = options.fixedAccess ?? 0;
    if (!Number.isInteger(fixed) || fixed < 0 || fixed > 1 << 20)
      throw usage(`fixedAccess must be 0..1 MiB (got ${fixed})`);
    const dirty = options.dirtyPerMiB ?? 0;
    if (!Number.isInteger(dirty) || dirty < 0) throw usage(`dirtyPerMiB must be a whole number (got ${dirty})`);
    this.#o = {
      seed,
      precopy: options.precopy ?? true,
      p2p: options.p2p ?? false,
      dirtyPerMiB: dirty,
      restarts: options.restarts ?? false,
      fixedAccess: fixed,
      writeEinval: options.writeEinval ?? false,
      shortReads: options.shortReads ?? false,
      shortWrites: options.shortWrites ?? false,
      enomsg: options.enomsg ?? false,
      endDigest: options.endDigest ?? true,
    };
    this.migrationFlags =
      MIGRATION_STOP_COPY | (this.#o.precopy ? MIGRATION_PRE_COPY : 0) | (this.#o.p2p ? MIGRATION_P2P : 0);
    const mix = options.mix ?? DEFAULT_MIX;
    let bytes = options.image;
    if (bytes === undefined) {
      const n = options.stateSize ?? DEFAULT_STATE_SIZE;
      if (!Number.isSafeInteger(n) || n < 0 || n > MAX_STATE_SIZE)
        throw usage(`stateSize must be 0..${MAX_STATE_SIZE} (got ${n})`);
      bytes = new Uint8Array(n);
      if (!options.empty) fillImage(bytes, seed, mix);
    } else if (options.empty) bytes.fill(0);
    this.image = new DeviceImage(bytes, seed, mix, options.empty === true);
    this.#rng = (seed ^ 0x3c6ef372) >>> 0 || 1;
  }

  get state(): MigState {
    return this.#state;
  }

  /** The fixed data access size (0: any size). */
  get fixedAccess(): number {
    return this.#o.fixedAccess;
  }

  /** The stream starts over at STOP_COPY. */
  get restarts(): boolean {
    return this.#o.restarts;
  }

  /** Writes are answered EINVAL though applied. */
  get writeEinval(): boolean {
    return this.#o.writeEinval;
  }

  /** What the device last did ("save" once a save session started, "restore" once RESUMING was entered). */
  get lastRole(): "none" | "save" | "restore" {
    return this.#role;
  }

  digest(): bigint {
    return xxh3_64(this.image.bytes);
  }

  inject(f: MigrationFault): this {
    this.faults.arm(f);
    return this;
  }

  /** Device activity: changes `pages` pages if the device is running; returns how many changed. */
  run(pages: number): number {
    const s = this.#state;
    if (
      s !== MIG_STATE.RUNNING &&
      s !== MIG_STATE.RUNNING_P2P &&
      s !== MIG_STATE.PRE_COPY &&
      s !== MIG_STATE.PRE_COPY_P2P
    )
      return 0;
    this.image.touch(pages);
    return pages;
  }

  /** A fault armed at `at` (a transport consults "new data_fd"). */
  hit(at: MigrationFault["at"], from = -1, to = -1): MigrationFault | undefined {
    return this.faults.hit(at, from, to);
  }

  // ---- state machine -------------------------------------------------------

  async arc(to: MigState): Promise<void> {
    const from = this.#state;
    if (from === MIG_STATE.ERROR)
      throw this.#violation(
        `${migStateName(from)} → ${migStateName(to)}`,
        ERRNO.EINVAL,
        "the device is in ERROR: only a reset leaves it",
      );
    if (!stateSupported(to, this.migrationFlags) || !this.#direct(from, to)) {
      throw this.#violation(
        `${migStateName(from)} → ${migStateName(to)}`,
        ERRNO.EINVAL,
        "not a direct arc of this device",
      );
    }
    const f = this.faults.hit("set state", from, to);
    if (f) {
      if (f.then === "error") this.#enterError();
      throw new VendorErrno(faultErrno(f), `injected fault: ${migStateName(from)} → ${migStateName(to)}`);
    }
    this.#transition(from, to);
    this.arcs.push(`${migStateName(from)}>${migStateName(to)}`);
    this.#state = to;
  }

  /** The arcs a driver implements (notes §1.5); the FSM walk never asks for others. */
  #direct(from: MigState, to: MigState): boolean {
    const S = MIG_STATE;
    const key = `${from}>${to}`;
    const arcs = new Set([
      `${S.RUNNING}>${S.STOP}`,
      `${S.STOP}>${S.RUNNING}`,
      `${S.STOP}>${S.STOP_COPY}`,
      `${S.STOP_COPY}>${S.STOP}`,
      `${S.STOP}>${S.RESUMING}`,
      `${S.RESUMING}>${S.STOP}`,
      `${S.RUNNING}>${S.RUNNING_P2P}`,
      `${S.RUNNING_P2P}>${S.RUNNING}`,
      `${S.RUNNING_P2P}>${S.STOP}`,
      `${S.STOP}>${S.RUNNING_P2P}`,
      `${S.RUNNING}>${S.PRE_COPY}`,
      `${S.PRE_COPY}>${S.RUNNING}`,
      `${S.PRE_COPY}>${S.STOP_COPY}`,
      `${S.RUNNING_P2P}>${S.PRE_COPY_P2P}`,
      `${S.PRE_COPY_P2P}>${S.RUNNING_P2P}`,
      `${S.PRE_COPY}>${S.PRE_COPY_P2P}`,
      `${S.PRE_COPY_P2P}>${S.PRE_COPY}`,
      `${S.PRE_COPY_P2P}>${S.STOP_COPY}`,
    ]);
    // With P2P, RUNNING ↔ STOP and PRE_COPY → STOP_COPY go through the P2P states.
    if (
      this.migrationFlags & MIGRATION_P2P &&
      (key === `${S.RUNNING}>${S.STOP}` || key === `${S.STOP}>${S.RUNNING}` || key === `${S.PRE_COPY}>${S.STOP_COPY}`)
    )
      return false;
    return arcs.has(key);
  }

  /** Side effects of an arc on the sessions. */
  #transition(from: MigState, to: MigState): void {
    const fx = sessionEffect(from, to);
    if (fx === "opens" && isSaving(to)) this.#startSave();
    else if (fx === "continues" && to === MIG_STATE.STOP_COPY && this.#o.restarts)
      this.#startSave(); // the stream starts over
    else if (fx === "ends" && isSaving(from)) this.#endSave();
    if (to === MIG_STATE.RESUMING) {
      this.image.zero(); // the restore replaces the whole state
      this.#role = "restore";
      this.#consumer = new StreamConsumer(this.image, this.#o.fixedAccess > 0);
    } else if (from === MIG_STATE.RESUMING) {
      const c = this.#consumer;
      const why = c ? c.finish(this.#o.endDigest) : "no resume session";
      if (why !== undefined) {
        this.rejected.push(`RESUMING → ${migStateName(to)}: ${why}`);
        throw new VendorErrno(ERRNO.EINVAL, why); // stays RESUMING
      }
      this.#endRestore();
    }
  }

  #startSave(): void {
    this.sessions++;
    this.#role = "save";
    const id = (Math.imul(this.#o.seed, 0x9e3779b1) + this.sessions) >>> 0;
    this.#producer = new StreamProducer(this.image, id, this.#o.endDigest, this.#o.fixedAccess);
  }

  #endSave(): void {
    this.#lastSent = this.#producer?.produced ?? this.#lastSent;
    this.#producer = null;
    this.image.dirty.fill(0);
    this.image.dirtyCount = 0;
  }

  #endRestore(): void {
    this.#lastReceived = this.#consumer?.taken ?? this.#lastReceived;
    this.#consumer = null;
  }

  #enterError(): void {
    this.#endSave();
    this.#endRestore();
    this.#state = MIG_STATE.ERROR;
  }

  // ---- data ----------------------------------------------------------------

  readData(into: Uint8Array): Promise<number> {
    return this.#alone(() => {
      const s = this.#state;
      const p = this.#producer;
      if (!isSaving(s) || p === null)
        throw this.#violation(`read of ${into.length} bytes`, ERRNO.EINVAL, `data read in ${migStateName(s)}`);
      this.#checkSize(into.length, "read");
      const f = this.faults.hit("read data");
      if (f && f.short === undefined) throw new VendorErrno(faultErrno(f), "injected fault: read data");
      const stopped = s === MIG_STATE.STOP_COPY;
      let ask = into.length;
      if (this.#o.shortReads && ask > 1) ask = 1 + (this.#next() % ask);
      if (f?.short !== undefined) ask = Math.max(0, ask - f.short);
      const n = p.read(into.subarray(0, ask), stopped);
      if (n === 0 && !stopped && this.#o.enomsg) throw new VendorErrno(ERRNO.ENOMSG, "no data now");
      if (n > 0 && !stopped) this.#dirty(n); // the device keeps running meanwhile
      return n;
    });
  }

  writeData(data: Uint8Array): Promise<number> {
    return this.#alone(() => {
      const c = this.#consumer;
      if (this.#state !== MIG_STATE.RESUMING || c === null)
        throw this.#violation(
          `write of ${data.length} bytes`,
          ERRNO.EINVAL,
          `data write in ${migStateName(this.#state)}`,
        );
      this.#checkSize(data.length, "write");
      const f = this.faults.hit("write data");
      if (f && f.short === undefined) throw new VendorErrno(faultErrno(f), "injected fault: write data");
      let take = data.length;
      if (this.#o.shortWrites && take > 1) take = 1 + (this.#next() % take);
      if (f?.short !== undefined) take = Math.max(0, take - f.short);
      const why = c.write(data.subarray(0, take));
      if (why !== undefined) {
        this.rejected.push(why);
        throw new VendorErrno(ERRNO.EINVAL, why);
      }
      if (this.#o.writeEinval)
        throw new VendorErrno(ERRNO.EINVAL, "partial write (the device applied the bytes and answered 0)");
      return take;
    });
  }

  async precopyInfo(): Promise<PrecopyInfo> {
    const f = this.faults.hit("precopy info");
    if (f) throw new VendorErrno(faultErrno(f), "injected fault: precopy info");
    const s = this.#state;
    if ((s !== MIG_STATE.PRE_COPY && s !== MIG_STATE.PRE_COPY_P2P) || this.#producer === null) {
      throw new VendorErrno(ERRNO.EINVAL, `precopy info in ${migStateName(s)}`); // expected outside PRE_COPY (case 13)
    }
    const p = this.#producer;
    const initialBytes = p.initialBytes();
    return { initialBytes, dirtyBytes: Math.max(0, p.remaining(false) - initialBytes) };
  }

  async stopCopySize(): Promise<number> {
    const f = this.faults.hit("data size");
    if (f) throw new VendorErrno(faultErrno(f), "injected fault: data size");
    return this.#producer && !this.#o.restarts ? this.#producer.remaining(true) : this.image.size + 64;
  }

  async reset(keepState = false): Promise<void> {
    const f = this.faults.hit("reset");
    if (f) throw new VendorErrno(faultErrno(f), "injected fault on reset");
    this.resets++;
    this.#role = "none";
    this.#endSave();
    this.#endRestore();
    this.image.zero();
    if (!keepState || this.#state === MIG_STATE.ERROR) this.#state = MIG_STATE.RUNNING;
    else if (hasSession(this.#state)) {
      // libvfio-user keeps the state: a session state starts a fresh session.
      if (isSaving(this.#state)) this.#startSave();
      if (this.#state === MIG_STATE.RESUMING) this.#consumer = new StreamConsumer(this.image, this.#o.fixedAccess > 0);
    }
  }

  // ---- helpers -------------------------------------------------------------

  /** The running device changes dirtyPerMiB pages per MiB read (fractions carried over). */
  #dirty(bytesRead: number): void {
    this.#dirtyDue += (bytesRead * this.#o.dirtyPerMiB) / (1 << 20);
    const pages = Math.floor(this.#dirtyDue);
    if (pages > 0) {
      this.#dirtyDue -= pages;
      this.image.touch(pages);
    }
  }

  #checkSize(n: number, op: string): void {
    const fixed = this.#o.fixedAccess;
    if (fixed > 0 && n !== fixed)
      throw this.#violation(`${op} of ${n} bytes`, ERRNO.EINVAL, `this device takes exactly ${fixed} bytes per ${op}`);
  }

  /** One data access at a time (a second while one runs is EBUSY). */
  async #alone<T>(f: () => T): Promise<T> {
    if (this.#busy) throw this.#violation("concurrent access", ERRNO.EBUSY, "access while another is in progress");
    this.#busy = true;
    try {
      return f();
    } finally {
      this.#busy = false;
    }
  }

  #next(): number {
    let x = this.#rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#rng = x >>> 0;
    return this.#rng;
  }

  #violation(what: string, errno: number, message: string): VendorErrno {
    this.violations.push({ what: `${what}: ${message}`, state: this.#state, errno });
    return new VendorErrno(errno, message);
  }
}
