// The network leg in-process (src/network/tcp.ts): backpressure from a slow
// reader to the writer, the ack, the hello and its challenge, a busy
// destination and the source's retries, the handshake deadline, timeouts,
// and an aborted wait.
import { afterEach, describe, expect, it } from "vitest";
import { isMigstreamError, MigstreamError } from "../../src/errors.js";
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

  it("a busy destination: a second source retries within its connect timeout, then gives up or is served", async () => {
    const { listener, dest, peer } = await pair();
    const t0 = Date.now();
    const e = await TcpDestination.connect(listener.address, { connectTimeoutMs: 400 }).catch((x) => x);
    expect(isMigstreamError(e, "TRANSPORT")).toBe(true);
    expect(String(e.message)).toMatch(/busy with another source.*asked \d+ times within 400 ms/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    expect(listener.refused).toBeGreaterThanOrEqual(2);
    // The first source goes away meanwhile: the retrying one gets the next hello.
    const next = listener.accept();
    const third = TcpDestination.connect(listener.address, { connectTimeoutMs: 5000 });
    await tick(350);
    peer.destroy();
    dest.destroy();
    const d3 = await third;
    cleanups.push(() => d3.destroy());
    const p3 = await next;
    expect(Buffer.from(d3.hello.challenge).equals(Buffer.from(p3.challenge))).toBe(true);
    expect(Buffer.from(p3.challenge).equals(Buffer.from(peer.challenge))).toBe(false); // fresh per connection
    await d3.sink.write(new Uint8Array([1, 2, 3]));
    await d3.sink.end();
    const got: number[] = [];
    for await (const c of p3.chunks()) got.push(...c);
    expect(got).toEqual([1, 2, 3]);
    p3.destroy();
  });

  it("the hello says what the destination requires; something that is no destination is refused before anything is sent", async () => {
    const keyed = await TcpListener.listen({ host: "127.0.0.1", port: 0 }, { keyed: true });
    cleanups.push(() => keyed.close());
    const d = await TcpDestination.connect(keyed.address);
    cleanups.push(() => d.destroy());
    expect(d.hello).toMatchObject({ keyed: true, encrypted: false });
    expect(d.hello.challenge).toHaveLength(16);
    const { createServer } = await import("node:net");
    const http = createServer((c) => c.end("HTTP/1.1 400 Bad Request\r\n\r\n"));
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", () => r()));
    cleanups.push(() => void http.close());
    const port = (http.address() as import("node:net").AddressInfo).port;
    const e = await TcpDestination.connect({ host: "127.0.0.1", port }).catch((x) => x);
    expect(isMigstreamError(e, "TRANSPORT")).toBe(true);
    expect(String(e.message)).toMatch(/not a migstream destination/);
  });

  it("the handshake deadline ends a connection that has not proved its stream, counted from its arrival", async () => {
    const listener = await TcpListener.listen({ host: "127.0.0.1", port: 0 });
    cleanups.push(() => listener.close());
    const dest = await TcpDestination.connect(listener.address);
    cleanups.push(() => dest.destroy());
    const peer = await listener.accept({ idleTimeoutMs: 60_000, handshakeTimeoutMs: 300 });
    const t0 = Date.now();
    // A trickle keeps the idle timeout away, never the handshake deadline.
    const trickle = setInterval(() => void dest.sink.write(new Uint8Array([0x89])).catch(() => {}), 50);
    const e = await (async () => {
      for await (const _ of peer.chunks());
    })().catch((x) => x);
    clearInterval(trickle);
    expect(isMigstreamError(e, "TIMEOUT")).toBe(true);
    expect(String(e.message)).toMatch(/handshake deadline/);
    expect(Date.now() - t0).toBeLessThan(1000);
    peer.destroy();
    // Once established, only the idle timeout counts.
    const d2 = await TcpDestination.connect(listener.address);
    cleanups.push(() => d2.destroy());
    const p2 = await listener.accept({ idleTimeoutMs: 60_000, handshakeTimeoutMs: 100 });
    p2.established();
    await tick(200);
    await d2.sink.write(new Uint8Array([7]));
    await d2.sink.end();
    const got: number[] = [];
    for await (const c of p2.chunks()) got.push(...c);
    expect(got).toEqual([7]);
    p2.destroy();
  });

  it("abort() ends a wait for stream bytes with its error, and the source still gets the answer", async () => {
    const { dest, peer } = await pair();
    const reading = (async () => {
      for await (const _ of peer.chunks());
    })().catch((x) => x);
    await tick(50);
    peer.abort(new MigstreamError("ABORTED", "interrupted (SIGINT) while receiving"));
    const e = await reading;
    expect(isMigstreamError(e, "ABORTED")).toBe(true);
    await peer.respond({ ok: false, code: "ABORTED", message: "interrupted (SIGINT); the device was not touched" });
    await dest.sink.end().catch(() => {});
    const c = await dest.confirm(5000).catch((x) => x);
    expect(isMigstreamError(c, "ABORTED")).toBe(true);
    expect(String(c.message)).toMatch(/interrupted \(SIGINT\); the device was not touched/);
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
