// The strict reference-like vfio-user server for client-rule tests: a
// simulated device with the "libvfio-user" variant, served by VfioUserServer
// with variant "libvfio-user" (one client, then it closes), and every message
// it handled recorded with the device_state at that moment. A migration over
// a pair of them is what the client-rule tests inspect.
import { SimDevice, type SimDeviceOptions } from "../../src/device/index.js";
import {
  type ResumeItem,
  type ResumeSummary,
  resume,
  type SaveOptions,
  type SaveSummary,
  save,
} from "../../src/protocol/index.js";
import { variantOptions } from "../../src/transport/sim/options.js";
import { connectVfioUser, type VfioUserRegion } from "../../src/transport/vfio-user/client.js";
import { CMD } from "../../src/transport/vfio-user/constants.js";
import { VfioUserServer } from "../../src/transport/vfio-user/server.js";
import { type Access, type Header, readAccess } from "../../src/transport/vfio-user/wire.js";
import { tempSocket } from "./helpers.js";

/** One message the strict server handled. */
export interface Traced {
  h: Header;
  payload: Uint8Array;
  /** device_state when it was handled. */
  state: number;
  /** REGION_READ/REGION_WRITE: the access. */
  access?: Access;
}

export interface Strict {
  path: string;
  device: SimDevice;
  server: VfioUserServer;
  trace: Traced[];
  cleanup(): Promise<void>;
}

/** A strict server on a fresh socket; `device` adds to the libvfio-user variant's options. */
export async function strictServer(device: SimDeviceOptions = {}, maxDataXfer?: number): Promise<Strict> {
  const sock = tempSocket();
  const dev = new SimDevice({ ...variantOptions("libvfio-user"), stateSize: 256 << 10, txnSize: 16 << 10, ...device });
  const trace: Traced[] = [];
  const server = await VfioUserServer.listen(sock.path, dev, {
    variant: "libvfio-user",
    maxDataXfer,
    onMessage: (h, p) => {
      const t: Traced = { h, payload: p.slice(), state: dev.state };
      if ((h.cmd === CMD.REGION_READ || h.cmd === CMD.REGION_WRITE) && p.length >= 16) t.access = readAccess(p);
      trace.push(t);
    },
  });
  return {
    path: sock.path,
    device: dev,
    server,
    trace,
    cleanup: async () => {
      await server.close();
      sock.cleanup();
    },
  };
}

export interface Migration {
  src: Strict;
  dst: Strict;
  saved: SaveSummary;
  restored: ResumeSummary;
  items: ResumeItem[];
}

/** Saves a dirtying source over vfio-user with pre-copy, then resumes an empty destination, each on its one connection. */
export async function migrateStrict(
  opts: { device?: SimDeviceOptions; maxDataXfer?: number; save?: SaveOptions } = {},
): Promise<Migration> {
  const src = await strictServer({ seed: 11, dirtyPerTxn: 3, ...opts.device }, opts.maxDataXfer);
  const dst = await strictServer({ empty: true, ...opts.device }, opts.maxDataXfer);
  const items: ResumeItem[] = [];
  const saved = await withRegion(src.path, (r) =>
    save(
      r,
      {
        phase: (phase, iteration) => void items.push({ kind: "phase", phase, iteration }),
        transaction: (data) => void items.push({ kind: "transaction", data: data.slice() }),
      },
      { policy: { maxIterations: 3 }, ...opts.save },
    ),
  );
  items.push({ kind: "verified" });
  const restored = await withRegion(dst.path, (r) => resume(r, items));
  await Promise.all([src.server.closed, dst.server.closed]);
  return { src, dst, saved, restored, items };
}

/** Connects, runs `f`, closes. */
export async function withRegion<T>(path: string, f: (r: VfioUserRegion) => Promise<T>): Promise<T> {
  const r = await connectVfioUser(path, { timeoutMs: 10_000 });
  try {
    return await f(r);
  } finally {
    await r.close();
  }
}
