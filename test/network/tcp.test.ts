// The network leg in-process (src/network/tcp.ts): backpressure from a slow
// reader to the writer, the ack, busy refusal, timeouts.
import { afterEach, describe, expect, it } from "vitest";
import { isMigstreamError } from "../../src/errors.js";
import { TcpDestination, TcpListener } from "../../src/network/tcp.js";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function pair() {
  const listener = await TcpListener.listen({ host: "127.0.0.1", port: 0 });
  cleanups.push(() => listener.close());
  const accepted = listener.accept({ idleTimeoutMs: 5000 });
  const dest = await TcpDestination.connect(listener.address, { idleTimeoutMs: 0 });
  cleanups.push(() => dest.destroy());
  return { listener, dest, peer: await accepted };
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));
const BLOCK = 1 << 20;

describe("tcp leg", () => {
  it("a reader that does not read stops the writer; reading resumes it; the ack ends it", async () => {
    const { dest, peer } = await pair();
    const total = 64;
    let written = 0;
    const writing = (async () => {
      for (let i = 0; i < total; i++) {
        await dest.sink.write(new Uint8Array(BLOCK).fill(i));
        written++;
      }
      await dest.sink.end();
    })();
    await tick(300);
    // Kernel buffers and the writable's buffer hold a few MiB at most: the writer waits.
    const stalled = written;
    expect(stalled).toBeLessThan(total / 2);
    await tick(200);
    expect(written).toBe(stalled);
    // Now read everything and check order and content.
    let got = 0;
    let bad = -1;
    for await (const c of peer.chunks()) {
      for (let j = 0; j < c.length; j += 509) if (c[j] !== Math.floor((got + j) / BLOCK)) bad = got + j;
      got += c.length;
    }
    await writing;
    expect(bad).toBe(-1);
    expect(got).toBe(total * BLOCK);
    const confirmed = dest.confirm(5000);
    await peer.respond({ ok: true, started: true, transactions: 1, bytes: got });
    expect(await confirmed).toEqual({ ok: true, started: true, transactions: 1, bytes: got });
  });

  it("a failure ack stops a writer at once with the destination's error", async () => {
    const { dest, peer } = await pair();
    const writing = (async () => {
      for (;;) await dest.sink.write(new Uint8Array(BLOCK));
    })();
    await tick(100);
    await peer.respond({ ok: false, code: "CHECKSUM", message: "bad frame", offset: 77, frame: 3 });
    const e = await writing.catch((x) => x);
    expect(isMigstreamError(e, "CHECKSUM")).toBe(true);
    expect(e).toMatchObject({ offset: 77, frame: 3, message: 'the destination failed: "bad frame"' });
  });

  it("refuses a second source while one is served, and accepts the next after release", async () => {
    const { listener, dest, peer } = await pair();
    const second = await TcpDestination.connect(listener.address);
    cleanups.push(() => second.destroy());
    await second.sink.end();
    const e = await second.confirm(5000).catch((x) => x);
    expect(isMigstreamError(e, "TRANSPORT")).toBe(true);
    expect(String(e.message)).toMatch(/busy/);
    expect(listener.refused).toBe(1);
    peer.destroy();
    dest.destroy();
    const next = listener.accept();
    const third = await TcpDestination.connect(listener.address);
    cleanups.push(() => third.destroy());
    const p3 = await next;
    await third.sink.write(new Uint8Array([1, 2, 3]));
    await third.sink.end();
    const got: number[] = [];
    for await (const c of p3.chunks()) got.push(...c);
    expect(got).toEqual([1, 2, 3]);
    p3.destroy();
  });

  it("times out a silent source and a destination that never answers", async () => {
    const listener = await TcpListener.listen({ host: "127.0.0.1", port: 0 });
    cleanups.push(() => listener.close());
    const accepted = listener.accept({ idleTimeoutMs: 150 });
    const dest = await TcpDestination.connect(listener.address);
    cleanups.push(() => dest.destroy());
    const peer = await accepted;
    const e = await (async () => {
      for await (const _ of peer.chunks());
    })().catch((x) => x);
    expect(isMigstreamError(e, "TIMEOUT")).toBe(true);
    await dest.sink.end();
    const t = await dest.confirm(150).catch((x) => x);
    expect(isMigstreamError(t, "TIMEOUT")).toBe(true);
    peer.destroy();
    const acceptTimeout = await listener.accept({ acceptTimeoutMs: 100 }).catch((x) => x);
    expect(isMigstreamError(acceptTimeout, "TIMEOUT")).toBe(true);
  });
});
