// A raw vfio-user client for server tests: writes whatever message a test
// builds (well-formed or not) and reads replies framed by msg_size.
import * as net from "node:net";
import { HEADER_SIZE } from "../../src/transport/vfio-user/constants.js";
import { Framer } from "../../src/transport/vfio-user/framer.js";
import { type Header, newMessage } from "../../src/transport/vfio-user/wire.js";

export interface Raw {
  send(id: number, cmd: number, payload: Uint8Array, flags?: number): void;
  raw(bytes: Uint8Array): void;
  /** The next reply, or "closed" / "timeout". */
  next(ms?: number): Promise<[Header, Uint8Array] | "closed" | "timeout">;
  close(): void;
}

export async function rawClient(path: string): Promise<Raw> {
  const sock = net.createConnection({ path });
  await new Promise((r) => sock.once("connect", r));
  const inbox: Array<[Header, Uint8Array]> = [];
  let closed = false;
  let wake: (() => void) | undefined;
  const framer = new Framer((h, p) => {
    inbox.push([h, p.slice()]);
    wake?.();
  }, 1 << 24);
  sock.on("data", (c) => framer.push(new Uint8Array(c.buffer, c.byteOffset, c.byteLength)));
  sock.on("close", () => {
    closed = true;
    wake?.();
  });
  sock.on("error", () => {});
  return {
    send(id, cmd, payload, flags = 0) {
      const m = newMessage(id, cmd, flags, payload.length);
      m.set(payload, HEADER_SIZE);
      sock.write(m);
    },
    raw: (b) => void sock.write(b),
    async next(ms = 2000) {
      const until = Date.now() + ms;
      while (!inbox.length && !closed && Date.now() < until) {
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 20);
        });
      }
      if (inbox.length) return inbox.shift()!;
      return closed ? "closed" : "timeout";
    },
    close: () => void sock.destroy(),
  };
}

/** The next reply (fails the test on a close or a timeout). */
export async function reply(c: Raw): Promise<[Header, Uint8Array]> {
  const r = await c.next();
  if (typeof r === "string") throw new Error(`expected a reply, got ${r}`);
  return r;
}
