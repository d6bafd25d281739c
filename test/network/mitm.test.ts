// A man in the middle of a live keyed migration (real loopback sockets,
// saveDevice → TcpDestination → a frame-aware proxy → TcpListener → restoreDevice
// into a simulated device that records what reaches it). Whatever the proxy
// does — alter, drop, reorder or replay a frame, fixing every unkeyed check
// it can; change the destination's challenge; splice frames between two live
// connections — the destination fails before the tampered frame's data is
// applied, is never started, and the source is told and runs on. With HMAC
// tags and with sealed (AES-256-GCM) frames.
import * as net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { SimDevice } from "../../src/device/index.js";
import { isMigstreamError, type MigstreamError } from "../../src/errors.js";
import { crcSmall } from "../../src/format/crc.js";
import { payloadSeed } from "../../src/format/frames.js";
import { xxh3_64 } from "../../src/kernels/xxh3.js";
import { restoreDevice } from "../../src/migrate/restore-stream.js";
import { saveDevice } from "../../src/migrate/save-to.js";
import { failureAck } from "../../src/network/ack.js";
import { HELLO_SIZE } from "../../src/network/hello.js";
import { TcpDestination, TcpListener } from "../../src/network/tcp.js";
import { OFF_DATA_SIZE, STATE_MASK, STATE_RUNNING, STATE_STOP } from "../../src/protocol/constants.js";
import { InProcessRegion } from "../../src/transport/in-process.js";

const KEY = Uint8Array.from({ length: 32 }, (_, i) => 0x33 ^ i);
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A region that counts the transactions written to it (each ends with a data_size write). */
class Recording extends InProcessRegion {
  transactions = 0;
  override async write(offset: number, data: Uint8Array): Promise<void> {
    await super.write(offset, data);
    if (offset === OFF_DATA_SIZE) this.transactions++;
  }
}

/** A frame as the proxy sees it: its bytes and the stream it belongs to. */
interface Seen {
  bytes: Uint8Array;
  type: number;
  /** TRANSACTION frames before this one in its stream. */
  txn: number;
}

/** What a man in the middle does to the frames of one connection (seq renumbering and checks are fixed for it). */
type Tamper = (frames: Seen[], index: number) => Seen[];

/** The stream's unkeyed seeds from its header. */
function seeds(header: Uint8Array) {
  const check = new DataView(header.buffer, header.byteOffset, 64).getBigUint64(56, true);
  return { check, crc: Number(check & 0xffffffffn), sealed: header[11] === 2 };
}

/**
 * Re-seals what an attacker without the key can: a frame's seq, header CRC
 * and (for an HMAC-tagged frame, whose payload is in clear) its payload check.
 * The tag it cannot make.
 */
function refit(f: Uint8Array, seq: number, header: Uint8Array): Uint8Array {
  const s = seeds(header);
  const b = f.slice();
  const dv = new DataView(b.buffer);
  dv.setUint32(4, seq, true);
  const hcrc = crcSmall(b, 0, 12, s.crc);
  dv.setUint32(12, hcrc, true);
  if (!s.sealed) {
    const len = dv.getUint32(8, true);
    dv.setBigUint64(16 + len, xxh3_64(b.subarray(16, 16 + len), payloadSeed(s.check, len, hcrc)), true);
  }
  return b;
}

/** Cuts a byte stream into the stream header and frames; `emit` gets each frame as it completes. */
class FrameCutter {
  header: Uint8Array | null = null;
  private buf = new Uint8Array(0);
  private tag = 0;
  txns = 0;
  constructor(private readonly emit: (f: Seen | "header") => void) {}
  push(c: Uint8Array): void {
    const all = new Uint8Array(this.buf.length + c.length);
    all.set(this.buf);
    all.set(c, this.buf.length);
    this.buf = all;
    for (;;) {
      if (this.header === null) {
        if (this.buf.length < 64) return;
        this.header = this.buf.slice(0, 64);
        this.tag = this.header[11] === 0 ? 0 : 16;
        this.buf = this.buf.slice(64);
        this.emit("header");
        continue;
      }
      if (this.buf.length < 16) return;
      const len = new DataView(this.buf.buffer, this.buf.byteOffset).getUint32(8, true);
      const size = 16 + len + 8 + this.tag;
      if (this.buf.length < size) return;
      const bytes = this.buf.slice(0, size);
      this.buf = this.buf.slice(size);
      this.emit({ bytes, type: bytes[0], txn: this.txns });
      if (bytes[0] === 3) this.txns++;
    }
  }
}

interface Mitm {
  port: number;
  /** The index (in stream order) of the frame tampered with, and its transaction. */
  hit: { frame: number; txn: number } | null;
}

/**
 * A proxy to `target` that applies `tamper` once, at the first CHUNK frame of
 * the third transaction, and (with `challenge`) changes the hello's challenge
 * on its way to the source, fixing its check.
 */
async function mitm(
  target: number,
  o: { tamper?: Tamper; challenge?: boolean; onFrame?: (conn: number, f: Seen, header: Uint8Array) => Seen } = {},
): Promise<Mitm> {
  const state: Mitm = { port: 0, hit: null };
  let conns = 0;
  const server = net.createServer({ allowHalfOpen: true }, (src) => {
    const conn = conns++;
    const dst = net.connect({ host: "127.0.0.1", port: target, allowHalfOpen: true });
    cleanups.push(
      () => src.destroy(),
      () => dst.destroy(),
    );
    src.on("error", () => dst.destroy());
    dst.on("error", () => src.destroy());
    // Destination → source: the hello (maybe changed), then the answer.
    let hello = new Uint8Array(0);
    dst.on("data", (c: Buffer) => {
      if (hello.length >= HELLO_SIZE) return void src.write(c);
      const all = Buffer.concat([hello, c]);
      if (all.length < HELLO_SIZE) return void (hello = all);
      hello = all.subarray(0, HELLO_SIZE);
      if (o.challenge) {
        const h = Buffer.from(hello);
        h[16] ^= 0xff;
        h.writeBigUInt64LE(xxh3_64(h.subarray(0, 32)), 32);
        hello = h;
      }
      src.write(Buffer.concat([hello, all.subarray(HELLO_SIZE)]));
    });
    dst.on("end", () => src.end());
    // Source → destination: frame by frame; the target frame is held until the next one arrives.
    let seq = 0;
    let held: Seen | null = null;
    let done = false;
    const cutter = new FrameCutter((f) => {
      if (f === "header") return void dst.write(cutter.header!);
      const frame = o.onFrame ? o.onFrame(conn, f, cutter.header!) : f;
      let out: Seen[] = [frame];
      if (o.tamper && !done) {
        if (held === null && frame.type === 4 && frame.txn === 3) {
          held = frame;
          state.hit = { frame: seq, txn: 2 };
          return;
        }
        if (held !== null) {
          out = o.tamper([held, frame], 0);
          done = true;
        }
      }
      for (const x of out) dst.write(refit(x.bytes, seq++, cutter.header!));
    });
    src.on("data", (c: Buffer) => cutter.push(c));
    src.on("end", () => dst.end());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  state.port = (server.address() as net.AddressInfo).port;
  return state;
}

const devs = () => {
  const src = new SimDevice({ stateSize: 1 << 20, txnSize: 64 << 10, seed: 21 });
  const dst = new SimDevice({ stateSize: 1 << 20, txnSize: 64 << 10, empty: true });
  return { src, dst };
};

/** One live migration through `port`'s proxy to a fresh listener on `listener`; both ends' outcomes. */
async function migrate(listener: TcpListener, via: number, src: SimDevice, dst: SimDevice, encrypt: boolean) {
  const region = new Recording(dst);
  const before = dst.digest();
  const restoring = (async () => {
    const peer = await listener.accept({ idleTimeoutMs: 5000, handshakeTimeoutMs: 5000 });
    try {
      const s = await restoreDevice(region, peer.chunks(), { key: KEY, challenge: peer.challenge, checkFit: true });
      await peer.respond({ ok: true, started: s.started, transactions: s.transactions, bytes: s.bytes });
      return s;
    } catch (e) {
      await peer.respond(failureAck(e));
      throw e;
    }
  })();
  const dest = await TcpDestination.connect({ host: "127.0.0.1", port: via });
  const saving = saveDevice(new InProcessRegion(src), dest.sink, {
    encoder: { codec: "raw", chunkSize: 16 << 10, key: KEY, encrypt, challenge: dest.hello.challenge },
    save: { precopy: false },
    confirm: () => dest.confirm(5000),
  });
  const [r, s] = await Promise.allSettled([restoring, saving]);
  return { r, s, region, before };
}

/** The destination failed before the tampered transaction's data reached it, and is not running. */
function expectCaught(
  m: Awaited<ReturnType<typeof migrate>>,
  dst: SimDevice,
  src: SimDevice,
  beforeTxn: number | null,
  what: string,
) {
  expect(m.r.status, what).toBe("rejected");
  const e = (m.r as PromiseRejectedResult).reason as MigstreamError;
  expect(isMigstreamError(e), what).toBe(true);
  expect(["MAC", "SEQUENCE"], `${what}: ${e.code} ${e.message}`).toContain(e.code);
  if (beforeTxn === null) {
    // Caught before the device was entered: it holds what it held, still RUNNING.
    expect(m.region.transactions, what).toBe(0);
    expect(dst.digest(), what).toBe(m.before);
    expect(dst.state & STATE_MASK, what).toBe(STATE_RUNNING);
  } else {
    expect(m.region.transactions, what).toBeLessThanOrEqual(beforeTxn);
    expect(dst.state & STATE_MASK, what).toBe(STATE_STOP); // reset and stopped: none of the partial state
    expect(dst.digest(), what).toBe(m.before);
  }
  // The source was told and its driver put it back in RUNNING with its state.
  expect(m.s.status, what).toBe("rejected");
  expect(src.state & STATE_MASK, what).toBe(STATE_RUNNING);
}

const TAMPERS: Record<string, Tamper> = {
  // A byte of the chunk's payload changed (an HMAC frame's payload check recomputed to match).
  altered: (f, i) =>
    f.map((x, j) =>
      j === i
        ? {
            ...x,
            bytes: (() => {
              const b = x.bytes.slice();
              b[40] ^= 0x5a;
              return b;
            })(),
          }
        : x,
    ),
  dropped: (f, i) => f.filter((_, j) => j !== i),
  reordered: (f, i) => [...f.slice(0, i), f[i + 1], f[i], ...f.slice(i + 2)],
  replayed: (f, i) => [...f.slice(0, i + 1), f[i], ...f.slice(i + 1)],
};

describe("a man in the middle of a live keyed migration", () => {
  for (const encrypt of [false, true]) {
    const mode = encrypt ? "sealed frames" : "HMAC tags";
    it(`${mode}: an altered, dropped, reordered or replayed frame is caught before its data is applied`, async () => {
      for (const [what, tamper] of Object.entries(TAMPERS)) {
        const { src, dst } = devs();
        const listener = await TcpListener.listen({ host: "127.0.0.1", port: 0 }, { keyed: true });
        cleanups.push(() => listener.close());
        const px = await mitm(listener.address.port, { tamper });
        const m = await migrate(listener, px.port, src, dst, encrypt);
        expect(px.hit, what).not.toBeNull();
        // The tampered frame carries the third transaction (index 2): at most transactions 0 and 1 were applied.
        expectCaught(m, dst, src, 2, `${mode}, ${what}`);
      }
    });

    it(`${mode}: a changed challenge is caught before the device is touched`, async () => {
      const { src, dst } = devs();
      const listener = await TcpListener.listen({ host: "127.0.0.1", port: 0 }, { keyed: true });
      cleanups.push(() => listener.close());
      const px = await mitm(listener.address.port, { challenge: true });
      const m = await migrate(listener, px.port, src, dst, encrypt);
      expectCaught(m, dst, src, null, `${mode}, challenge`);
      expect(((m.r as PromiseRejectedResult).reason as MigstreamError).frame).toBe(0);
    });

    it(`${mode}: frames spliced between two live connections are refused`, async () => {
      // Two migrations at once, through one proxy: connection 1 gets connection 0's CHUNK frames in place of its own.
      const a = devs();
      const b = devs();
      const la = await TcpListener.listen({ host: "127.0.0.1", port: 0 }, { keyed: true });
      const lb = await TcpListener.listen({ host: "127.0.0.1", port: 0 }, { keyed: true });
      cleanups.push(
        () => la.close(),
        () => lb.close(),
      );
      const stash: Uint8Array[] = [];
      let spliced = 0;
      const onFrame = (conn: number, f: Seen): Seen => {
        if (f.type !== 4) return f;
        if (conn === 0) stash.push(f.bytes);
        else if (f.txn >= 2 && stash.length > 0) {
          spliced++;
          return { ...f, bytes: stash.shift()! };
        }
        return f;
      };
      // Connection 0 goes to la, connection 1 to lb: two proxies sharing the stash.
      const p0 = await mitm(la.address.port, { onFrame: (_c, f) => onFrame(0, f) });
      const p1 = await mitm(lb.address.port, { onFrame: (_c, f) => onFrame(1, f) });
      const [m0, m1] = await Promise.all([
        migrate(la, p0.port, a.src, a.dst, encrypt),
        migrate(lb, p1.port, b.src, b.dst, encrypt),
      ]);
      expect(m0.r.status).toBe("fulfilled"); // the donor connection itself is untouched
      expect(spliced).toBeGreaterThan(0);
      // The first CHUNK of transaction 1 is foreign: at most transaction 0 was applied.
      expectCaught(m1, b.dst, b.src, 1, `${mode}, splice`);
    });
  }
});
