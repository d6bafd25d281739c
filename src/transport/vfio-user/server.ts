// vfio-user server serving any VendorRegion as the v1 migration region of a
// PCI device. One client at a time; messages are handled strictly in order
// (a vendor may block, e.g. in a data_offset read). As strict as the reference
// server (reference notes vfio-user.md §5): a message that is not a command
// gets EINVAL; msg_size 16 only for DEVICE_RESET, which has no payload;
// msg_size at most a whole REGION_WRITE of max_data_xfer_size (larger: EINVAL,
// then the connection closes); VERSION first, with NUL-terminated JSON;
// region-info caps (and the CAPS flag) only when they fit the request's argsz;
// DEVICE_RESET refused while the device is STOP or stop-and-copy. The
// "libvfio-user" variant (reference.ts) adds what only the reference does.
// Region layout:
//   0-6, 8 and other unused indices: size 0, flags 0
//   7 (PCI config): 256 bytes of plain memory
//   regionIndex (default 9): the migration region, TYPE cap (3, 1) and, when
//     the vendor offers sparse areas, a SPARSE_MMAP cap (no MMAP flag: we pass
//     no fd, every access is a message)
//   digestRegionIndex (default regionIndex + 1), only when the vendor has
//     digest(): 8 read-only bytes, the state digest (see DIGEST_REGION_TYPE).

import { VendorErrno, type VendorRegion } from "../../device/vendor.js";
import { MigstreamError } from "../../errors.js";
import { STATE_MASK, STATE_SAVING, STATE_STOP } from "../../protocol/constants.js";
import { ERRNO } from "../../protocol/region-io.js";
import { builtin } from "../builtin.js";
import { Channel, type NetModule, type NetServer, type NetSocket } from "./channel.js";
import {
  CMD,
  DEFAULT_MAX_DATA_XFER,
  DEFAULT_MIGRATION_REGION_INDEX,
  DEVICE_FLAGS_PCI,
  DEVICE_FLAGS_RESET,
  DEVICE_INFO_SIZE,
  DIGEST_REGION_SIZE,
  DIGEST_REGION_SUBTYPE,
  DIGEST_REGION_TYPE,
  FLAG_ERROR,
  FLAG_NO_REPLY,
  FLAG_TYPE_MASK,
  HEADER_SIZE,
  MAX_DATA_XFER_LIMIT,
  MAX_REGIONS,
  MIGRATION_PGSIZE,
  PCI_CONFIG_REGION_INDEX,
  PCI_CONFIG_SIZE,
  PCI_NUM_FIXED_REGIONS,
  PCI_NUM_IRQS,
  PROTOCOL_MAJOR,
  PROTOCOL_MINOR,
  REGION_ACCESS_SIZE,
  REGION_FLAG_READ,
  REGION_FLAG_WRITE,
  REGION_INFO_SIZE,
  REGION_SUBTYPE_MIGRATION,
  REGION_TYPE_MIGRATION,
  TYPE_COMMAND,
  TYPE_REPLY,
} from "./constants.js";
import {
  REFERENCE_NUM_REGIONS,
  referenceVersionJson,
  refusedWhileStopped,
  type ServerVariant,
  serverMaxMessage,
} from "./reference.js";
import { SpareBuffers } from "./spare-buffers.js";
import { adopt, ReadSink, userBufferReads } from "./user-buffer.js";
import {
  decodeVersion,
  encodeDeviceInfo,
  encodeRegionInfoReply,
  encodeSparseCap,
  encodeTypeCap,
  encodeVersion,
  type Header,
  newMessage,
  readAccess,
  writeHeader,
} from "./wire.js";

/** Messages queued on one connection before we stop reading from its socket. */
export const MAX_QUEUED_MESSAGES = 32;
/** Largest max_msg_fds a client may state (the reference server's bound). */
export const MAX_CLIENT_MSG_FDS = 1024;
/**
 * How long a connection arriving while another client is served waits for
 * that client to leave before it is refused (covers a client that closes and
 * at once reconnects, before the server saw the close).
 */
export const DEFAULT_CLIENT_WAIT_MS = 1000;
/** Connections that may wait at once; more are refused at once. */
export const MAX_WAITING_CLIENTS = 4;
/**
 * How long a client may take to send its whole VERSION message after it
 * connected, and any later message after its first byte arrived, ms. A client
 * idle *between* messages is never dropped (a VMM holds its connection for the
 * device's life); one that is silent before VERSION or stops inside a message
 * would otherwise hold the one-client server for good.
 */
export const DEFAULT_IDLE_TIMEOUT_MS = 5000;
/** A waiting connection's wait runs at least this long past the active client's idle deadline, ms. */
const AFTER_DEADLINE_MS = 200;
/** Smallest max_data_xfer_size the server accepts to offer. */
export const MIN_SERVER_DATA_XFER = 64;
/**
 * Smallest REGION_READ answered from the vendor's memory (readView) rather
 * than copied into the reply (readInto): holding the connection's next
 * message until the socket is done costs a reply its own writev (the replies
 * to the messages of one read no longer go out together), which outweighs the
 * copy of a small read but not of a large one.
 */
export const VIEW_MIN_BYTES = 256 << 10;

/**
 * A VendorRegion that may also report a digest of the device state, and read
 * straight into a buffer (then a REGION_READ reply is filled in place: one
 * copy and no allocation per read).
 */
export type ServedVendor = VendorRegion & {
  digest?: () => bigint | Promise<bigint>;
  /** Reads `count` bytes at `offset` into `into`; returns how many it read. */
  readInto?: (offset: number, count: number, into: Uint8Array) => Promise<number>;
  /**
   * Reads `count` bytes at `offset` as a view of the vendor's own memory,
   * unchanged until the vendor's next access (a device's data section): the
   * reply then goes out from there, with no copy, and the server handles no
   * other message of the connection until the socket is done with it.
   */
  readView?: (offset: number, count: number) => Promise<Uint8Array>;
  /** The v1 device_state (a SimDevice's), when known: DEVICE_RESET is refused while it is STOP or stop-and-copy. */
  readonly state?: number;
};

/**
 * A handler's reply: payload parts to concatenate, a whole spare message (SpareBuffers)
 * with the payload in place, or a spare message (header space and the first
 * payload bytes) followed by `view`, a vendor's memory sent as it is (see
 * ServedVendor.readView).
 */
export type Reply = Uint8Array[] | { message: Uint8Array; view?: Uint8Array };

/**
 * Commands beyond the base set, served by a protocol extension (the v2
 * migration handler, server-v2.ts). Its contract: `gate` runs before every
 * command but VERSION and may refuse it (throw a Rejection); `handle` answers
 * the commands it knows (undefined: not one of its) and may refuse with a
 * Rejection, whose `body` then rides on the error reply; `reset` replaces the
 * vendor reset on DEVICE_RESET.
 */
/** What an extension may use of the client connection: its VERSION limit and spare reply buffers. */
export interface ExtensionClient {
  readonly maxDataXfer: number;
  /** A spare buffer for a whole reply message (header space first), for a `{ message }` reply. */
  takeBuffer(n: number): Uint8Array;
  giveBuffer(b: Uint8Array): void;
}

export interface ServerExtension {
  /** Serve no v1 migration region (a v2 device); the digest region is still served. */
  readonly noMigrationRegion?: boolean;
  gate?(cmd: number): void;
  handle?(cmd: number, payload: Uint8Array, client: ExtensionClient): Promise<Reply> | undefined;
  reset?(): Promise<void>;
}

/**
 * What the server does to the device when a client that sent VERSION goes
 * away: "reset" (as the reference server does), "keep" (nothing), or a
 * function. It runs after the client's last command settled and before the
 * next client's first command.
 */
export type DisconnectPolicy = "reset" | "keep" | ((vendor: ServedVendor) => Promise<void>);

/** Options of VfioUserServer: the region index, limits, and what happens when a client leaves. */
export interface VfioUserServerOptions {
  /** "default", or "libvfio-user": behave as the reference server wherever the two differ (see reference.ts). */
  variant?: ServerVariant;
  /** Sees every message just before it is handled, in order (header and payload, valid only during the call). */
  onMessage?: (h: Header, payload: Uint8Array) => void;
  /** Migration region index (≥ 9, default 9). */
  regionIndex?: number;
  /** Digest region index (default regionIndex + 1); only used when the vendor has digest(). */
  digestRegionIndex?: number;
  /** max_data_xfer_size we state in VERSION (default 1 MiB). */
  maxDataXfer?: number;
  /** Publish the vendor's sparse areas as a SPARSE_MMAP cap (default true). */
  sparseMmap?: boolean;
  /** Put the SPARSE_MMAP cap before the TYPE cap (default false; tests use it). */
  sparseFirst?: boolean;
  /** How long a second client waits for the first to leave before it is refused (ms, default DEFAULT_CLIENT_WAIT_MS). */
  clientWaitMs?: number;
  /** What a client going away does to the device (default "reset", as the reference server). */
  onDisconnect?: DisconnectPolicy;
  /** Idle deadline before VERSION and inside a message, ms (default DEFAULT_IDLE_TIMEOUT_MS; 0: none). */
  idleTimeoutMs?: number;
  /** Where connection events and vendor failures are logged (default: nowhere). */
  log?: (line: string) => void;
  /** Commands beyond the base set (e.g. vfio-user v2 migration). */
  extension?: ServerExtension;
}

/** One region as served. */
interface Served {
  size: number;
  flags: number;
  caps: Uint8Array[];
  read?(offset: number, count: number): Promise<Uint8Array>;
  readInto?(offset: number, count: number, into: Uint8Array): Promise<number>;
  readView?(offset: number, count: number): Promise<Uint8Array>;
  write?(offset: number, data: Uint8Array): Promise<void>;
}

/** The errno to send for a failure of the vendor (EIO when it names none). */
function errnoOf(e: unknown): number {
  if (e instanceof VendorErrno) return e.errno || ERRNO.EIO;
  if (e instanceof MigstreamError && e.errno && e.errno in ERRNO) return ERRNO[e.errno as keyof typeof ERRNO];
  return ERRNO.EIO;
}

/** A refused command: an error reply with `errno` (and `body`, as some servers send), optionally dropping the client. */
export class Rejection extends Error {
  constructor(
    readonly errno: number,
    message: string,
    readonly drop = false,
    readonly body?: Uint8Array,
  ) {
    super(message);
  }
}

/** Serves a VendorRegion over a vfio-user UNIX socket, one client at a time (the vendor side of a migration). */
export class VfioUserServer {
  readonly regionIndex: number;
  readonly digestRegionIndex: number | undefined;
  readonly numRegions: number;
  readonly maxDataXfer: number;
  /** See VfioUserServerOptions.idleTimeoutMs. */
  readonly idleTimeoutMs: number;
  readonly variant: ServerVariant;
  /** Settles once the server closed (close(), or a "libvfio-user" server's one client left). */
  readonly closed: Promise<void>;
  private markClosed!: () => void;
  private readonly regions: Served[];
  private readonly log: (line: string) => void;
  private server: NetServer | undefined;
  private active: Connection | undefined;
  /** Connections waiting for the active client to leave, oldest first. */
  private readonly waiting: Array<{ sock: NetSocket; timer: ReturnType<typeof setTimeout> | undefined }> = [];
  /** A "libvfio-user" server took its one client. */
  private served = false;
  /** Settles when the last client's commands and the disconnect policy are done. */
  private idle: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;
  private fs!: typeof import("node:fs");
  private net!: NetModule;
  /** Accepted sockets are re-wrapped to read into our buffer (see user-buffer.ts). */
  private readonly userBuffers = userBufferReads();

  private constructor(
    readonly path: string,
    readonly vendor: ServedVendor,
    readonly opts: VfioUserServerOptions,
  ) {
    this.log = opts.log ?? (() => {});
    this.variant = opts.variant ?? "default";
    this.closed = new Promise((resolve) => (this.markClosed = resolve));
    this.regionIndex = opts.regionIndex ?? DEFAULT_MIGRATION_REGION_INDEX;
    if (
      !Number.isInteger(this.regionIndex) ||
      this.regionIndex < PCI_NUM_FIXED_REGIONS ||
      this.regionIndex >= MAX_REGIONS
    ) {
      throw new MigstreamError(
        "USAGE",
        `migration region index ${this.regionIndex} must be ${PCI_NUM_FIXED_REGIONS}..${MAX_REGIONS - 1}`,
      );
    }
    if (typeof vendor.digest === "function" && this.variant === "default") {
      const d = opts.digestRegionIndex ?? this.regionIndex + 1;
      if (
        !Number.isInteger(d) ||
        d < PCI_NUM_FIXED_REGIONS ||
        d >= MAX_REGIONS ||
        (d === this.regionIndex && !opts.extension?.noMigrationRegion)
      ) {
        throw new MigstreamError(
          "USAGE",
          `digest region index ${d} must be ${PCI_NUM_FIXED_REGIONS}..${MAX_REGIONS - 1} and differ from the migration region`,
        );
      }
      this.digestRegionIndex = d;
    }
    this.maxDataXfer = opts.maxDataXfer ?? DEFAULT_MAX_DATA_XFER;
    if (
      !Number.isInteger(this.maxDataXfer) ||
      this.maxDataXfer < MIN_SERVER_DATA_XFER ||
      this.maxDataXfer > MAX_DATA_XFER_LIMIT
    ) {
      throw new MigstreamError(
        "USAGE",
        `max_data_xfer_size ${this.maxDataXfer} must be ${MIN_SERVER_DATA_XFER}..${MAX_DATA_XFER_LIMIT}`,
      );
    }
    this.idleTimeoutMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    if (!Number.isInteger(this.idleTimeoutMs) || this.idleTimeoutMs < 0)
      throw new MigstreamError("USAGE", `idle timeout ${this.idleTimeoutMs} must be a whole number of ms (0: none)`);
    this.numRegions = Math.max(REFERENCE_NUM_REGIONS, this.regionIndex + 1, (this.digestRegionIndex ?? 0) + 1);
    this.regions = this.layout();
  }

  /** Starts serving `vendor` on a UNIX socket at `path` (a stale socket file is replaced). */
  static async listen(path: string, vendor: ServedVendor, opts: VfioUserServerOptions = {}): Promise<VfioUserServer> {
    const s = new VfioUserServer(path, vendor, opts);
    s.fs = await builtin<typeof import("node:fs")>("fs");
    const net = await builtin<NetModule>("net");
    s.net = net;
    await clearStaleSocket(net, s.fs, path);
    // Paused on connect: nothing is read before the socket is adopted (or resumed) when served.
    const server = net.createServer({ pauseOnConnect: s.userBuffers }, (sock) => s.accept(sock));
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err) => {
        const code = (err as { code?: string }).code;
        reject(
          new MigstreamError("TRANSPORT", `vfio-user server: cannot listen on ${path}: ${err.message}`, {
            errno: code,
            cause: err,
          }),
        );
      });
      server.listen(path, () => resolve());
    });
    server.on("error", (err) => s.log(`vfio-user server: ${err.message}`));
    s.server = server;
    s.log(
      `vfio-user server: listening on ${path} (migration region ${s.regionIndex}, ${vendor.size} bytes${s.digestRegionIndex !== undefined ? `, digest region ${s.digestRegionIndex}` : ""})`,
    );
    return s;
  }

  /** Whether a client is connected. */
  get connected(): boolean {
    return this.active !== undefined;
  }

  /** Stops listening, drops the client, removes the socket file. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const server = this.server;
      this.server = undefined;
      for (const w of this.waiting.splice(0)) {
        clearTimeout(w.timer);
        w.sock.destroy();
      }
      this.active?.channel.close();
      if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
      try {
        this.fs.rmSync(this.path, { force: true });
      } catch {
        // already gone
      }
      this.log("vfio-user server: closed");
      this.markClosed();
    })();
    return this.closing;
  }

  private layout(): Served[] {
    const regions: Served[] = Array.from({ length: this.numRegions }, () => ({ size: 0, flags: 0, caps: [] }));
    const config = new Uint8Array(PCI_CONFIG_SIZE);
    regions[PCI_CONFIG_REGION_INDEX] = {
      size: PCI_CONFIG_SIZE,
      flags: REGION_FLAG_READ | REGION_FLAG_WRITE,
      caps: [],
      read: async (o, n) => config.slice(o, o + n),
      write: async (o, d) => config.set(d, o),
    };
    const v = this.vendor;
    if (this.opts.extension?.noMigrationRegion) {
      this.layoutDigest(regions);
      return regions;
    }
    const typeCap = encodeTypeCap(REGION_TYPE_MIGRATION, REGION_SUBTYPE_MIGRATION);
    const areas = this.opts.sparseMmap === false || this.variant === "libvfio-user" ? [] : (v.sparseAreas ?? []);
    const caps =
      areas.length === 0
        ? [typeCap]
        : this.opts.sparseFirst
          ? [encodeSparseCap(areas), typeCap]
          : [typeCap, encodeSparseCap(areas)];
    regions[this.regionIndex] = {
      size: v.size,
      flags: REGION_FLAG_READ | REGION_FLAG_WRITE,
      caps,
      read: (o, n) => v.read(o, n),
      ...(typeof v.readInto === "function"
        ? { readInto: (o: number, n: number, into: Uint8Array) => v.readInto!(o, n, into) }
        : {}),
      ...(typeof v.readView === "function" ? { readView: (o: number, n: number) => v.readView!(o, n) } : {}),
      write: (o, d) => v.write(o, d),
    };
    this.layoutDigest(regions);
    return regions;
  }

  /** The digest region, when the vendor has digest(). */
  private layoutDigest(regions: Served[]): void {
    const v = this.vendor;
    if (this.digestRegionIndex !== undefined) {
      regions[this.digestRegionIndex] = {
        size: DIGEST_REGION_SIZE,
        flags: REGION_FLAG_READ,
        caps: [encodeTypeCap(DIGEST_REGION_TYPE, DIGEST_REGION_SUBTYPE)],
        read: async (o, n) => {
          const b = new Uint8Array(DIGEST_REGION_SIZE);
          new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, await v.digest!()), true);
          return b.subarray(o, o + n);
        },
      };
    }
  }

  private accept(sock: NetSocket): void {
    if (!this.server) {
      sock.destroy();
      return;
    }
    if (this.active || this.served) {
      this.wait(sock);
      return;
    }
    this.serve(sock);
  }

  /** Holds a connection (unread) until the active client leaves, or refuses it. */
  private wait(sock: NetSocket): void {
    const refuse = () => {
      this.log("vfio-user server: refusing a second connection (one client at a time)");
      sock.destroy();
    };
    if (this.waiting.length >= MAX_WAITING_CLIENTS) {
      refuse();
      return;
    }
    // The reference server never reads a second connection: it waits, unread, until the server closes.
    const waitMs = this.variant === "libvfio-user" ? undefined : (this.opts.clientWaitMs ?? DEFAULT_CLIENT_WAIT_MS);
    // When the wait runs out while the active client is about to be dropped by its idle deadline, wait for that too.
    const expire = () => {
      const until = this.active?.deadlineAt ?? 0;
      const left = until - Date.now();
      if (until > 0 && left > -AFTER_DEADLINE_MS) {
        w.timer = setTimeout(expire, Math.max(0, left) + AFTER_DEADLINE_MS);
        return;
      }
      this.unwait(sock);
      refuse();
    };
    const w: { sock: NetSocket; timer: ReturnType<typeof setTimeout> | undefined } = {
      sock,
      timer: waitMs === undefined ? undefined : setTimeout(expire, waitMs),
    };
    sock.on("error", () => {}); // reported by the Channel once served; ignored while waiting
    sock.on("close", () => this.unwait(sock));
    this.waiting.push(w);
  }

  private unwait(sock: NetSocket): void {
    const i = this.waiting.findIndex((w) => w.sock === sock);
    if (i < 0) return;
    clearTimeout(this.waiting[i].timer);
    this.waiting.splice(i, 1);
  }

  private serve(accepted: NetSocket): void {
    this.log("vfio-user server: client connected");
    this.served = this.variant === "libvfio-user";
    let sock = accepted;
    let sink: ReadSink | undefined;
    if (this.userBuffers) {
      sink = new ReadSink();
      const adopted = adopt(this.net, accepted, sink);
      if (adopted) sock = adopted;
      else {
        sink = undefined;
        accepted.resume();
      }
    }
    const conn: Connection = new Connection(
      this,
      sock,
      (err) => {
        this.active = undefined;
        this.log(`vfio-user server: client gone (${err.message})`);
        // A connection that never sent VERSION (e.g. a liveness probe) changes nothing.
        const policy = this.server && conn.versioned ? (this.opts.onDisconnect ?? "reset") : "keep";
        this.idle = conn.drained.then(() => this.afterDisconnect(policy));
        if (this.served) {
          // The reference server ends with its one client.
          void this.idle.then(() => this.close());
          return;
        }
        const next = this.waiting.shift();
        if (next) {
          clearTimeout(next.timer);
          this.serve(next.sock); // its commands start once `idle` settled
        }
      },
      this.idle,
      sink !== undefined,
    );
    sink?.attach((chunk) => conn.feed(chunk));
    this.active = conn;
  }

  /** Applies the disconnect policy; failures are logged (there is nobody to tell). */
  private async afterDisconnect(policy: DisconnectPolicy): Promise<void> {
    if (policy === "keep") return;
    try {
      await (policy === "reset" ? this.vendor.reset() : policy(this.vendor));
    } catch (e) {
      this.log(`vfio-user server: after disconnect: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** Handles one command; returns the reply payload in parts (or throws Rejection). */
  async handle(h: Header, p: Uint8Array, c: Connection): Promise<Reply> {
    if (!c.versioned && h.cmd !== CMD.VERSION)
      throw new Rejection(ERRNO.EINVAL, "the first message must be VERSION", true);
    if (h.size === HEADER_SIZE && h.cmd !== CMD.DEVICE_RESET) throw new Rejection(ERRNO.EINVAL, `${h.cmd}: no payload`);
    if (h.cmd === CMD.DEVICE_RESET && h.size !== HEADER_SIZE)
      throw new Rejection(ERRNO.EINVAL, `DEVICE_RESET with a ${h.size - HEADER_SIZE}-byte payload (it has none)`);
    if (this.stopped() && refusedWhileStopped(this.variant, h.cmd)) {
      throw new Rejection(ERRNO.EINVAL, `command ${h.cmd} refused while the device is STOP or stop-and-copy`);
    }
    const ext = this.opts.extension;
    if (ext && h.cmd !== CMD.VERSION) {
      ext.gate?.(h.cmd);
      const r = ext.handle?.(h.cmd, p, c);
      if (r !== undefined) return r;
    }
    switch (h.cmd) {
      case CMD.VERSION:
        return [this.version(p, c)];
      case CMD.DEVICE_GET_INFO: {
        const argsz = p.length >= 4 ? new DataView(p.buffer, p.byteOffset).getUint32(0, true) : 0;
        if (p.length < DEVICE_INFO_SIZE || argsz < DEVICE_INFO_SIZE)
          throw new Rejection(ERRNO.EINVAL, "short DEVICE_GET_INFO");
        return [
          encodeDeviceInfo({
            argsz: DEVICE_INFO_SIZE,
            flags: DEVICE_FLAGS_PCI | DEVICE_FLAGS_RESET,
            numRegions: this.numRegions,
            numIrqs: PCI_NUM_IRQS,
          }),
        ];
      }
      case CMD.DEVICE_GET_REGION_INFO: {
        if (p.length < REGION_INFO_SIZE) throw new Rejection(ERRNO.EINVAL, "short DEVICE_GET_REGION_INFO");
        const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
        const argsz = dv.getUint32(0, true);
        const index = dv.getUint32(8, true);
        if (argsz < REGION_INFO_SIZE || index >= this.numRegions)
          throw new Rejection(ERRNO.EINVAL, `region info: argsz ${argsz}, index ${index}`);
        const r = this.regions[index];
        return [encodeRegionInfoReply({ flags: r.flags, index, size: r.size }, r.caps, argsz)];
      }
      case CMD.REGION_READ:
      case CMD.REGION_WRITE:
        return this.access(h.cmd, p, c);
      case CMD.DEVICE_RESET:
        await (ext?.reset ? ext.reset() : this.vendor.reset());
        return [];
      default:
        throw new Rejection(ERRNO.ENOTSUP, `command ${h.cmd} not supported`);
    }
  }

  /** The vendor reports its v1 device_state, and it is STOP or stop-and-copy. */
  private stopped(): boolean {
    const low = this.vendor.state === undefined ? undefined : this.vendor.state & STATE_MASK;
    return low === STATE_STOP || low === STATE_SAVING;
  }

  private version(p: Uint8Array, c: Connection): Uint8Array {
    if (c.versioned) throw new Rejection(ERRNO.EINVAL, "VERSION sent twice");
    if (p.length > 4 && p[p.length - 1] !== 0)
      throw new Rejection(ERRNO.EINVAL, "VERSION JSON does not end with NUL", true);
    let v: ReturnType<typeof decodeVersion>;
    try {
      v = decodeVersion(p);
    } catch (e) {
      throw new Rejection(ERRNO.EINVAL, e instanceof Error ? e.message : String(e), true);
    }
    const mig = v.caps.migration as { pgsize?: unknown } | undefined;
    const fds = v.caps.max_msg_fds;
    const twin = (v.caps.twin_socket as { supported?: unknown } | undefined)?.supported;
    if (v.major !== PROTOCOL_MAJOR) throw new Rejection(ERRNO.EINVAL, `unsupported major ${v.major}`, true);
    if (mig?.pgsize !== undefined && mig.pgsize !== MIGRATION_PGSIZE)
      throw new Rejection(ERRNO.EINVAL, `refusing client page size ${String(mig.pgsize)}`, true);
    if (fds !== undefined && (typeof fds !== "number" || fds < 0 || fds > MAX_CLIENT_MSG_FDS))
      throw new Rejection(ERRNO.EINVAL, "bad max_msg_fds", true);
    if (twin !== undefined && typeof twin !== "boolean")
      throw new Rejection(ERRNO.EINVAL, "bad twin_socket.supported", true);
    c.versioned = true;
    const x = v.caps.max_data_xfer_size;
    c.maxDataXfer = typeof x === "number" && Number.isInteger(x) && x > 0 ? x : DEFAULT_MAX_DATA_XFER;
    const minor = Math.min(v.minor, PROTOCOL_MINOR);
    if (this.variant === "libvfio-user")
      return encodeVersion(PROTOCOL_MAJOR, minor, referenceVersionJson(this.maxDataXfer));
    // We receive no fds (max_msg_fds 0) and never offer twin_socket.
    const caps = {
      capabilities: { max_msg_fds: 0, max_data_xfer_size: this.maxDataXfer, migration: { pgsize: MIGRATION_PGSIZE } },
    };
    return encodeVersion(PROTOCOL_MAJOR, minor, caps);
  }

  private async access(cmd: number, p: Uint8Array, c: Connection): Promise<Reply> {
    if (p.length < REGION_ACCESS_SIZE) throw new Rejection(ERRNO.EINVAL, "short region access");
    const a = readAccess(p);
    const r = a.region < this.numRegions ? this.regions[a.region] : undefined;
    const write = cmd === CMD.REGION_WRITE;
    if (a.count > this.maxDataXfer) throw new Rejection(ERRNO.EINVAL, `count ${a.count} > max_data_xfer_size`);
    if (!r || a.offset + a.count > r.size)
      throw new Rejection(ERRNO.EINVAL, `access ${a.count}@${a.offset} outside region ${a.region}`);
    if (write ? p.length !== REGION_ACCESS_SIZE + a.count : p.length !== REGION_ACCESS_SIZE)
      throw new Rejection(ERRNO.EINVAL, "region access size mismatch");
    if (a.count === 0) return [];
    const op = write ? r.write : r.read;
    if (!op || !(r.flags & (write ? REGION_FLAG_WRITE : REGION_FLAG_READ)))
      throw new Rejection(ERRNO.EINVAL, `region ${a.region} is not ${write ? "writ" : "read"}able`);
    const echo = p.subarray(0, REGION_ACCESS_SIZE); // copied into the reply before `p` is released
    if (write) {
      // Like a write syscall: the vendor must be done with the bytes when its write settles.
      await r.write!(a.offset, p.subarray(REGION_ACCESS_SIZE));
      return [echo];
    }
    if (r.readView && (a.count >= VIEW_MIN_BYTES || !r.readInto)) {
      // The header and the echoed access, then the vendor's bytes where they lie.
      const view = await r.readView(a.offset, a.count);
      if (view.length !== a.count)
        throw new Rejection(ERRNO.EINVAL, `region ${a.region} returned ${view.length} of ${a.count} bytes`);
      const message = c.takeBuffer(HEADER_SIZE + REGION_ACCESS_SIZE);
      message.set(echo, HEADER_SIZE);
      return { message, view };
    }
    if (r.readInto) {
      // Straight into the reply message: header, the echoed access, the data.
      const at = HEADER_SIZE + REGION_ACCESS_SIZE;
      const message = c.takeBuffer(at + a.count);
      try {
        const n = await r.readInto(a.offset, a.count, message.subarray(at));
        if (n !== a.count) throw new Rejection(ERRNO.EINVAL, `region ${a.region} returned ${n} of ${a.count} bytes`);
      } catch (e) {
        c.giveBuffer(message);
        throw e;
      }
      message.set(echo, HEADER_SIZE);
      return { message };
    }
    const data = await r.read!(a.offset, a.count);
    if (data.length !== a.count)
      throw new Rejection(ERRNO.EINVAL, `region ${a.region} returned ${data.length} of ${a.count} bytes`);
    return [echo, data];
  }

  /** Logs why a client was dropped by its idle deadline. */
  dropped(why: string): void {
    this.log(`vfio-user server: dropping the client: ${why}`);
  }

  /** Reports a vendor failure (other than a plain VendorErrno) in the log. */
  logFailure(h: Header, e: unknown): void {
    if (!(e instanceof VendorErrno) && !(e instanceof Rejection))
      this.log(`vfio-user server: command ${h.cmd} failed: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** One client connection: messages handled one at a time, in order. */
class Connection {
  versioned = false;
  /** The client's max_data_xfer_size from its VERSION (the specification's default without one). */
  maxDataXfer = DEFAULT_MAX_DATA_XFER;
  readonly channel: Channel;
  /** When the idle deadline fires (Date.now() ms), or 0 while none is armed. */
  deadlineAt = 0;
  private chain: Promise<void>;
  private queued = 0;
  private paused = false;
  /** The whole VERSION message arrived (it may still wait for the previous client's wind-down). */
  private greeted = false;
  private deadline: ReturnType<typeof setTimeout> | undefined;
  private readonly rx = new SpareBuffers();
  private readonly tx = new SpareBuffers();
  /** Settles when the channel ended (a reply still being sent is then given up on). */
  private readonly ended: Promise<void>;

  constructor(
    private readonly server: VfioUserServer,
    private readonly sock: NetSocket,
    onEnd: (err: MigstreamError) => void,
    /** Commands wait for this (the previous client's wind-down) before running. */
    start: Promise<void>,
    /** The socket reads into a reused buffer (chunks are transient). */
    transient: boolean,
  ) {
    this.chain = start;
    let markEnded!: () => void;
    this.ended = new Promise((resolve) => (markEnded = resolve));
    const ends = (err: MigstreamError) => {
      this.disarm();
      markEnded();
      onEnd(err);
    };
    this.channel = new Channel(
      sock,
      (h, p) => this.enqueue(h, p),
      serverMaxMessage(server.maxDataXfer),
      ends,
      (n) => this.rx.take(n),
      transient,
    );
    // A msg_size out of bounds: EINVAL, then the channel closes (its byte stream cannot be followed).
    this.channel.onRefused = (h) => this.error(h, ERRNO.EINVAL, (h.flags & FLAG_NO_REPLY) !== 0);
    // After the Channel's own "data" listener (listeners run in order): the framer has the bytes.
    sock.on("data", () => this.watch());
    this.watch();
  }

  /** Bytes from a socket that reads into a reused buffer (see user-buffer.ts). */
  feed(chunk: Uint8Array): void {
    this.channel.feed(chunk);
    this.watch();
  }

  /**
   * The idle deadline: armed from the connection until the whole VERSION
   * message arrived, and from a message's first byte until it is whole; never
   * while we ourselves stopped reading (backpressure) or between messages.
   */
  private watch(): void {
    const ms = this.server.idleTimeoutMs;
    if (ms <= 0 || this.channel.closed) return;
    const inside = this.channel.pending > 0;
    if (this.paused || (this.greeted && !inside)) {
      this.disarm();
      return;
    }
    if (this.deadline !== undefined) return; // a deadline runs from the start of what is awaited
    this.deadlineAt = Date.now() + ms;
    this.deadline = setTimeout(() => this.expire(ms), ms);
  }

  private disarm(): void {
    clearTimeout(this.deadline);
    this.deadline = undefined;
    this.deadlineAt = 0;
  }

  /** The client took too long: drop it (the server serves the next one). */
  private expire(ms: number): void {
    this.deadline = undefined;
    this.deadlineAt = 0;
    if (this.channel.closed) return;
    const pending = this.channel.pending;
    const why = !this.greeted
      ? `no whole VERSION message within ${ms} ms of connecting${pending ? ` (${pending} bytes of one)` : ""}`
      : `stalled for ${ms} ms inside a message (${pending} bytes of it received)`;
    this.server.dropped(why);
    this.channel.fail(new MigstreamError("TIMEOUT", `vfio-user server: ${why}`));
  }

  private enqueue(h: Header, p: Uint8Array): void {
    if (h.cmd === CMD.VERSION) this.greeted = true;
    if (this.greeted) this.disarm(); // a whole message: the next one's deadline starts at its first byte
    this.queued++;
    if (this.queued >= MAX_QUEUED_MESSAGES && !this.paused) {
      this.paused = true;
      this.sock.pause();
    }
    this.chain = this.chain.then(() => this.process(h, p));
  }

  /** Settles once every command received so far has been handled (or skipped after close). */
  get drained(): Promise<void> {
    return this.chain;
  }

  private async process(h: Header, p: Uint8Array): Promise<void> {
    try {
      if (this.channel.closed) return;
      this.server.opts.onMessage?.(h, p);
      const noReply = (h.flags & FLAG_NO_REPLY) !== 0;
      if ((h.flags & FLAG_TYPE_MASK) !== TYPE_COMMAND) return this.error(h, ERRNO.EINVAL, noReply);
      try {
        const r = await this.server.handle(h, p, this);
        if (!noReply && !this.channel.closed) {
          const sent = this.reply(h, r);
          // The vendor's memory went out as it is: nothing may change it before the socket is done.
          if (sent) await Promise.race([sent, this.ended]);
        } else if (!Array.isArray(r)) this.tx.give(r.message);
      } catch (e) {
        this.server.logFailure(h, e);
        this.error(
          h,
          e instanceof Rejection ? e.errno : errnoOf(e),
          noReply,
          e instanceof Rejection ? e.body : undefined,
        );
        if (e instanceof Rejection && e.drop) this.channel.close();
      }
    } finally {
      this.rx.give(p);
      this.queued--;
      if (this.paused && this.queued <= MAX_QUEUED_MESSAGES / 2) {
        this.paused = false;
        this.sock.resume();
        this.watch();
      }
    }
  }

  /** A spare buffer for a reply message (see Reply). */
  takeBuffer(n: number): Uint8Array {
    return this.tx.take(n);
  }

  giveBuffer(b: Uint8Array): void {
    this.tx.give(b);
  }

  /**
   * One reply message, written with one socket write (with a vendor's view:
   * two, corked together). Returns, for a view, when the socket is done with it
   * (or the connection ended).
   */
  private reply(h: Header, r: Reply): Promise<void> | undefined {
    let msg: Uint8Array;
    if (Array.isArray(r)) {
      let size = HEADER_SIZE;
      for (const part of r) size += part.length;
      msg = this.tx.take(size);
      let at = HEADER_SIZE;
      for (const part of r) {
        msg.set(part, at);
        at += part.length;
      }
    } else msg = r.message;
    const view = Array.isArray(r) ? undefined : r.view;
    writeHeader(msg, { id: h.id, cmd: h.cmd, size: msg.length + (view?.length ?? 0), flags: TYPE_REPLY, errno: 0 });
    if (view === undefined) {
      this.channel.send(msg, () => this.tx.give(msg));
      return undefined;
    }
    return new Promise<void>((done) => {
      this.channel.sendParts(msg, view, () => {
        this.tx.give(msg);
        done();
      });
    });
  }

  private error(h: Header, errno: number, noReply: boolean, body?: Uint8Array): void {
    if (noReply || this.channel.closed) return;
    const m = newMessage(h.id, h.cmd, TYPE_REPLY | FLAG_ERROR, body?.length ?? 0, errno);
    if (body) m.set(body, HEADER_SIZE);
    this.channel.send(m);
  }
}

/** Removes a socket file nobody listens on; refuses a live one or a non-socket. */
async function clearStaleSocket(net: NetModule, fs: typeof import("node:fs"), path: string): Promise<void> {
  let st: import("node:fs").Stats;
  try {
    st = fs.lstatSync(path);
  } catch {
    return; // nothing there
  }
  if (!st.isSocket()) throw new MigstreamError("USAGE", `${path} exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.createConnection({ path });
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
  if (live) throw new MigstreamError("TRANSPORT", `${path}: another server is listening there`);
  fs.rmSync(path, { force: true });
}
