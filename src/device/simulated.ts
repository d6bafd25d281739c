// A strict simulated vendor device serving a v1 migration region (VendorRegion).
//
// Layout: the 32-byte register header at 0, the data section at `dataOffset`
// (32, or 4096 = page aligned and offered as a sparse mmap area) of `dataSize`
// bytes; region size = dataOffset + dataSize.
//
// Strict: every access a conforming user would not make — wrong width,
// misaligned, unknown offset, a write to a read-only field, an out-of-sequence
// read, data access in the wrong state or outside the current buffer, a
// transition outside the matrix, changed reserved bits, concurrent accesses —
// is rejected with an errno AND recorded in `violations`. Tests assert
// `violations` is empty after every correct run.
//
// Reserved bits: the device reports `reservedBits` (bits 3–31) in device_state
// and supports exactly those: a write must carry them unchanged (a user that
// does not read-modify-write gets EINVAL, conformance case 14).
//
// Model: an image of pages (src/device/pages.ts); a save session hands dirty
// pages over in transactions of the configured size (records.ts); while the
// device runs in pre-copy it changes `dirtyPerTxn` pages per acknowledged
// transaction, which pre-copy must resend. The destination checks and applies
// each transaction when data_size is written and validates the whole state on
// RESUMING → RUNNING.
import { MigstreamError } from "../errors.js";
import { xxh3_64 } from "../kernels/xxh3.js";
import {
  FIELDS,
  type Field,
  HEADER_SIZE,
  STATE_MASK,
  STATE_RESUMING,
  STATE_RUNNING,
  STATE_SAVING,
  stateIsError,
  stateName,
  stateSetError,
} from "../protocol/constants.js";
import { ERRNO } from "../protocol/region-io.js";
import { type Fault, FaultPlan, type FaultPoint, faultErrno } from "./faults.js";
import { DeviceImage } from "./image.js";
import { type MatrixName, transitionAllowed } from "./matrix.js";
import { DEFAULT_MIX, fillImage, PAGE_SIZE, type PageMix } from "./pages.js";
import { MIN_TXN } from "./records.js";
import { RestoreSession, type TxnRecord } from "./restore-session.js";
import { type SaveBuffer, SaveSession } from "./save-session.js";
import { VendorErrno, type VendorRegion } from "./vendor.js";

export const DEFAULT_STATE_SIZE = 1 << 20;
export const DEFAULT_TXN_SIZE = 64 << 10;
export const DEFAULT_DATA_OFFSET = PAGE_SIZE;
/** Largest device state (u32 lengths in records; typed-array limits). */
export const MAX_STATE_SIZE = 2 ** 32;
/** Largest data section. */
export const MAX_DATA_SIZE = 1 << 30;

/** Options of SimDevice: state size, seed, dirty rate, data-section layout, injected faults. */
export interface SimDeviceOptions {
  /** Bytes of device state (default 1 MiB). Ignored when `image` is given. */
  stateSize?: number;
  /** Image seed (fillImage) and the seed of the dirtying (default 1). */
  seed?: number;
  mix?: PageMix;
  /** Adopt this image as the device state (the device owns and changes it). For benchmarks: generate once. */
  image?: Uint8Array;
  /** Start with an all-zero state (a destination). */
  empty?: boolean;
  /** Region offset of the data section (default 4096; ≥ 32). */
  dataOffset?: number;
  /** Data section size (default: the largest transaction). */
  dataSize?: number;
  /** Transaction size, or a [min, max] range drawn per buffer (seeded). Default 64 KiB. */
  txnSize?: number | readonly [number, number];
  /** Pages the running device changes per acknowledged pre-copy transaction (default 0). */
  dirtyPerTxn?: number;
  /** false: pending_bytes is 0 all through pre-copy (no pre-copy data, case 29). */
  precopyData?: boolean;
  /** Which read acknowledges a buffer: "data_offset" (libvfio-user) or "data_size" (mlx5 v1). */
  ack?: "data_offset" | "data_size";
  /** Once pending_bytes reads 0 in pre-copy it stays 0 until the next device_state write. */
  stickyZeroPending?: boolean;
  /** Any access to `reserved` (@4) → EINVAL (libvfio-user); default: reads 0, writes ignored. */
  reservedEinval?: boolean;
  /** Data must be read/written in one access of the whole buffer at data_offset. */
  wholeBufferOnly?: boolean;
  /** Transition matrix (default "recommended"; see matrix.ts). */
  matrix?: MatrixName;
  /** An accepted write of the current state starts a new iteration (pending_bytes first), as the reference library's does. */
  sameStateResets?: boolean;
  /** Reserved bits (3–31) the device reports in device_state, e.g. 0x100. */
  reservedBits?: number;
  /** data_offset read blocks this long while the buffer is prepared (ms). */
  dataOffsetDelayMs?: number;
  /** Per-transaction xxh3 checksums (default true). */
  checksums?: boolean;
  /** END record carries the state digest, checked on RESUMING → RUNNING (default true). */
  endDigest?: boolean;
}

/** An access the device rejected (or noted) as a user mistake. */
export interface Violation {
  op: "read" | "write";
  offset: number;
  count: number;
  /** device_state when it happened. */
  state: number;
  /** errno returned; 0 when only noted (the access went through). */
  errno: number;
  message: string;
}

/** A write of device_state the simulated device saw: from which state, the value, whether it was accepted. */
export interface StateWrite {
  from: number;
  value: number;
  ok: boolean;
}

function usage(message: string): MigstreamError {
  return new MigstreamError("USAGE", `simulated device: ${message}`);
}

function checkInt(name: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max)
    throw usage(`${name} must be an integer in ${min}..${max} (got ${v})`);
  return v;
}

/** The header field starting at each offset. */
const FIELD_AT: ReadonlyArray<Field | undefined> = (() => {
  const at: Array<Field | undefined> = new Array(HEADER_SIZE).fill(undefined);
  for (const [name, f] of Object.entries(FIELDS) as Array<[Field, { offset: number }]>) at[f.offset] = name;
  return at;
})();

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A simulated vendor device: device state that changes while it runs, behind a VFIO v1 migration region (a VendorRegion). */
export class SimDevice implements VendorRegion {
  readonly size: number;
  readonly dataOffset: number;
  readonly dataSize: number;
  readonly sparseAreas: ReadonlyArray<{ offset: number; size: number }>;
  readonly image: DeviceImage;
  readonly faults = new FaultPlan();
  readonly violations: Violation[] = [];
  /** Transactions and transitions refused for their content (not user mistakes). */
  readonly rejected: string[] = [];
  readonly stateWrites: StateWrite[] = [];
  /** Buffers the user acknowledged in the current (or last) save session. */
  readonly sent: TxnRecord[] = [];
  resets = 0;
  sessions = 0;
  /** Buffers prepared (data_offset reads that made a new buffer). */
  prepares = 0;

  readonly #o: Required<Omit<SimDeviceOptions, "image" | "empty" | "mix" | "stateSize" | "dataSize" | "txnSize">>;
  readonly #txn: readonly [number, number];
  readonly #section: Uint8Array;
  #state: number;
  #save: SaveSession | null = null;
  #restore: RestoreSession | null = null;
  #lastRestore: RestoreSession | null = null;
  /** Last pending_bytes value read in this phase; null: not read since the last state change. */
  #pendingRead: number | null = null;
  #sticky = false;
  #busy = false;
  #resumeOffsetRead = false;
  #written: Array<[number, number]> = [];
  #rng: number;
  readonly #reg8 = new Uint8Array(8);
  readonly #reg4 = this.#reg8.subarray(0, 4);
  readonly #regView = new DataView(this.#reg8.buffer);

  constructor(options: SimDeviceOptions = {}) {
    const seed = options.seed ?? 1;
    this.#o = {
      seed,
      dataOffset: checkInt("dataOffset", options.dataOffset ?? DEFAULT_DATA_OFFSET, HEADER_SIZE, MAX_DATA_SIZE),
      dirtyPerTxn: checkInt("dirtyPerTxn", options.dirtyPerTxn ?? 0, 0, 2 ** 31),
      precopyData: options.precopyData ?? true,
      ack: options.ack ?? "data_offset",
      stickyZeroPending: options.stickyZeroPending ?? false,
      reservedEinval: options.reservedEinval ?? false,
      wholeBufferOnly: options.wholeBufferOnly ?? false,
      matrix: options.matrix ?? "recommended",
      sameStateResets: options.sameStateResets ?? false,
      reservedBits: options.reservedBits ?? 0,
      dataOffsetDelayMs: checkInt("dataOffsetDelayMs", options.dataOffsetDelayMs ?? 0, 0, 60_000),
      checksums: options.checksums ?? true,
      endDigest: options.endDigest ?? true,
    };
    if ((this.#o.reservedBits & STATE_MASK) !== 0) throw usage("reservedBits must leave bits 0–2 clear");
    const t = options.txnSize ?? DEFAULT_TXN_SIZE;
    const [lo, hi] = typeof t === "number" ? [t, t] : t;
    checkInt("txnSize", lo, MIN_TXN, MAX_DATA_SIZE);
    checkInt("txnSize (max)", hi, lo, MAX_DATA_SIZE);
    this.#txn = [lo, hi];
    this.dataOffset = this.#o.dataOffset;
    this.dataSize = checkInt("dataSize", options.dataSize ?? hi, MIN_TXN, MAX_DATA_SIZE);
    this.size = this.dataOffset + this.dataSize;
    this.sparseAreas = this.dataOffset % PAGE_SIZE === 0 ? [{ offset: this.dataOffset, size: this.dataSize }] : [];
    this.#section = new Uint8Array(this.dataSize);
    const mix = options.mix ?? DEFAULT_MIX;
    let bytes = options.image;
    if (bytes === undefined) {
      const n = checkInt("stateSize", options.stateSize ?? DEFAULT_STATE_SIZE, 0, MAX_STATE_SIZE);
      bytes = new Uint8Array(n);
      if (!options.empty) fillImage(bytes, seed, mix);
    } else if (options.empty) bytes.fill(0);
    this.image = new DeviceImage(bytes, seed, mix, options.empty === true);
    this.#state = (this.#o.reservedBits | STATE_RUNNING) >>> 0;
    this.#rng = (seed ^ 0x68e31da4) >>> 0 || 1;
  }

  /** Current device_state (with reserved bits). */
  get state(): number {
    return this.#state;
  }

  /**
   * What the device last did: "save" once a save session started, "restore"
   * once RESUMING was entered, "none" after a reset. A server uses it to tell
   * a stopped source (put back to RUNNING when its client leaves) from a
   * destination stopped after a failed restore (left stopped).
   */
  get lastRole(): "none" | "save" | "restore" {
    return this.#role;
  }
  #role: "none" | "save" | "restore" = "none";

  /** Transactions accepted by the current (or last) resume session. */
  get received(): TxnRecord[] {
    return (this.#restore ?? this.#lastRestore)?.received ?? [];
  }

  /** XXH3-64 of the device state. */
  digest(): bigint {
    return xxh3_64(this.image.bytes);
  }

  /** Arms a fault (see faults.ts). */
  inject(f: Fault): this {
    this.faults.arm(f);
    return this;
  }

  /** Device activity: changes `pages` pages if the device is running; returns how many changed. */
  run(pages: number): number {
    if ((this.#state & STATE_RUNNING) === 0 || stateIsError(this.#state) || (this.#state & STATE_RESUMING) !== 0)
      return 0;
    this.image.touch(pages);
    return pages;
  }

  // ---- VendorRegion --------------------------------------------------------

  read(offset: number, count: number): Promise<Uint8Array> {
    return this.#access(
      "read",
      offset,
      count,
      () => this.#read(offset, count),
      (v) => v.slice(),
    );
  }

  /** Reads straight into `into` (the in-process transport's zero-copy path); returns the bytes read. */
  readInto(offset: number, count: number, into: Uint8Array): Promise<number> {
    return this.#access(
      "read",
      offset,
      count,
      () => this.#read(offset, count),
      (v) => {
        into.set(v);
        return v.length;
      },
    );
  }

  /**
   * Reads as a view of the device's own memory (its data section, or a
   * register's scratch), unchanged until the device's next access: a server
   * sends the reply from there (VfioUserServer's ServedVendor.readView).
   */
  readView(offset: number, count: number): Promise<Uint8Array> {
    return this.#access(
      "read",
      offset,
      count,
      () => this.#read(offset, count),
      (v) => v,
    );
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    return this.#access(
      "write",
      offset,
      data.length,
      () => this.#write(offset, data),
      () => undefined,
    );
  }

  async reset(): Promise<void> {
    const f = this.faults.hit("reset");
    if (f) throw new VendorErrno(faultErrno(f), "injected fault on reset");
    this.resets++;
    this.#role = "none";
    this.#state = (this.#o.reservedBits | STATE_RUNNING) >>> 0;
    this.#endSave();
    this.#endRestore();
    this.image.zero();
    this.#newPhase();
  }

  // ---- access dispatch -----------------------------------------------------

  /**
   * Runs one access alone: while `f` blocks (returns a promise) any other
   * access is refused with EBUSY. `done` turns the result into the reply.
   * Accesses that do not block complete synchronously (one promise each).
   */
  #access<T, R>(
    op: "read" | "write",
    offset: number,
    count: number,
    f: () => T | Promise<T>,
    done: (v: T) => R,
  ): Promise<R> {
    if (this.#busy)
      return Promise.reject(
        this.#violation(op, offset, count, ERRNO.EBUSY, "access while another access is in progress"),
      );
    this.#busy = true;
    let r: T | Promise<T>;
    try {
      r = f();
    } catch (e) {
      this.#busy = false;
      return Promise.reject(e);
    }
    if (r instanceof Promise) {
      return r.then(
        (v) => {
          this.#busy = false;
          return done(v);
        },
        (e: unknown) => {
          this.#busy = false;
          throw e;
        },
      );
    }
    this.#busy = false;
    return Promise.resolve(done(r));
  }

  /** The header field an access addresses, "data", or a rejection. */
  #classify(op: "read" | "write", offset: number, count: number): Field | "data" {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(count) || offset < 0 || count <= 0) {
      throw this.#violation(op, offset, count, ERRNO.EINVAL, "bad offset or count");
    }
    if (offset < HEADER_SIZE) {
      const name = FIELD_AT[offset];
      if (name === undefined)
        throw this.#violation(op, offset, count, ERRNO.EINVAL, `misaligned header access at ${offset}`);
      const width = FIELDS[name].width;
      if (count !== width)
        throw this.#violation(
          op,
          offset,
          count,
          ERRNO.EINVAL,
          `${name} accessed with width ${count} (native ${width})`,
        );
      return name;
    }
    if (offset >= this.dataOffset && offset + count <= this.size) return "data";
    throw this.#violation(
      op,
      offset,
      count,
      ERRNO.EFAULT,
      `access ${count}@${offset} is outside the header and the data section`,
    );
  }

  #read(offset: number, count: number): Uint8Array | Promise<Uint8Array> {
    const what = this.#classify("read", offset, count);
    if (what === "reserved") {
      if (this.#o.reservedEinval)
        throw this.#violation(
          "read",
          offset,
          count,
          ERRNO.EINVAL,
          "reserved field accessed (this vendor returns EINVAL)",
        );
      return new Uint8Array(4); // spec: reads 0
    }
    const point: FaultPoint = what === "data" ? "read data" : `read ${what}`;
    const f = this.faults.hit(point);
    if (f && f.short === undefined && f.value === undefined)
      throw new VendorErrno(faultErrno(f), `injected fault: ${point}`);
    if (what === "data_offset" && this.#o.dataOffsetDelayMs > 0) {
      return this.#readDataOffsetSlowly(offset).then((v) => this.#lie(f, what, this.#u64(v)));
    }
    let out: Uint8Array;
    switch (what) {
      case "device_state":
        out = this.#u32(this.#state);
        break;
      case "pending_bytes":
        out = this.#u64(this.#readPending(offset));
        break;
      case "data_offset":
        out = this.#u64(this.#readDataOffset(offset));
        break;
      case "data_size":
        out = this.#u64(this.#readDataSize(offset));
        break;
      case "data":
        out = this.#readData(offset, count);
        break;
    }
    return this.#lie(f, what, out);
  }

  /** A fault that lets the read happen and then lies about it (a value, or fewer bytes). */
  #lie(f: Fault | undefined, what: Field | "data", out: Uint8Array): Uint8Array {
    if (f?.value !== undefined) out = what === "device_state" ? this.#u32(Number(f.value)) : this.#u64(f.value);
    if (f?.short !== undefined) out = out.subarray(0, Math.max(0, out.length - f.short));
    return out;
  }

  /** Register values go out through one scratch buffer (callers copy them out at once). */
  #u32(v: number): Uint8Array {
    this.#regView.setUint32(0, v >>> 0, true);
    return this.#reg4;
  }

  #u64(v: number | bigint): Uint8Array {
    if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) {
      this.#regView.setUint32(0, v % 0x1_0000_0000, true);
      this.#regView.setUint32(4, Math.floor(v / 0x1_0000_0000), true);
    } else this.#regView.setBigUint64(0, BigInt.asUintN(64, BigInt(v)), true);
    return this.#reg8;
  }

  #write(offset: number, data: Uint8Array): void {
    const what = this.#classify("write", offset, data.length);
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    switch (what) {
      case "device_state": {
        this.#writeState(dv.getUint32(0, true));
        return;
      }
      case "reserved":
        if (this.#o.reservedEinval)
          throw this.#violation(
            "write",
            offset,
            4,
            ERRNO.EINVAL,
            "reserved field accessed (this vendor returns EINVAL)",
          );
        return; // spec: writes ignored
      case "pending_bytes":
      case "data_offset":
        throw this.#violation("write", offset, 8, ERRNO.EINVAL, `${what} is read-only`);
      case "data_size": {
        this.#writeDataSize(offset, dv.getBigUint64(0, true));
        return;
      }
      case "data": {
        this.#writeData(offset, data);
        return;
      }
    }
  }

  // ---- device_state --------------------------------------------------------

  #writeState(value: number): void {
    const from = this.#state;
    const to = value & STATE_MASK;
    const log: StateWrite = { from, value, ok: false };
    this.stateWrites.push(log);
    if (stateIsError(from))
      throw this.#violation("write", 0, 4, ERRNO.EINVAL, "device is in ERROR: only reset leaves it");
    if ((value & ~STATE_MASK) >>> 0 !== this.#o.reservedBits) {
      throw this.#violation(
        "write",
        0,
        4,
        ERRNO.EINVAL,
        `reserved bits 0x${((value & ~STATE_MASK) >>> 0).toString(16)} not supported (device keeps 0x${this.#o.reservedBits.toString(16)})`,
      );
    }
    if (!transitionAllowed(from, to, this.#o.matrix))
      throw this.#violation(
        "write",
        0,
        4,
        ERRNO.EINVAL,
        `transition ${stateName(from)} → ${stateName(to)} is not allowed`,
      );
    const f = this.faults.hit("write device_state", from & STATE_MASK, to);
    if (f) {
      if (f.then === "error") {
        this.#state = stateSetError(from);
        this.#endSave();
        this.#endRestore();
      }
      throw new VendorErrno(faultErrno(f), `injected fault: ${stateName(from)} → ${stateName(to)}`);
    }
    if (stateIsError(to)) {
      // Accepted only by the matrix of a vendor that lets a user ask for ERROR; still a user mistake.
      this.#note("write", 0, 4, `user requested ERROR from ${stateName(from)}`);
      this.#state = stateSetError(from);
      this.#endSave();
      this.#endRestore();
    } else if ((from & STATE_MASK) !== to) {
      this.#transition(from & STATE_MASK, to);
      this.#state = (this.#o.reservedBits | to) >>> 0;
      this.#newPhase();
    } else if (this.#o.sameStateResets) this.#newPhase(); // else: same state, a no-op; an iteration in progress is kept
    log.ok = true;
  }

  /** Side effects of an accepted transition to another state (the new state is set by the caller). */
  #transition(from: number, to: number): void {
    const saving = (s: number) => (s & STATE_SAVING) !== 0 && (s & STATE_RESUMING) === 0;
    if (saving(to) && !saving(from)) {
      this.sessions++;
      this.#role = "save";
      this.sent.length = 0;
      const id = (Math.imul(this.#o.seed, 0x9e3779b1) + this.sessions) >>> 0;
      this.#save = new SaveSession(this.image, id, (to & STATE_RUNNING) === 0);
    } else if (saving(from) && saving(to)) {
      this.#save?.toStopCopy(); // 3 → 2: the device stops here
    } else if (saving(from)) {
      this.#endSave(); // 2 → 0, 2 → 1, 3 → 1, 3 → 0
    }
    if (to === STATE_RESUMING) {
      this.image.zero(); // the restore replaces the whole state
      this.#role = "restore";
      this.#restore = new RestoreSession();
      this.#lastRestore = null;
      this.#resumeOffsetRead = false;
      this.#written = [];
    } else if (from === STATE_RESUMING) {
      const r = this.#restore;
      const why = r ? r.finish(this.image, this.#o.endDigest) : "no resume session";
      if (why !== undefined) {
        this.rejected.push(`RESUMING → ${stateName(to)}: ${why}`);
        throw new VendorErrno(ERRNO.EINVAL, why); // stays RESUMING
      }
      this.#endRestore();
    }
  }

  #endSave(): void {
    this.#save = null;
    this.image.dirty.fill(0);
    this.image.dirtyCount = 0;
  }

  #endRestore(): void {
    if (this.#restore) this.#lastRestore = this.#restore;
    this.#restore = null;
    this.#resumeOffsetRead = false;
    this.#written = [];
  }

  /** A state change starts a new iteration: pending_bytes must be read first. */
  #newPhase(): void {
    this.#pendingRead = null;
    this.#sticky = false;
  }

  // ---- saving --------------------------------------------------------------

  #session(op: "read" | "write", offset: number, count: number, what: string): SaveSession {
    const s = this.#save;
    if (!s || (this.#state & STATE_SAVING) === 0 || stateIsError(this.#state)) {
      throw this.#violation(
        op,
        offset,
        count,
        ERRNO.EINVAL,
        `${what} outside a save session (device ${stateName(this.#state)})`,
      );
    }
    return s;
  }

  #readPending(offset: number): number {
    const s = this.#session("read", offset, 8, "pending_bytes read");
    const b = s.buffer;
    // Step f: the ack. The buffer is consumed unless this vendor also wants data_size read.
    if (b && (this.#o.ack === "data_offset" || b.sizeRead)) this.#consume(s, b, offset);
    let v = s.pendingBytes();
    if (!s.stopped) {
      if (!this.#o.precopyData || this.#sticky) v = 0;
      if (this.#o.stickyZeroPending && v === 0) this.#sticky = true;
    }
    this.#pendingRead = v;
    return v;
  }

  #consume(s: SaveSession, b: SaveBuffer, offset: number): void {
    if (b.bytesRead < b.size)
      this.#note("read", offset, 8, `buffer ${b.seq} acknowledged after reading ${b.bytesRead} of ${b.size} bytes`);
    s.consume();
    this.sent.push({ seq: b.seq, size: b.size });
    if (!s.stopped) this.image.touch(this.#o.dirtyPerTxn); // the device kept running meanwhile
  }

  /** A vendor that blocks until the data is ready, then prepares it. */
  async #readDataOffsetSlowly(offset: number): Promise<number> {
    const s = this.#state === (this.#o.reservedBits | STATE_RESUMING) ? null : this.#save;
    if (s && !s.buffer && this.#pendingRead) await sleep(this.#o.dataOffsetDelayMs);
    return this.#readDataOffset(offset);
  }

  #readDataOffset(offset: number): number {
    if (this.#state === (this.#o.reservedBits | STATE_RESUMING)) {
      this.#resumeOffsetRead = true;
      this.#written = [];
      return this.dataOffset;
    }
    const s = this.#session("read", offset, 8, "data_offset read");
    if (s.buffer) return s.buffer.offset; // same buffer until acknowledged
    if (this.#pendingRead === null)
      throw this.#violation("read", offset, 8, ERRNO.EINVAL, "data_offset read before pending_bytes");
    if (this.#pendingRead === 0)
      throw this.#violation("read", offset, 8, ERRNO.EINVAL, "data_offset read when pending_bytes was 0");
    this.prepares++;
    const digest = this.#o.endDigest ? () => xxh3_64(this.image.bytes) : undefined;
    s.fill(this.#section, this.dataOffset, this.#nextTxnSize(), { checksum: this.#o.checksums, digest });
    return this.dataOffset;
  }

  #nextTxnSize(): number {
    const [lo, hi] = this.#txn;
    let n = lo;
    if (hi > lo) {
      let x = this.#rng;
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.#rng = x >>> 0;
      n = lo + (this.#rng % (hi - lo + 1));
    }
    return Math.min(n, this.dataSize);
  }

  #readDataSize(offset: number): number {
    if ((this.#state & STATE_RESUMING) !== 0 && !stateIsError(this.#state)) {
      throw this.#violation("read", offset, 8, ERRNO.EINVAL, "data_size read while RESUMING (undefined)");
    }
    const s = this.#session("read", offset, 8, "data_size read");
    if (!s.buffer) throw this.#violation("read", offset, 8, ERRNO.EINVAL, "data_size read before data_offset");
    s.buffer.sizeRead = true;
    return s.buffer.size;
  }

  #readData(offset: number, count: number): Uint8Array {
    const s = this.#session("read", offset, count, "data read");
    const b = s.buffer;
    if (!b) throw this.#violation("read", offset, count, ERRNO.EINVAL, "data read before data_offset");
    if (offset < b.offset || offset + count > b.offset + b.size) {
      throw this.#violation(
        "read",
        offset,
        count,
        ERRNO.EINVAL,
        `data read ${count}@${offset} outside the buffer [${b.offset}, ${b.offset + b.size})`,
      );
    }
    if (this.#o.wholeBufferOnly && (offset !== b.offset || count !== b.size)) {
      throw this.#violation("read", offset, count, ERRNO.EINVAL, "this vendor wants the whole buffer in one read");
    }
    b.bytesRead += count;
    const at = offset - this.dataOffset;
    return this.#section.subarray(at, at + count);
  }

  // ---- resuming ------------------------------------------------------------

  #resuming(op: "read" | "write", offset: number, count: number, what: string): RestoreSession {
    const r = this.#restore;
    if (!r || this.#state !== (this.#o.reservedBits | STATE_RESUMING)) {
      throw this.#violation(
        op,
        offset,
        count,
        ERRNO.EINVAL,
        `${what} outside RESUMING (device ${stateName(this.#state)})`,
      );
    }
    if (!this.#resumeOffsetRead)
      throw this.#violation(op, offset, count, ERRNO.EINVAL, `${what} before reading data_offset`);
    return r;
  }

  #writeData(offset: number, data: Uint8Array): void {
    this.#resuming("write", offset, data.length, "data write");
    const f = this.faults.hit("write data");
    if (f) throw new VendorErrno(faultErrno(f), "injected fault: write data");
    const at = offset - this.dataOffset;
    if (this.#o.wholeBufferOnly && (at !== 0 || this.#written.length > 0)) {
      throw this.#violation(
        "write",
        offset,
        data.length,
        ERRNO.EINVAL,
        "this vendor wants the whole buffer in one write at data_offset",
      );
    }
    this.#section.set(data, at);
    this.#written.push([at, at + data.length]);
  }

  #writeDataSize(offset: number, value: bigint): void {
    const r = this.#resuming("write", offset, 8, "data_size write");
    if (value === 0n || value > BigInt(this.dataSize)) {
      throw this.#violation("write", offset, 8, ERRNO.EINVAL, `data_size ${value} (data section ${this.dataSize})`);
    }
    const n = Number(value);
    const have = covered(this.#written, n);
    if (have < n)
      throw this.#violation(
        "write",
        offset,
        8,
        ERRNO.EINVAL,
        `data_size ${n} but only ${have} bytes written from data_offset`,
      );
    const f = this.faults.hit("write data_size");
    if (f) throw new VendorErrno(faultErrno(f), "injected fault: write data_size");
    this.#resumeOffsetRead = false;
    this.#written = [];
    const why = r.apply(this.#section.subarray(0, n), this.image); // consumed before the write returns
    if (why !== undefined) {
      this.rejected.push(`transaction rejected: ${why}`);
      throw new VendorErrno(ERRNO.EINVAL, why);
    }
  }

  // ---- logs ----------------------------------------------------------------

  #violation(op: "read" | "write", offset: number, count: number, errno: number, message: string): VendorErrno {
    this.violations.push({ op, offset, count, state: this.#state, errno, message });
    return new VendorErrno(errno, message);
  }

  #note(op: "read" | "write", offset: number, count: number, message: string): void {
    this.violations.push({ op, offset, count, state: this.#state, errno: 0, message });
  }
}

/** Bytes covered from 0 by the union of `[start, end)` intervals (up to `n`). */
function covered(intervals: Array<[number, number]>, n: number): number {
  const sorted = [...intervals].sort((a, b) => a[0] - b[0]);
  let end = 0;
  for (const [s, e] of sorted) {
    if (s > end) break;
    if (e > end) end = e;
    if (end >= n) break;
  }
  return Math.min(end, n);
}
