// The client end of one vfio-user connection: VERSION negotiation, requests
// matched to replies by msg_id, a timeout on every wait, and the commands a
// migration needs (device info, region info, region read/write, reset).
// No file descriptors are ever sent or expected; registers and data always go
// through REGION_READ/REGION_WRITE messages (we never mmap).
import { MigstreamError } from "../../errors.js";
import { ERRNO, errnoName } from "../../protocol/region-io.js";
import { builtin } from "../builtin.js";
import { queryRegionInfo } from "../region-info.js";
import { Channel, type NetModule } from "./channel.js";
import {
  CMD,
  DEFAULT_MAX_DATA_XFER,
  DEVICE_INFO_SIZE,
  FLAG_ERROR,
  FLAG_NO_REPLY,
  HEADER_SIZE,
  MAX_DATA_XFER_LIMIT,
  MIG_DATA_HEADER_SIZE,
  MIGRATION_PGSIZE,
  maxMessage,
  PROTOCOL_MAJOR,
  PROTOCOL_MINOR,
  REGION_ACCESS_SIZE,
  TYPE_COMMAND,
  TYPE_REPLY,
} from "./constants.js";
import type { Split } from "./framer.js";
import { SpareBuffers } from "./spare-buffers.js";
import { ReadSink, userBufferReads } from "./user-buffer.js";
import {
  type DeviceInfo,
  decodeDeviceInfo,
  decodeVersion,
  encodeDeviceInfo,
  encodeRegionInfoRequest,
  encodeVersion,
  type Header,
  isReply,
  newMessage,
  type RegionInfo,
  readAccess,
  type Version,
  writeAccess,
  writeHeader,
} from "./wire.js";

/** Default bound on every wait for a reply (a vendor may block in data_offset reads). */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** Requests that timed out whose late replies we still recognise (and drop). */
export const MAX_ABANDONED = 256;
/** Smallest max_data_xfer_size we can work with (one 8-byte register access). */
export const MIN_DATA_XFER = 8;
/**
 * struct vfio_device_info with cap_offset and pad (Linux ≥ 5.10 headers).
 * Some servers built against those headers require it; we retry with it on EINVAL.
 */
export const DEVICE_INFO_SIZE_LONG = 24;

const CMD_NAMES: Record<number, string> = Object.fromEntries(Object.entries(CMD).map(([k, v]) => [v, k]));
export function cmdName(cmd: number): string {
  return CMD_NAMES[cmd] ?? `command ${cmd}`;
}

export interface SessionOptions {
  /** Bound on every wait, ms (connect, each reply). Default DEFAULT_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Largest data transfer we offer and accept, capped at MAX_DATA_XFER_LIMIT. */
  maxDataXfer?: number;
}

interface Pending {
  cmd: number;
  step: string;
  /**
   * Consumes the reply payload synchronously (it is only valid during the
   * call); `tail`: the rest of a body landed in `landing` (see Framer Split).
   */
  accept(payload: Uint8Array, tail?: Uint8Array): void;
  reject(err: MigstreamError): void;
  /** When the wait for the reply ends with TIMEOUT (Date.now() ms). */
  deadline: number;
  /** Ends the wait with TIMEOUT. */
  expire(): void;
  /** A REGION_READ whose data may land straight in the caller's buffer. */
  landing?: Uint8Array;
}

/** Default reply parser: a copy of the payload. */
const copy = (p: Uint8Array): Uint8Array => p.slice();

export class VfioUserSession {
  /** The server's VERSION reply. */
  version!: Version;
  /** Negotiated largest REGION_READ/WRITE count. */
  maxDataXfer = DEFAULT_MAX_DATA_XFER;

  /** @internal The byte channel (connect feeds it from the socket). */
  readonly channel: Channel;
  private readonly pending = new Map<number, Pending>();
  private readonly abandoned = new Set<number>();
  private nextId = 1;
  private endError: MigstreamError | undefined;
  /** Receive buffer for messages that span socket chunks (replies are consumed at once). */
  private rx = new Uint8Array(0);
  /** Head of a REGION_READ reply whose data lands in the caller's buffer. */
  private readonly accessHead = new Uint8Array(REGION_ACCESS_SIZE);
  private readonly tx = new SpareBuffers();
  /**
   * One timer for every outstanding request (not one each: a timer per
   * message cost as much as the rest of a request): it fires at the earliest
   * deadline, expires what is due and re-arms for the next. Unreferenced: the
   * socket keeps the process alive while a reply is awaited.
   */
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerAt = Infinity;

  private constructor(
    socket: import("./channel.js").NetSocket,
    readonly path: string,
    readonly timeoutMs: number,
  ) {
    this.channel = new Channel(
      socket,
      (h, p, tail) => this.onMessage(h, p, tail),
      maxMessage(DEFAULT_MAX_DATA_XFER),
      (err) => this.onEnd(err),
      (n, h) => this.bodyFor(n, h),
    );
  }

  /**
   * Where a reply body that spans socket chunks is gathered: the data of a
   * REGION_READ reply of the expected size straight into the caller's
   * buffer (its 16-byte access echo apart), anything else in `rx`.
   */
  private bodyFor(n: number, h: Header): Uint8Array | Split {
    const lands =
      (h.cmd === CMD.REGION_READ || h.cmd === CMD.MIG_DATA_READ) && isReply(h.flags) && !(h.flags & FLAG_ERROR);
    const into = lands ? this.pending.get(h.id)?.landing : undefined;
    // REGION_READ: a 16-byte access echo, then the data; MIG_DATA_READ (padded to the size asked): {argsz, size}, then the data.
    const head = h.cmd === CMD.MIG_DATA_READ ? MIG_DATA_HEADER_SIZE : REGION_ACCESS_SIZE;
    if (into !== undefined && into.length === n - head) return { head: this.accessHead.subarray(0, head), tail: into };
    if (this.rx.length < n) this.rx = new Uint8Array(n);
    return this.rx.subarray(0, n);
  }

  /** Connects to the UNIX socket at `path` and negotiates VERSION. */
  static async connect(path: string, opts: SessionOptions = {}): Promise<VfioUserSession> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const offer = Math.min(opts.maxDataXfer ?? DEFAULT_MAX_DATA_XFER, MAX_DATA_XFER_LIMIT);
    const net = await builtin<NetModule>("net");
    // Reads land in one reusable buffer (see user-buffer.ts); replies are consumed during the callback.
    const sink = userBufferReads() ? new ReadSink() : undefined;
    const socket = net.createConnection(sink ? { path, onread: sink.onread } : { path });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new MigstreamError("TIMEOUT", `vfio-user: no connection to ${path} within ${timeoutMs} ms`, {
            step: "connect",
          }),
        );
      }, timeoutMs);
      socket.once("connect", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once("error", (err) => {
        clearTimeout(timer);
        const code = (err as { code?: string }).code;
        reject(
          new MigstreamError("TRANSPORT", `vfio-user: cannot connect to ${path}: ${err.message}`, {
            step: "connect",
            errno: code,
            cause: err,
          }),
        );
      });
    });
    const s = new VfioUserSession(socket, path, timeoutMs);
    sink?.attach((chunk) => s.channel.feed(chunk));
    try {
      await s.negotiate(offer);
    } catch (e) {
      s.close();
      throw e;
    }
    return s;
  }

  private async negotiate(offer: number): Promise<void> {
    const caps = { capabilities: { max_data_xfer_size: offer, migration: { pgsize: MIGRATION_PGSIZE } } };
    let reply: Uint8Array;
    try {
      reply = await this.request(CMD.VERSION, encodeVersion(PROTOCOL_MAJOR, PROTOCOL_MINOR, caps), "version");
    } catch (e) {
      if (!(e instanceof MigstreamError && e.code === "TRANSPORT")) throw e;
      const hint = "; a server that serves one client at a time may have another client";
      throw new MigstreamError("TRANSPORT", `${e.message}${hint}`, { step: "version", errno: e.errno, cause: e });
    }
    const v = decodeVersion(reply);
    const bad = (m: string, field: string) =>
      new MigstreamError("PROTOCOL", `vfio-user: ${m}`, { step: "version", field });
    if (v.major !== PROTOCOL_MAJOR)
      throw bad(`server speaks protocol ${v.major}.${v.minor}, we speak ${PROTOCOL_MAJOR}.x`, "major");
    if (v.minor > PROTOCOL_MINOR)
      throw bad(`server replied minor ${v.minor}, above the ${PROTOCOL_MINOR} we proposed`, "minor");
    const x = v.caps.max_data_xfer_size;
    if (x !== undefined && (typeof x !== "number" || !Number.isInteger(x) || x < MIN_DATA_XFER)) {
      throw bad(
        `server max_data_xfer_size ${JSON.stringify(x)} is not an integer ≥ ${MIN_DATA_XFER}`,
        "max_data_xfer_size",
      );
    }
    this.version = v;
    this.maxDataXfer = Math.min(x ?? DEFAULT_MAX_DATA_XFER, MAX_DATA_XFER_LIMIT);
    this.channel.limit = maxMessage(this.maxDataXfer);
  }

  get closed(): boolean {
    return this.channel.closed;
  }

  /**
   * Sends command `cmd` and resolves with `parse(reply payload)` (default: a
   * copy). `parse` runs as the reply arrives and must not keep the payload.
   * With a number instead of a payload, `fill` writes the payload into the
   * message at offset HEADER_SIZE.
   */
  request(cmd: number, payload: Uint8Array, step: string): Promise<Uint8Array>;
  request<T>(
    cmd: number,
    payloadSize: number,
    step: string,
    fill: (msg: Uint8Array) => void,
    parse: (p: Uint8Array, tail?: Uint8Array) => T,
    landing?: Uint8Array,
  ): Promise<T>;
  request<T>(
    cmd: number,
    p: Uint8Array | number,
    step: string,
    fill?: (msg: Uint8Array) => void,
    parse?: (p: Uint8Array, tail?: Uint8Array) => T,
    landing?: Uint8Array,
  ): Promise<T> {
    if (this.endError) return Promise.reject(this.endError);
    const id = this.allocId();
    const size = HEADER_SIZE + (typeof p === "number" ? p : p.length);
    const msg = this.tx.take(size);
    writeHeader(msg, { id, cmd, size, flags: TYPE_COMMAND, errno: 0 });
    if (typeof p === "number") fill!(msg);
    else msg.set(p, HEADER_SIZE);
    const read = (parse ?? copy) as (p: Uint8Array, tail?: Uint8Array) => T;
    return new Promise<T>((resolve, reject) => {
      const expire = () => {
        this.pending.delete(id);
        // A reply arriving now must not write into the caller's buffer any more.
        if (landing !== undefined) this.channel.release(landing);
        this.abandon(id);
        reject(
          new MigstreamError("TIMEOUT", `vfio-user: no ${cmdName(cmd)} reply within ${this.timeoutMs} ms`, { step }),
        );
      };
      const accept = (payload: Uint8Array, tail?: Uint8Array) => {
        try {
          resolve(read(payload, tail));
        } catch (e) {
          reject(e);
        }
      };
      const deadline = Date.now() + this.timeoutMs;
      this.pending.set(id, { cmd, step, accept, reject, deadline, expire, landing });
      try {
        this.channel.send(msg, () => this.tx.give(msg));
      } catch (e) {
        this.pending.delete(id);
        reject(e);
        return;
      }
      this.armTimer(deadline);
    });
  }

  /** Makes sure the timer fires by `deadline`. */
  private armTimer(deadline: number): void {
    if (this.timer !== undefined && this.timerAt <= deadline) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerAt = deadline;
    const t = setTimeout(() => this.sweep(), Math.max(0, deadline - Date.now()));
    (t as { unref?: () => void }).unref?.();
    this.timer = t;
  }

  /** The timer fired: expires the requests that are due, re-arms for the earliest left. */
  private sweep(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const p of [...this.pending.values()]) {
      if (p.deadline <= now) p.expire();
      else if (p.deadline < next) next = p.deadline;
    }
    if (next < Infinity && !this.channel.closed) this.armTimer(next);
  }

  /** DEVICE_GET_INFO (retried with the longer Linux ≥ 5.10 struct on EINVAL). */
  async deviceInfo(): Promise<DeviceInfo> {
    const ask = (size: number) =>
      this.request(
        CMD.DEVICE_GET_INFO,
        encodeDeviceInfo({ argsz: size, flags: 0, numRegions: 0, numIrqs: 0 }, size),
        "device info",
      );
    let reply: Uint8Array;
    try {
      reply = await ask(DEVICE_INFO_SIZE);
    } catch (e) {
      if (!(e instanceof MigstreamError && e.code === "DEVICE" && e.errno === "EINVAL")) throw e;
      reply = await ask(DEVICE_INFO_SIZE_LONG);
    }
    return decodeDeviceInfo(reply);
  }

  /**
   * DEVICE_GET_REGION_INFO with argsz growth: asked with the bare structure,
   * then again whenever the reply's argsz is larger than the one sent,
   * whatever its flags say (see transport/region-info.ts).
   */
  regionInfo(index: number): Promise<RegionInfo> {
    const step = `region info ${index}`;
    return queryRegionInfo(
      (i, argsz) => this.request(CMD.DEVICE_GET_REGION_INFO, encodeRegionInfoRequest(i, argsz), step),
      index,
      step,
    );
  }

  /** One REGION_READ of `count` ≤ maxDataXfer bytes; lands in `into` when given. */
  async regionRead(
    region: number,
    offset: number,
    count: number,
    into?: Uint8Array,
    step = "region read",
  ): Promise<Uint8Array> {
    this.checkCount(count, step);
    if (into && into.length < count)
      throw new MigstreamError("USAGE", `read of ${count} bytes into a ${into.length}-byte buffer`, { step });
    if (count === 0) return new Uint8Array(0);
    const out = into?.subarray(0, count);
    return this.request(
      CMD.REGION_READ,
      REGION_ACCESS_SIZE,
      step,
      (m) => writeAccess(m, HEADER_SIZE, { offset, region, count }),
      (reply, landed) => {
        // `landed`: the data went straight into `out` (reply is the 16-byte echo).
        const echo = readAccess(reply);
        const got = reply.length - REGION_ACCESS_SIZE + (landed?.length ?? 0);
        if (echo.offset !== offset || echo.region !== region || echo.count !== count || got !== count) {
          throw new MigstreamError(
            "PROTOCOL",
            `vfio-user: REGION_READ reply (region ${echo.region} offset ${echo.offset} count ${echo.count}, ${got} data bytes) does not match the request (region ${region} offset ${offset} count ${count})`,
            { step, offset },
          );
        }
        if (landed !== undefined) return out!;
        const dst = out ?? new Uint8Array(count);
        dst.set(reply.subarray(REGION_ACCESS_SIZE));
        return dst;
      },
      out,
    );
  }

  /** One REGION_WRITE of `data` (≤ maxDataXfer bytes), in one message. */
  async regionWrite(region: number, offset: number, data: Uint8Array, step = "region write"): Promise<void> {
    this.checkCount(data.length, step);
    if (data.length === 0) return;
    const count = await this.request(
      CMD.REGION_WRITE,
      REGION_ACCESS_SIZE + data.length,
      step,
      (m) => {
        writeAccess(m, HEADER_SIZE, { offset, region, count: data.length });
        m.set(data, HEADER_SIZE + REGION_ACCESS_SIZE);
      },
      // The specification echoes {offset, region, count}; accept a bare reply too.
      (reply) => (reply.length >= REGION_ACCESS_SIZE ? readAccess(reply).count : data.length),
    );
    if (count !== data.length)
      throw new MigstreamError("PROTOCOL", `vfio-user: REGION_WRITE reply count ${count}, wrote ${data.length}`, {
        step,
        offset,
      });
  }

  /** DEVICE_RESET: the server returns the device (and its migration state) to RUNNING. */
  async reset(): Promise<void> {
    await this.request(CMD.DEVICE_RESET, new Uint8Array(0), "device reset");
  }

  /** Closes the connection. Idempotent. Pending requests end with TRANSPORT. */
  close(): void {
    if (!this.channel.closed) this.channel.close();
  }

  private checkCount(count: number, step: string): void {
    if (!Number.isInteger(count) || count < 0 || count > this.maxDataXfer) {
      throw new MigstreamError(
        "USAGE",
        `vfio-user: access of ${count} bytes exceeds max_data_xfer_size ${this.maxDataXfer}`,
        { step },
      );
    }
  }

  private allocId(): number {
    for (let n = 0; n < 0x10000; n++) {
      const id = this.nextId;
      this.nextId = (this.nextId + 1) & 0xffff;
      if (!this.pending.has(id) && !this.abandoned.has(id)) return id;
    }
    throw new MigstreamError("LIMIT", "vfio-user: no free msg_id (65536 requests outstanding)");
  }

  private abandon(id: number): void {
    this.abandoned.add(id);
    if (this.abandoned.size > MAX_ABANDONED) {
      this.channel.fail(
        new MigstreamError(
          "TIMEOUT",
          `vfio-user: ${this.abandoned.size} requests timed out; giving up on the connection`,
        ),
      );
    }
  }

  private onMessage(h: Header, payload: Uint8Array, tail?: Uint8Array): void {
    if (!isReply(h.flags)) {
      // A server-to-client command (DMA_READ/WRITE needs DMA_MAP, which we never send).
      if (!(h.flags & FLAG_NO_REPLY))
        this.channel.send(newMessage(h.id, h.cmd, TYPE_REPLY | FLAG_ERROR, 0, ERRNO.ENOTSUP));
      return;
    }
    const p = this.pending.get(h.id);
    if (!p) {
      if (this.abandoned.delete(h.id)) return; // the late reply of a request that timed out
      // Our choice: an unknown msg_id means the two ends disagree; fail the connection.
      this.channel.fail(
        new MigstreamError("PROTOCOL", `vfio-user: reply with msg_id ${h.id} (${cmdName(h.cmd)}) matches no request`, {
          field: "msg_id",
        }),
      );
      return;
    }
    this.pending.delete(h.id);
    if (h.cmd !== p.cmd) {
      const err = new MigstreamError("PROTOCOL", `vfio-user: reply to ${cmdName(p.cmd)} carries ${cmdName(h.cmd)}`, {
        step: p.step,
        field: "cmd",
      });
      p.reject(err);
      this.channel.fail(err);
      return;
    }
    if (h.flags & FLAG_ERROR) {
      // error_no 0 is treated as EINVAL, as the reference client library does.
      const errno = errnoName(h.errno || ERRNO.EINVAL);
      const zero = h.errno === 0 ? " (error_no 0, taken as EINVAL)" : "";
      p.reject(
        new MigstreamError("DEVICE", `vfio-user: ${cmdName(h.cmd)} failed with ${errno}${zero}`, {
          step: p.step,
          errno,
        }),
      );
      return;
    }
    p.accept(payload, tail);
  }

  private onEnd(err: MigstreamError): void {
    this.endError = err;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(
        new MigstreamError(err.code, `${err.message} while waiting for the ${cmdName(p.cmd)} reply`, {
          step: p.step,
          errno: err.errno,
          field: err.field,
          cause: err,
        }),
      );
    }
  }
}
