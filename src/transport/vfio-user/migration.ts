// vfio-user v2 migration, client side (notes §3): a MigrationDevice over
// DEVICE_FEATURE (16), MIG_DATA_READ (17) and MIG_DATA_WRITE (18) on one
// VfioUserSession, and telling a v1 server from a v2 one (§3.1's check).
//
// What real servers need (§3.6): error replies may carry a body (the session
// reads every reply by msg_size and takes errno from the header); a read
// reply is zero-padded to the size asked, so its length comes from `size`,
// not msg_size; a server refuses most commands in STOP and STOP_COPY, so a
// reset there first SETs RUNNING; the state survives reconnects (and, from
// libvfio-user 4f4fce4 on, resets), so it is read, never assumed. There is
// no data fd: the session is implicit, and this transport hands out a
// channel where the kernel would hand out a data_fd (on the SET whose path
// opens a session), so the driver sees kernel semantics. There is no
// PRECOPY_INFO and no MIG_DATA_SIZE message.
import { MigstreamError } from "../../errors.js";
import {
  asMigState,
  FEATURE,
  FEATURE_GET,
  FEATURE_HEADER_SIZE,
  FEATURE_SET,
  MIG_STATE,
  type MigState,
  migStateName,
} from "../../protocol/v2/constants.js";
import type { DataChannel, MigrationDevice } from "../../protocol/v2/device-io.js";
import { hasSession, pathTo, sessionEffect } from "../../protocol/v2/fsm.js";
import { SessionChannel } from "../session-channel.js";
import { regionOn, type VfioUserRegion } from "./client.js";
import {
  CMD,
  DEFAULT_MAX_DATA_XFER,
  DIGEST_REGION_SIZE,
  MAX_DATA_XFER_LIMIT,
  MAX_MIG_DATA,
  MIG_DATA_HEADER_SIZE,
  V2_DIGEST_REGION_INDEX,
} from "./constants.js";
import { type SessionOptions, VfioUserSession } from "./session.js";

/** How the user declares a v2 device's behaviours (the protocol cannot tell them). */
export interface V2Declarations {
  /** Every MIG_DATA_READ/WRITE must be exactly this many bytes (e.g. libvfio-user's gpio sample: 64). */
  fixedAccess?: number;
  /** The device restarts its stream at STOP_COPY (libvfio-user's sample server). */
  restartsAtStopCopy?: boolean;
  /** The device answers MIG_DATA_WRITE with EINVAL though it applied the bytes (the gpio sample). */
  writeErrorsApplied?: boolean;
}

/** Options of openVfioUser: the session's, and what the user declares about a v2 device. */
export interface OpenOptions extends SessionOptions, V2Declarations {}

/** What DEVICE_FEATURE GET MIGRATION says about a server: v2 flags, or why it is not v2. */
async function probeV2(s: VfioUserSession): Promise<{ flags: number } | { refused: MigstreamError }> {
  try {
    return { flags: await getMigration(s, "detect: DEVICE_FEATURE GET MIGRATION") };
  } catch (e) {
    if (e instanceof MigstreamError && e.code === "DEVICE") return { refused: e };
    throw e;
  }
}

function featureRequest(flags: number, argsz: number, extra = 0): (m: Uint8Array) => void {
  return (m) => {
    const dv = new DataView(m.buffer, m.byteOffset + 16, FEATURE_HEADER_SIZE + extra);
    dv.setUint32(0, argsz, true);
    dv.setUint32(4, flags, true);
  };
}

function tooShort(step: string, what: string, n: number, need: number): MigstreamError {
  return new MigstreamError("PROTOCOL", `vfio-user: ${what} reply of ${n} bytes, expected at least ${need}`, {
    step,
    field: "argsz",
  });
}

/** DEVICE_FEATURE GET MIGRATION → the VFIO_MIGRATION_* flags (low 32 bits; the rest must be 0). */
async function getMigration(s: VfioUserSession, step: string): Promise<number> {
  return s.request(
    CMD.DEVICE_FEATURE,
    FEATURE_HEADER_SIZE,
    step,
    featureRequest(FEATURE_GET | FEATURE.MIGRATION, 16),
    (p) => {
      if (p.length < 16) throw tooShort(step, "GET MIGRATION", p.length, 16);
      const dv = new DataView(p.buffer, p.byteOffset, p.length);
      if (dv.getUint32(12, true) !== 0)
        throw new MigstreamError(
          "PROTOCOL",
          `vfio-user: MIGRATION flags 0x${dv.getBigUint64(8, true).toString(16)} set unknown high bits`,
          { step, field: "flags" },
        );
      return dv.getUint32(8, true);
    },
  );
}

/** A v2 MigrationDevice over a vfio-user socket (DEVICE_FEATURE and MIG_DATA_READ/WRITE); openVfioUser returns one for a v2 server. */
export class VfioUserMigration implements MigrationDevice {
  readonly generation = 2 as const;
  readonly maxAccess: number;
  readonly fixedAccess: boolean;
  readonly restartsAtStopCopy: boolean;
  readonly writeErrorsApplied: boolean;
  /** The state last read or set (undefined: unknown, read it before relying on it). */
  #state: MigState | undefined;
  #current: SessionChannel | null = null;

  constructor(
    readonly session: VfioUserSession,
    readonly path: string,
    /** VFIO_MIGRATION_* flags from the detecting GET MIGRATION. */
    readonly flags: number,
    d: V2Declarations = {},
    /** The max_data_xfer_size we offered in VERSION (the server checks sizes against it). */
    offered = DEFAULT_MAX_DATA_XFER,
  ) {
    // Case 29: at most min(the max_data_xfer_size we offered, the server's, 1 MiB).
    const max = Math.min(offered, session.maxDataXfer, MAX_MIG_DATA);
    if (d.fixedAccess !== undefined) {
      if (!Number.isInteger(d.fixedAccess) || d.fixedAccess < 1 || d.fixedAccess > max) {
        throw new MigstreamError("USAGE", `vfio-user: fixed access size ${d.fixedAccess} must be 1..${max}`);
      }
    }
    this.maxAccess = d.fixedAccess ?? max;
    this.fixedAccess = d.fixedAccess !== undefined;
    this.restartsAtStopCopy = d.restartsAtStopCopy === true;
    this.writeErrorsApplied = d.writeErrorsApplied === true;
  }

  get label(): string {
    return `vfio-user:${this.path} (v2)`;
  }

  async migrationFlags(): Promise<number> {
    return getMigration(this.session, "DEVICE_FEATURE GET MIGRATION");
  }

  async getState(): Promise<MigState> {
    const step = "DEVICE_FEATURE GET MIG_DEVICE_STATE";
    const s = await this.session.request(
      CMD.DEVICE_FEATURE,
      FEATURE_HEADER_SIZE,
      step,
      featureRequest(FEATURE_GET | FEATURE.MIG_DEVICE_STATE, 16),
      (p) => {
        if (p.length < 16) throw tooShort(step, "GET MIG_DEVICE_STATE", p.length, 16);
        // Case 8: data_fd (0 over vfio-user) is never used.
        const v = new DataView(p.buffer, p.byteOffset, p.length).getUint32(8, true);
        const st = asMigState(v);
        if (st === undefined)
          throw new MigstreamError("PROTOCOL", `vfio-user: device_state ${v} is no v2 state`, {
            step,
            field: "device_state",
          });
        return st;
      },
    );
    this.#state = s;
    return s;
  }

  async setState(to: MigState): Promise<DataChannel | null> {
    const step = `DEVICE_FEATURE SET MIG_DEVICE_STATE ${migStateName(to)}`;
    const from = this.#state ?? (await this.getState());
    try {
      await this.session.request(
        CMD.DEVICE_FEATURE,
        16,
        step,
        (m) => {
          featureRequest(FEATURE_SET | FEATURE.MIG_DEVICE_STATE, 16, 8)(m);
          const dv = new DataView(m.buffer, m.byteOffset + 16, 16);
          dv.setUint32(8, to, true);
          dv.setInt32(12, -1, true);
        },
        () => undefined, // the echo of our request
      );
    } catch (e) {
      // The device may sit anywhere on the path: read it, and end our session if it left one.
      this.#state = undefined;
      const now = await this.getState().catch(() => undefined);
      if (now === undefined || !hasSession(now)) this.#endSession();
      throw e;
    }
    this.#state = to;
    // The session effect of the path the server walked (the kernel's table, which libvfio-user follows).
    let opened = false;
    let at = from;
    for (const hop of pathTo(from, to, this.flags) ?? []) {
      const fx = sessionEffect(at, hop);
      if (fx === "ends") this.#endSession();
      if (fx === "opens") opened = true;
      if (fx === "ends") opened = false;
      at = hop;
    }
    if (!opened) return null;
    this.#endSession();
    this.#current = new SessionChannel(`${this.label} data session`, {
      read: (into) => this.readData(into),
      write: (d) => this.writeData(d),
    });
    return this.#current;
  }

  #endSession(): void {
    if (this.#current) this.#current.alive = false;
    this.#current = null;
  }

  /** One MIG_DATA_READ of into.length bytes (case 26: the count comes from `size`; the reply may be padded). */
  async readData(into: Uint8Array): Promise<number> {
    const step = "MIG_DATA_READ";
    const size = into.length;
    return this.session.request(
      CMD.MIG_DATA_READ,
      MIG_DATA_HEADER_SIZE,
      step,
      (m) => {
        const dv = new DataView(m.buffer, m.byteOffset + 16, MIG_DATA_HEADER_SIZE);
        dv.setUint32(0, MIG_DATA_HEADER_SIZE + size, true);
        dv.setUint32(4, size, true);
      },
      (p, landed) => {
        // `landed`: a reply padded to the size asked went straight into `into` (p is its 8-byte head).
        if (p.length < MIG_DATA_HEADER_SIZE) throw tooShort(step, "MIG_DATA_READ", p.length, MIG_DATA_HEADER_SIZE);
        const n = new DataView(p.buffer, p.byteOffset, p.length).getUint32(4, true);
        const carried = p.length - MIG_DATA_HEADER_SIZE + (landed?.length ?? 0);
        if (n > size || n > carried) {
          throw new MigstreamError(
            "PROTOCOL",
            `vfio-user: MIG_DATA_READ reply says ${n} bytes (asked ${size}, ${carried} carried)`,
            { step, field: "size" },
          );
        }
        if (landed === undefined) into.set(p.subarray(MIG_DATA_HEADER_SIZE, MIG_DATA_HEADER_SIZE + n));
        return n;
      },
      into,
    );
  }

  /** One MIG_DATA_WRITE of all of `data` (a server takes every byte or answers EINVAL). */
  async writeData(data: Uint8Array): Promise<number> {
    const step = "MIG_DATA_WRITE";
    await this.session.request(
      CMD.MIG_DATA_WRITE,
      MIG_DATA_HEADER_SIZE + data.length,
      step,
      (m) => {
        const dv = new DataView(m.buffer, m.byteOffset + 16, MIG_DATA_HEADER_SIZE);
        dv.setUint32(0, MIG_DATA_HEADER_SIZE + data.length, true);
        dv.setUint32(4, data.length, true);
        m.set(data, 16 + MIG_DATA_HEADER_SIZE);
      },
      () => undefined,
    );
    return data.length;
  }

  /**
   * DEVICE_RESET. A server refuses it in STOP and STOP_COPY, so the device
   * is SET RUNNING first there (case 28). The state afterwards is read back.
   */
  async reset(): Promise<void> {
    const s = await this.getState();
    if (s === MIG_STATE.STOP || s === MIG_STATE.STOP_COPY) await this.setState(MIG_STATE.RUNNING);
    this.#endSession();
    await this.session.reset();
    this.#state = undefined;
    await this.getState();
  }

  /** Our servers' state digest (the vendor region at V2_DIGEST_REGION_INDEX; a REGION_READ, allowed in every state). */
  async stateDigest(): Promise<bigint> {
    const b = await this.session.regionRead(V2_DIGEST_REGION_INDEX, 0, DIGEST_REGION_SIZE, undefined, "digest read");
    return new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(0, true);
  }

  async close(): Promise<void> {
    this.#endSession();
    this.session.close();
  }
}

/**
 * Connects to a vfio-user server and returns the device in the generation
 * it speaks (§3.1, case 31): DEVICE_FEATURE GET MIGRATION succeeding means v2
 * (regions are then not looked at); otherwise the v1 migration region (type
 * capability 3/1); otherwise the server has no migration.
 */
export async function openVfioUser(path: string, opts: OpenOptions = {}): Promise<VfioUserRegion | VfioUserMigration> {
  const s = await VfioUserSession.connect(path, opts);
  try {
    const v2 = await probeV2(s);
    if ("flags" in v2)
      return new VfioUserMigration(
        s,
        path,
        v2.flags,
        opts,
        Math.min(opts.maxDataXfer ?? DEFAULT_MAX_DATA_XFER, MAX_DATA_XFER_LIMIT),
      );
    if (opts.fixedAccess !== undefined || opts.restartsAtStopCopy || opts.writeErrorsApplied) {
      throw new MigstreamError(
        "USAGE",
        `vfio-user: ${path} is no v2 device (DEVICE_FEATURE: ${v2.refused.errno}); access=, stopcopy= and write-errors= apply to v2 devices only`,
      );
    }
    try {
      return await regionOn(s, path);
    } catch (e) {
      if (e instanceof MigstreamError && e.step === "discovery") {
        throw new MigstreamError(
          "PROTOCOL",
          `${e.message}; nor v2 migration (DEVICE_FEATURE GET MIGRATION: ${v2.refused.errno}): the server has no migration`,
          { step: "discovery", cause: e },
        );
      }
      throw e;
    }
  } catch (e) {
    s.close();
    throw e;
  }
}
