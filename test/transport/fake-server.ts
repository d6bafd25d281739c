// A scriptable, misbehaving vfio-user server for client robustness tests: raw
// net.createServer, requests framed with our Framer, replies written by the
// test's handler exactly as it wants (split, wrong ids, truncated...).
import * as net from "node:net";
import {
  CMD,
  FLAG_ERROR,
  HEADER_SIZE,
  REGION_FLAG_READ,
  REGION_FLAG_WRITE,
  TYPE_REPLY,
} from "../../src/transport/vfio-user/constants.js";
import { Framer } from "../../src/transport/vfio-user/framer.js";
import {
  encodeRegionInfoReply,
  encodeTypeCap,
  encodeVersion,
  type Header,
  newMessage,
  readAccess,
} from "../../src/transport/vfio-user/wire.js";

export type Handler = (h: Header, payload: Uint8Array, sock: net.Socket) => void;

export interface Fake {
  /** Every request the client sent. */
  requests: Header[];
  close(): Promise<void>;
}

export async function fakeServer(path: string, handler: Handler): Promise<Fake> {
  const requests: Header[] = [];
  const socks = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    socks.add(sock);
    sock.on("error", () => {});
    sock.on("close", () => socks.delete(sock));
    const framer = new Framer((h, p) => {
      requests.push(h);
      handler(h, p, sock);
    }, 1 << 24);
    sock.on("data", (c) => framer.push(new Uint8Array(c.buffer, c.byteOffset, c.byteLength)));
  });
  await new Promise<void>((r) => server.listen(path, r));
  return {
    requests,
    close: () =>
      new Promise<void>((r) => {
        for (const s of socks) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A reply message with `payload`. */
export function reply(h: Header, payload: Uint8Array = new Uint8Array(0), id = h.id): Uint8Array {
  const m = newMessage(id, h.cmd, TYPE_REPLY, payload.length);
  m.set(payload, HEADER_SIZE);
  return m;
}

export function errorReply(h: Header, errno: number): Uint8Array {
  return newMessage(h.id, h.cmd, TYPE_REPLY | FLAG_ERROR, 0, errno);
}

export interface FakeDevice {
  numRegions: number;
  /** index → region info reply payload for a request argsz. */
  regionInfo(index: number, argsz: number): Uint8Array;
  /** REGION_READ data. */
  read?(region: number, offset: number, count: number): Uint8Array;
}

/** A well-behaved device: the migration region (type cap) at `index`, others empty. */
export function simpleDevice(index = 9, size = 8192): FakeDevice {
  return {
    numRegions: Math.max(10, index + 1),
    regionInfo: (i, argsz) =>
      i === index
        ? encodeRegionInfoReply(
            { flags: REGION_FLAG_READ | REGION_FLAG_WRITE, index: i, size },
            [encodeTypeCap(3, 1)],
            argsz,
          )
        : encodeRegionInfoReply({ flags: 0, index: i, size: 0 }, [], argsz),
    read: (_r, _o, n) => new Uint8Array(n).fill(0xab),
  };
}

/** Answers the standard commands for `dev`; returns false for anything it did not answer. */
export function answer(
  dev: FakeDevice,
  h: Header,
  p: Uint8Array,
  sock: net.Socket,
  caps: object = { capabilities: { max_data_xfer_size: 1 << 20 } },
): boolean {
  switch (h.cmd) {
    case CMD.VERSION:
      sock.write(reply(h, encodeVersion(0, 2, caps)));
      return true;
    case CMD.DEVICE_GET_INFO: {
      const b = new Uint8Array(16);
      const dv = new DataView(b.buffer);
      dv.setUint32(0, 16, true);
      dv.setUint32(4, 3, true);
      dv.setUint32(8, dev.numRegions, true);
      dv.setUint32(12, 5, true);
      sock.write(reply(h, b));
      return true;
    }
    case CMD.DEVICE_GET_REGION_INFO: {
      const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
      sock.write(reply(h, dev.regionInfo(dv.getUint32(8, true), dv.getUint32(0, true))));
      return true;
    }
    case CMD.REGION_READ: {
      const a = readAccess(p);
      const data = dev.read!(a.region, a.offset, a.count);
      const out = new Uint8Array(16 + data.length);
      out.set(p.subarray(0, 16));
      out.set(data, 16);
      sock.write(reply(h, out));
      return true;
    }
    default:
      return false;
  }
}
