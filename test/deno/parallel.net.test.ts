// The worker pool under Deno: module Web Workers loaded from the built
// dist/worker.js (needs --allow-read for the dist directory).
import { isMigstreamError } from "../../dist/index.js";
import { WorkerPool } from "../../dist/pool.js";

// The one Deno API used here (lets tsc check this file without Deno's types).
declare const Deno: { test(name: string, fn: () => Promise<void>): void };

function assert(cond: unknown, msg: string): void {
  if (!cond) throw new Error(msg);
}

Deno.test("pool runs module workers from dist and keeps order", async () => {
  const pool = new WorkerPool({ threads: 2, maxInFlight: 5, faultInjection: true });
  try {
    await pool.start();
    assert(!pool.inline && pool.workers === 2, "two Web Workers expected");
    const jobs = Array.from({ length: 30 }, (_, i) => ({
      op: "__echo" as const,
      data: new Uint8Array(64 + i).fill(i),
      __test: { delayMs: (i * 7) % 6 },
    }));
    let i = 0;
    for await (const v of pool.mapOrdered(jobs)) {
      assert(v.length === 64 + i && v.every((b) => b === i), `result ${i} out of order or wrong`);
      i++;
    }
    assert(i === 30, "all results");
    const data = new Uint8Array(1024);
    await pool.submit({ op: "__echo", data });
    assert(data.byteLength === 0, "input moved (detached)");
  } finally {
    await pool.close();
  }
});

Deno.test("pool turns worker deaths into typed errors", async () => {
  const pool = new WorkerPool({ threads: 2, faultInjection: true, jobTimeoutMs: 500 });
  try {
    await pool.start();
    // An uncaught error raises the worker's error event: INTERNAL.
    const e1 = await pool
      .submit({ op: "__echo", data: new Uint8Array(1), __test: { crashAfter: 0, crash: "uncaught" } })
      .catch((e) => e);
    assert(isMigstreamError(e1, "INTERNAL"), `uncaught: ${e1}`);
    // A Web Worker that exits sends no event: the watchdog catches it.
    const e2 = await pool
      .submit({ op: "__echo", data: new Uint8Array(1), __test: { crashAfter: 0, crash: "exit" } })
      .catch((e) => e);
    assert(isMigstreamError(e2, "TIMEOUT"), `exit: ${e2}`);
    const ok = await pool.submit({ op: "__echo", data: new Uint8Array([42]) });
    assert(ok[0] === 42, "pool recovers with fresh workers");
  } finally {
    await pool.close();
  }
});

Deno.test("codec jobs in Deno workers match the inline path", async () => {
  const inline = new WorkerPool({ threads: 1 });
  const pool = new WorkerPool({ threads: 2 });
  try {
    const raw = new Uint8Array(200_000);
    for (let i = 0; i < raw.length; i++) raw[i] = i % 4096 < 2048 ? (i * 31) % 7 : 0;
    for (const codec of ["lz4", "zstd", "auto"] as const) {
      const a = await inline.encode(raw, { codec, copy: true });
      const b = await pool.encode(raw, { codec, copy: true });
      assert(a.codec === b.codec && a.level === b.level && a.hash === b.hash, `${codec}: same choice and hash`);
      assert(
        a.payload.length === b.payload.length && a.payload.every((x, i) => x === b.payload[i]),
        `${codec}: same payload`,
      );
      const back = await pool.decode(b);
      assert(back.length === raw.length && back.every((x, i) => x === raw[i]), `${codec}: round trip`);
    }
    const good = await pool.encode(raw, { codec: "lz4", copy: true });
    const err = await pool.decode({ ...good, hash: good.hash ^ 1n }).catch((e) => e);
    assert(isMigstreamError(err, "CHECKSUM"), `hash mismatch: ${err}`);
  } finally {
    await Promise.all([inline.close(), pool.close()]);
  }
});
