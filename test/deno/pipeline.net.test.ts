// The parallel coding pipeline under Deno (module Web Workers from dist/):
// StreamEncoder on a pool gives the inline encoder's bytes, with workers
// only and with the calling thread sharing the work; StreamDecoder on a pool
// gives the events it gives without one; a corrupted chunk fails both with
// the same typed error.
import { init, isMigstreamError, StreamDecoder, StreamEncoder } from "../../dist/index.js";
import { WorkerPool } from "../../dist/pool.js";

declare const Deno: { test(name: string, fn: () => Promise<void>): void };

function assert(cond: unknown, msg: string): void {
  if (!cond) throw new Error(msg);
}

/** Pages of three kinds (zero, repetitive, pseudo-random), 1.5 MiB. */
function data(): Uint8Array {
  const out = new Uint8Array(1536 << 10);
  let s = 12345;
  for (let p = 0; p < out.length / 4096; p++) {
    const kind = p % 3;
    for (let i = p * 4096; i < (p + 1) * 4096; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      out[i] = kind === 0 ? 0 : kind === 1 ? (i * 7) % 13 : s >>> 24;
    }
  }
  return out;
}

async function encode(input: Uint8Array, pool?: WorkerPool): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const enc = new StreamEncoder((b: Uint8Array) => void parts.push(b.slice()), {
    codec: "lz4",
    chunkSize: 65536,
    pool,
    streamId: new Uint8Array(16),
    maxTransaction: 1 << 20,
  });
  const d = enc.device(0);
  await d.phase("stopcopy", 0);
  for (let at = 0; at < input.length; at += 1 << 20) await d.transaction(input.subarray(at, at + (1 << 20)));
  await d.end();
  await enc.finish();
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

Deno.test("encoding and decoding on a pool of Web Workers match the inline encoder and decoder", async () => {
  await init();
  const workers = new WorkerPool({ threads: 2 });
  const sharing = new WorkerPool({ threads: 2, callerRuns: true });
  try {
    const input = data();
    const inline = await encode(input);
    assert(same(await encode(input, workers), inline), "workers: same stream");
    assert(same(await encode(input, sharing), inline), "caller-runs: same stream");

    const want: string[] = [];
    const dec = new StreamDecoder({ assemble: true });
    for await (const ev of dec.writeAsync(inline))
      want.push(
        JSON.stringify(
          { ...ev, data: "data" in ev && ev.data ? Array.from(ev.data.subarray(0, 64)) : undefined },
          (_, v) => (typeof v === "bigint" ? v.toString() : v),
        ),
      );
    dec.finish();
    const got: string[] = [];
    for await (const ev of new StreamDecoder({ assemble: true, pool: workers }).events([inline])) {
      got.push(
        JSON.stringify(
          { ...ev, data: "data" in ev && ev.data ? Array.from(ev.data.subarray(0, 64)) : undefined },
          (_, v) => (typeof v === "bigint" ? v.toString() : v),
        ),
      );
    }
    assert(got.length === want.length && got.every((g, i) => g === want[i]), "same decode events");

    // A flipped bit inside the stream: both decoders fail with the same typed error.
    const bad = inline.slice();
    bad[Math.floor(bad.length * 0.4)] ^= 4;
    let a: unknown = null;
    let b: unknown = null;
    try {
      const d2 = new StreamDecoder();
      for await (const _ of d2.writeAsync(bad));
      d2.finish();
    } catch (e) {
      a = e;
    }
    try {
      for await (const _ of new StreamDecoder({ pool: sharing }).events([bad]));
    } catch (e) {
      b = e;
    }
    assert(isMigstreamError(a) && isMigstreamError(b), `both fail with a typed error: ${a} / ${b}`);
    assert((a as { code: string }).code === (b as { code: string }).code, `same code: ${a} / ${b}`);
  } finally {
    await Promise.all([workers.close(), sharing.close()]);
  }
});
