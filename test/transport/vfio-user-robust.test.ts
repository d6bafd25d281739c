// The client against misbehaving servers: every case ends in a clear typed
// error (or works), never a hang.
import type * as net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { isMigstreamError, type MigstreamError } from "../../src/errors.js";
import { connectVfioUser } from "../../src/transport/vfio-user/client.js";
import {
  CMD,
  FLAG_ERROR,
  REGION_FLAG_READ,
  REGION_FLAG_WRITE,
  TYPE_COMMAND,
  TYPE_REPLY,
} from "../../src/transport/vfio-user/constants.js";
import {
  encodeRegionInfoReply,
  encodeSparseCap,
  encodeTypeCap,
  encodeVersion,
  type Header,
  newMessage,
} from "../../src/transport/vfio-user/wire.js";
import { answer, errorReply, type Fake, fakeServer, reply, simpleDevice } from "./fake-server.js";
import { tempSocket } from "./helpers.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function serve(
  handler: (h: Header, p: Uint8Array, s: net.Socket) => void,
): Promise<{ path: string; fake: Fake }> {
  const sock = tempSocket();
  const fake = await fakeServer(sock.path, handler);
  cleanups.push(sock.cleanup, () => fake.close());
  return { path: sock.path, fake };
}

async function failure(p: Promise<unknown>): Promise<MigstreamError> {
  try {
    const r = await p;
    if (r && typeof (r as { close?: unknown }).close === "function") await (r as { close(): Promise<void> }).close();
  } catch (e) {
    if (isMigstreamError(e)) return e;
    throw e;
  }
  throw new Error("expected a MigstreamError");
}

/** Writes `bytes` one byte per event-loop turn. */
async function dribble(sock: net.Socket, bytes: Uint8Array): Promise<void> {
  for (const b of bytes) {
    sock.write(new Uint8Array([b]));
    await new Promise((r) => setImmediate(r));
  }
}

describe("vfio-user client robustness", () => {
  it("reassembles replies that arrive one byte at a time", async () => {
    const dev = simpleDevice(9, 8192);
    const queue: Promise<void>[] = [];
    const { path } = await serve((h, p, s) => {
      // Capture what answer() would write, then dribble it.
      const chunks: Uint8Array[] = [];
      const fake = { write: (b: Uint8Array) => chunks.push(b) } as unknown as net.Socket;
      answer(dev, h, p, fake);
      queue.push(Promise.all(queue).then(() => dribble(s, chunks[0])));
    });
    const c = await connectVfioUser(path, { timeoutMs: 10_000 });
    cleanups.push(() => c.close());
    expect(c.index).toBe(9);
    const got = await c.read(4096, 300);
    expect(got.length).toBe(300);
    expect(got.every((b) => b === 0xab)).toBe(true);
  });

  it("fails the connection on a reply whose msg_id matches no request", async () => {
    const { path } = await serve((h, _p, s) => {
      s.write(reply(h, encodeVersion(0, 2, {}), (h.id + 1) & 0xffff));
    });
    const e = await failure(connectVfioUser(path, { timeoutMs: 2000 }));
    expect(e.code).toBe("PROTOCOL");
    expect(e.message).toMatch(/msg_id \d+ .*matches no request/);
  });

  it("fails a wrong msg_id mid-session, and later requests fail fast", async () => {
    const dev = simpleDevice();
    const { path } = await serve((h, p, s) => {
      if (h.cmd === CMD.REGION_READ) s.write(reply(h, new Uint8Array(16 + 4), h.id ^ 0x100));
      else answer(dev, h, p, s);
    });
    const c = await connectVfioUser(path, { timeoutMs: 2000 });
    cleanups.push(() => c.close());
    const e = await failure(c.read(0, 4));
    expect(e.code).toBe("PROTOCOL");
    const t0 = Date.now();
    const e2 = await failure(c.read(0, 4));
    expect(e2.code).toBe("PROTOCOL");
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it("reports a truncated reply followed by a close as TRANSPORT", async () => {
    const dev = simpleDevice();
    const { path } = await serve((h, p, s) => {
      if (h.cmd !== CMD.REGION_READ) return void answer(dev, h, p, s);
      const full = reply(h, new Uint8Array(16 + 100));
      s.end(full.subarray(0, 40));
    });
    const c = await connectVfioUser(path, { timeoutMs: 5000 });
    cleanups.push(() => c.close());
    const e = await failure(c.read(0, 100));
    expect(e.code).toBe("TRANSPORT");
    expect(e.message).toMatch(
      /closed by the peer \(40 bytes of a message unreceived\) while waiting for the REGION_READ reply/,
    );
  });

  it("refuses an oversized msg_size at the header, allocating nothing for it", async () => {
    const { path } = await serve((h, _p, s) => {
      const m = newMessage(h.id, h.cmd, TYPE_REPLY, 0);
      new DataView(m.buffer).setUint32(4, 0xffff_fff0, true);
      s.write(m); // a 16-byte header announcing ~4 GiB, and nothing after it
    });
    const before = process.memoryUsage().arrayBuffers;
    const t0 = Date.now();
    const e = await failure(connectVfioUser(path, { timeoutMs: 5000 }));
    expect(e.code).toBe("PROTOCOL");
    expect(e.field).toBe("msg_size");
    expect(e.message).toMatch(/msg_size 4294967280 exceeds the limit/);
    expect(Date.now() - t0).toBeLessThan(2000); // refused at once, not after a timeout
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 << 20);
  });

  it("refuses a msg_size smaller than the header", async () => {
    const { path } = await serve((h, _p, s) => {
      const m = newMessage(h.id, h.cmd, TYPE_REPLY, 0);
      new DataView(m.buffer).setUint32(4, 8, true);
      s.write(m);
    });
    const e = await failure(connectVfioUser(path, { timeoutMs: 5000 }));
    expect(e.code).toBe("PROTOCOL");
    expect(e.message).toMatch(/msg_size 8 is smaller than the header/);
  });

  it("takes an error reply with error_no 0 as EINVAL, saying so", async () => {
    const dev = simpleDevice();
    const { path } = await serve((h, p, s) => {
      if (h.cmd === CMD.REGION_READ) s.write(errorReply(h, 0));
      else answer(dev, h, p, s);
    });
    const c = await connectVfioUser(path, { timeoutMs: 2000 });
    cleanups.push(() => c.close());
    const e = await failure(c.read(16, 8));
    expect(e.code).toBe("DEVICE");
    expect(e.errno).toBe("EINVAL");
    expect(e.message).toMatch(/error_no 0, taken as EINVAL/);
    expect(e.step).toMatch(/region read 8@0x10/);
  });

  it("rejects a capability chain that loops", async () => {
    const dev = simpleDevice();
    dev.regionInfo = (i, argsz) => {
      if (i !== 9) return encodeRegionInfoReply({ flags: 0, index: i, size: 0 }, [], argsz);
      const b = encodeRegionInfoReply({ flags: 3, index: 9, size: 8192 }, [encodeTypeCap(3, 1)], argsz);
      if (b.length > 32) new DataView(b.buffer).setUint32(32 + 4, 32, true); // next → itself
      return b;
    };
    const { path } = await serve((h, p, s) => answer(dev, h, p, s));
    const e = await failure(connectVfioUser(path, { timeoutMs: 2000 }));
    expect(e.code).toBe("PROTOCOL");
    expect(e.message).toMatch(/capability chain loops/);
  });

  it("rejects a capability pointing outside the reply", async () => {
    const dev = simpleDevice();
    dev.regionInfo = (i, argsz) => {
      const b = encodeRegionInfoReply({ flags: 3, index: i, size: 8192 }, [encodeTypeCap(3, 1)], argsz);
      if (b.length > 32) new DataView(b.buffer).setUint32(32 + 4, 4000, true);
      return b;
    };
    const { path } = await serve((h, p, s) => answer(dev, h, p, s));
    const e = await failure(connectVfioUser(path, { timeoutMs: 2000 }));
    expect(e.code).toBe("PROTOCOL");
    expect(e.message).toMatch(/capability at 4000 lies outside the reply/);
  });

  it("times out when no reply comes, and drops the late reply afterwards", async () => {
    const dev = simpleDevice();
    let reads = 0;
    const { path } = await serve((h, p, s) => {
      if (h.cmd === CMD.REGION_READ && reads++ === 0) {
        setTimeout(() => answer(dev, h, p, s), 400); // late
        return;
      }
      answer(dev, h, p, s);
    });
    const c = await connectVfioUser(path, { timeoutMs: 200 });
    cleanups.push(() => c.close());
    const e = await failure(c.read(0, 8));
    expect(e.code).toBe("TIMEOUT");
    expect(e.message).toMatch(/no REGION_READ reply within 200 ms/);
    await new Promise((r) => setTimeout(r, 300)); // the late reply arrives and is ignored
    expect((await c.read(0, 8)).every((b) => b === 0xab)).toBe(true);
  });

  it("lands read data straight in the caller's buffer, and stops writing there once the read timed out", async () => {
    const dev = simpleDevice(9, 65536);
    let reads = 0;
    const { path } = await serve((h, p, s) => {
      if (h.cmd !== CMD.REGION_READ) return void answer(dev, h, p, s);
      const chunks: Uint8Array[] = [];
      answer(dev, h, p, { write: (b: Uint8Array) => chunks.push(b) } as unknown as net.Socket);
      const msg = chunks[0];
      if (reads++ === 0) {
        // Half the reply now, the rest after the client gave up on it.
        s.write(msg.subarray(0, 20_000));
        setTimeout(() => s.write(msg.subarray(20_000)), 400);
      } else s.write(msg);
    });
    const c = await connectVfioUser(path, { timeoutMs: 200 });
    cleanups.push(() => c.close());
    const buf = new Uint8Array(40_000);
    const e = await failure(c.read(4096, 40_000, buf));
    expect(e.code).toBe("TIMEOUT");
    buf.fill(0x11); // the caller reuses its buffer
    await new Promise((r) => setTimeout(r, 500)); // the rest of the late reply arrives
    expect(buf.every((b) => b === 0x11)).toBe(true);
    // The connection carries on, and a read lands where asked.
    const got = await c.read(4096, 40_000, buf);
    expect(got.buffer).toBe(buf.buffer);
    expect(got.every((b) => b === 0xab)).toBe(true);
  });

  it("times out on a server that never answers VERSION", async () => {
    const { path } = await serve(() => {});
    const t0 = Date.now();
    const e = await failure(connectVfioUser(path, { timeoutMs: 300 }));
    expect(e.code).toBe("TIMEOUT");
    expect(e.step).toBe("version");
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it("answers a server-to-client command with ENOTSUP and carries on", async () => {
    const dev = simpleDevice();
    let got: Header | undefined;
    const { path } = await serve((h, p, s) => {
      if ((h.flags & 0xf) === TYPE_REPLY) {
        got = h;
        return;
      }
      if (h.cmd === CMD.REGION_READ) s.write(newMessage(77, CMD.DMA_READ, TYPE_COMMAND, 24));
      answer(dev, h, p, s);
    });
    const c = await connectVfioUser(path, { timeoutMs: 2000 });
    cleanups.push(() => c.close());
    expect((await c.read(0, 4)).length).toBe(4);
    for (let i = 0; i < 100 && !got; i++) await new Promise((r) => setTimeout(r, 10));
    expect(got?.id).toBe(77);
    expect(got?.cmd).toBe(CMD.DMA_READ);
    expect(got!.flags & FLAG_ERROR).toBeTruthy();
    expect(got?.errno).toBe(95);
  });

  it("grows argsz as told, and gives up on a server that keeps asking for more", async () => {
    const dev = simpleDevice(12);
    const sizes: number[] = [];
    const { path } = await serve((h, p, s) => {
      if (h.cmd === CMD.DEVICE_GET_REGION_INFO) sizes.push(new DataView(p.buffer, p.byteOffset).getUint32(0, true));
      answer(dev, h, p, s);
    });
    const c = await connectVfioUser(path, { timeoutMs: 2000 });
    await c.close();
    expect(c.index).toBe(12);
    // 13 regions asked at 32; only region 12 has caps (type cap: 48).
    expect(sizes.filter((n) => n === 32).length).toBe(13);
    expect(sizes.filter((n) => n === 48)).toEqual([48]);

    const greedy = simpleDevice();
    let ask = 40;
    greedy.regionInfo = (i) =>
      encodeRegionInfoReply({ flags: 3, index: i, size: 8192 }, [new Uint8Array((ask += 8))], 0);
    const { path: p2 } = await serve((h, p, s) => answer(greedy, h, p, s));
    const e = await failure(connectVfioUser(p2, { timeoutMs: 2000 }));
    expect(e.code).toBe("PROTOCOL");
    expect(e.field).toBe("argsz");
  });

  it("asks again when a reply's argsz exceeds the one sent, even if it carried its caps (QEMU's rule)", async () => {
    const dev = simpleDevice(9);
    dev.regionInfo = (i) =>
      i === 9
        ? encodeRegionInfoReply(
            { flags: 3, index: 9, size: 8192 },
            [encodeSparseCap([{ offset: 4096, size: 4096 }]), encodeTypeCap(3, 1)],
            1 << 16,
          )
        : encodeRegionInfoReply({ flags: 0, index: i, size: 0 }, [], 32);
    const { path, fake } = await serve((h, p, s) => answer(dev, h, p, s));
    const c = await connectVfioUser(path, { timeoutMs: 2000 });
    await c.close();
    expect(c.info.region.sparseAreas).toEqual([{ offset: 4096, size: 4096 }]);
    expect(fake.requests.filter((r) => r.cmd === CMD.DEVICE_GET_REGION_INFO).length).toBe(11);
  });

  it("ignores other typed regions and finds the migration region on any index", async () => {
    const dev = simpleDevice(9);
    dev.numRegions = 14;
    dev.regionInfo = (i, argsz) => {
      const caps = i === 9 ? [encodeTypeCap(0x8000_1234, 2)] : i === 13 ? [encodeTypeCap(3, 1)] : [];
      return encodeRegionInfoReply({ flags: caps.length ? 3 : 0, index: i, size: caps.length ? 8192 : 0 }, caps, argsz);
    };
    const { path } = await serve((h, p, s) => answer(dev, h, p, s));
    const c = await connectVfioUser(path, { timeoutMs: 2000 });
    await c.close();
    expect(c.index).toBe(13);
    expect(c.info.typedRegions.map((r) => r.index)).toEqual([9, 13]);
  });

  it("rejects a zero-sized migration region, a missing one, and one that is not read/write", async () => {
    const cases: Array<[number, number, RegExp]> = [
      [0, REGION_FLAG_READ | REGION_FLAG_WRITE, /size 0/],
      [8192, REGION_FLAG_READ, /not readable and writable/],
    ];
    for (const [size, flags, msg] of cases) {
      const dev = simpleDevice();
      dev.regionInfo = (i, argsz) =>
        encodeRegionInfoReply({ flags, index: i, size }, i === 9 ? [encodeTypeCap(3, 1)] : [], argsz);
      const { path } = await serve((h, p, s) => answer(dev, h, p, s));
      const e = await failure(connectVfioUser(path, { timeoutMs: 2000 }));
      expect(e.code).toBe("PROTOCOL");
      expect(e.message).toMatch(msg);
    }
    const none = simpleDevice();
    none.regionInfo = (i, argsz) => encodeRegionInfoReply({ flags: 3, index: i, size: 4096 }, [], argsz);
    const { path } = await serve((h, p, s) => answer(none, h, p, s));
    const e = await failure(connectVfioUser(path, { timeoutMs: 2000 }));
    expect(e.message).toMatch(/no migration region/);
  });

  it("rejects bad VERSION replies", async () => {
    const bodies: Array<[Uint8Array, RegExp]> = [
      [encodeVersion(1, 0, {}), /protocol 1\.0/],
      [encodeVersion(0, 3, {}), /minor 3/],
      [encodeVersion(0, 2, { capabilities: { max_data_xfer_size: "big" } }), /max_data_xfer_size/],
      [new Uint8Array([0, 0, 2, 0, 0x7b, 0x7b, 0]), /JSON does not parse/],
      [new Uint8Array([0, 0]), /VERSION payload of 2 bytes/],
    ];
    for (const [body, msg] of bodies) {
      const { path } = await serve((h, _p, s) => s.write(reply(h, body)));
      const e = await failure(connectVfioUser(path, { timeoutMs: 2000 }));
      expect(e.code).toBe("PROTOCOL");
      expect(e.message).toMatch(msg);
    }
  });

  it("caps accesses at a small max_data_xfer_size and checks the read echo", async () => {
    const dev = simpleDevice(9, 65536);
    const counts: number[] = [];
    let lie = false;
    const { path } = await serve((h, p, s) => {
      if (h.cmd === CMD.REGION_READ) {
        counts.push(new DataView(p.buffer, p.byteOffset).getUint32(12, true));
        if (lie) return void s.write(reply(h, new Uint8Array(16 + 4))); // echo says count 0
      }
      answer(dev, h, p, s, { capabilities: { max_data_xfer_size: 1000 } });
    });
    const c = await connectVfioUser(path, { timeoutMs: 2000 });
    cleanups.push(() => c.close());
    expect(c.maxAccess).toBe(1000);
    expect((await c.read(0, 2500)).length).toBe(2500);
    expect(counts).toEqual([1000, 1000, 500]);
    lie = true;
    const e = await failure(c.read(0, 4));
    expect(e.code).toBe("PROTOCOL");
    expect(e.message).toMatch(/does not match the request/);
  });

  it("retries DEVICE_GET_INFO with the longer structure on EINVAL", async () => {
    const dev = simpleDevice();
    const { path, fake } = await serve((h, p, s) => {
      if (h.cmd === CMD.DEVICE_GET_INFO && p.length !== 24) return void s.write(errorReply(h, 22));
      answer(dev, h, p, s);
    });
    const c = await connectVfioUser(path, { timeoutMs: 2000 });
    await c.close();
    expect(c.info.device.numRegions).toBe(10);
    expect(fake.requests.filter((r) => r.cmd === CMD.DEVICE_GET_INFO).map((r) => r.size)).toEqual([32, 40]);
  });

  it("sends each message with a single write and states no twin_socket", async () => {
    const dev = simpleDevice();
    dev.numRegions = 10;
    const chunks: number[] = [];
    let version = "";
    const { path } = await serve((h, p, s) => {
      if (h.cmd === CMD.VERSION) version = new TextDecoder().decode(p.subarray(4));
      if (h.cmd === CMD.REGION_WRITE) return void s.write(reply(h, p.subarray(0, 16)));
      answer(dev, h, p, s);
    });
    const c = await connectVfioUser(path, { timeoutMs: 2000 });
    cleanups.push(() => c.close());
    expect(version).not.toMatch(/twin_socket/);
    expect(version.endsWith("\0")).toBe(true);
    // Each message reaches the socket as one write call of the whole message.
    const sock = (c.session as unknown as { channel: { socket: net.Socket } }).channel.socket;
    const orig = sock.write.bind(sock);
    sock.write = ((b: Uint8Array, ...rest: never[]) => {
      chunks.push(b.length);
      return orig(b, ...rest);
    }) as typeof sock.write;
    await c.read(0, 8);
    await c.write(4096, new Uint8Array(3000));
    expect(chunks).toEqual([32, 32 + 3000]);
  });
});
