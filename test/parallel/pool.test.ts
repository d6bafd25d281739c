// Pool mechanics with the test-only __echo job (no codec involved): ordering,
// backpressure, transfer semantics, crash handling, watchdog, close.
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { isMigstreamError } from "../../dist/index.js";
import { type PoolJob, type PoolOptions, WorkerPool } from "../../dist/pool.js";
import { WORKER_QUEUE_DEPTH } from "../../src/parallel/pool.js";
import { ensureDist, rng, within } from "./dist.js";

beforeAll(ensureDist);

const pools: WorkerPool[] = [];
function pool(o: PoolOptions = {}): WorkerPool {
  const p = new WorkerPool({ faultInjection: true, ...o });
  pools.push(p);
  return p;
}
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

const echo = (data: Uint8Array, extra: Partial<Extract<PoolJob, { op: "__echo" }>> = {}) =>
  ({ op: "__echo", data, ...extra }) as const;
const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);

describe("WorkerPool (workers)", () => {
  it("starts the requested number of workers", async () => {
    const p = pool({ threads: 2 });
    expect(p.inline).toBe(false);
    expect(p.workers).toBe(0); // lazy
    await p.start();
    expect(p.workers).toBe(2);
  });

  it("yields results in submission order under random per-job delays", async () => {
    const r = rng(7);
    const p = pool({ threads: 2, maxInFlight: 6 });
    const jobs = Array.from({ length: 60 }, (_, i) =>
      echo(bytes(100 + i, i), { __test: { delayMs: Math.floor(r() * 12) } }),
    );
    const out: Uint8Array[] = [];
    for await (const v of p.mapOrdered(jobs)) out.push(v);
    expect(out.length).toBe(60);
    out.forEach((v, i) => {
      expect(v.length).toBe(100 + i);
      expect(v.every((b) => b === i)).toBe(true);
    });
  });

  it("does not pull the source more than maxInFlight ahead", async () => {
    const max = 3;
    const p = pool({ threads: 2, maxInFlight: max });
    let pulled = 0;
    async function* source() {
      for (let i = 0; i < 30; i++) {
        pulled++;
        yield echo(bytes(8, i), { __test: { delayMs: i % 3 } });
      }
    }
    let received = 0;
    let widest = 0;
    for await (const v of p.mapOrdered(source())) {
      expect(v[0]).toBe(received);
      received++;
      widest = Math.max(widest, pulled - received);
      expect(pulled - received).toBeLessThan(max);
      await new Promise((r) => setTimeout(r, 3)); // slow consumer
      expect(pulled - received).toBeLessThan(max);
    }
    expect(received).toBe(30);
    expect(widest).toBe(max - 1);
  });

  it("moves a whole-buffer input (caller's ArrayBuffer detached), result spans its own buffer", async () => {
    const p = pool({ threads: 2 });
    const data = bytes(4096, 3);
    const job = p.submit(echo(data));
    expect(data.byteLength).toBe(0); // detached at submission, before any worker ran
    const out = await job;
    expect(out.length).toBe(4096);
    expect(out.every((b) => b === 3)).toBe(true);
    expect(out.byteOffset).toBe(0);
    expect(out.buffer.byteLength).toBe(4096);
  });

  it("copies when asked (per job or per pool) and for views into a larger buffer", async () => {
    const p = pool({ threads: 2 });
    const kept = bytes(64, 1);
    expect((await p.submit(echo(kept, { copy: true })))[0]).toBe(1);
    expect(kept.byteLength).toBe(64);

    const big = new Uint8Array(1024).map((_, i) => i & 0xff);
    const part = big.subarray(100, 200);
    const out = await p.submit(echo(part));
    expect(big.byteLength).toBe(1024); // neighbours untouched
    expect(part.length).toBe(100);
    expect(Array.from(out)).toEqual(Array.from(big.subarray(100, 200)));

    const copying = pool({ threads: 2, copy: true });
    const k2 = bytes(32, 9);
    await copying.submit(echo(k2));
    expect(k2.byteLength).toBe(32);
    const moved = bytes(32, 9);
    await copying.submit(echo(moved, { copy: false })); // per-job override
    expect(moved.byteLength).toBe(0);
  });

  it("reads SharedArrayBuffer views in place (no detach, no copy in)", async () => {
    const p = pool({ threads: 2 });
    const sab = new Uint8Array(new SharedArrayBuffer(256)).fill(4);
    const out = await p.submit(echo(sab.subarray(0, 128)));
    expect(sab.byteLength).toBe(256);
    expect(out.length).toBe(128);
    expect(out.every((b) => b === 4)).toBe(true);
  });

  it("a throwing job fails with INTERNAL and the worker lives on", async () => {
    const p = pool({ threads: 2 });
    await p.start();
    const err = await p.submit(echo(bytes(4, 0), { __test: { crashAfter: 0, crash: "throw" } })).catch((e) => e);
    expect(isMigstreamError(err, "INTERNAL")).toBe(true);
    expect(err.message).toMatch(/injected fault/);
    expect(p.workers).toBe(2);
    expect((await p.submit(echo(bytes(4, 5))))[0]).toBe(5);
  });

  for (const crash of ["exit", "uncaught"] as const) {
    it(`a worker that dies (${crash}) fails its jobs with INTERNAL and is replaced`, async () => {
      const p = pool({ threads: 2 });
      await p.start();
      const err = await within(
        p.submit(echo(bytes(4, 0), { __test: { crashAfter: 0, crash } })),
        10_000,
        "crashed job",
      ).catch((e) => e);
      expect(isMigstreamError(err, "INTERNAL")).toBe(true);
      expect(err.message).toMatch(crash === "exit" ? /exited with code 70/ : /injected uncaught error/);
      expect((await within(p.submit(echo(bytes(4, 6))), 10_000, "next job"))[0]).toBe(6);
    });
  }

  it("counts jobs per worker for crashAfter", async () => {
    const p = pool({ threads: 2 });
    await p.start();
    const results: string[] = [];
    for (let i = 0; i < 5; i++) {
      // One job at a time: the first idle worker (the same one) takes each.
      const r = await p.submit(echo(bytes(1, i), { __test: { crashAfter: 3, crash: "exit" } })).then(
        (v) => `ok${v[0]}`,
        (e) => e.code,
      );
      results.push(r);
    }
    expect(results).toEqual(["ok0", "ok1", "ok2", "INTERNAL", "ok4"]);
  });

  it("random worker failures end the pipeline with a typed error, never a hang or a gap", async () => {
    const r = rng(99);
    for (let round = 0; round < 6; round++) {
      const p = pool({ threads: 2, maxInFlight: 5 });
      const n = 20 + Math.floor(r() * 20);
      const bad = Math.floor(r() * n);
      const crash = (["throw", "exit", "uncaught"] as const)[round % 3];
      const jobs = Array.from({ length: n }, (_, i) =>
        echo(bytes(16, i), { __test: i === bad ? { crashAfter: 0, crash } : { delayMs: Math.floor(r() * 5) } }),
      );
      const out: number[] = [];
      const run = (async () => {
        for await (const v of p.mapOrdered(jobs)) out.push(v[0]);
      })();
      const err = await within(run, 15_000, `pipeline round ${round}`).then(
        () => null,
        (e) => e,
      );
      expect(isMigstreamError(err), String(err)).toBe(true);
      expect(["INTERNAL"]).toContain(err.code);
      expect(out.length).toBeLessThanOrEqual(bad); // nothing at or after the failed job
      expect(out).toEqual(out.map((_, i) => i)); // an in-order prefix, no gaps
    }
  });

  it("the watchdog ends a silent worker with TIMEOUT", async () => {
    const p = pool({ threads: 2, jobTimeoutMs: 150 });
    await p.start();
    const err = await within(p.submit(echo(bytes(1, 0), { __test: { delayMs: 3000 } })), 5000, "watchdog").catch(
      (e) => e,
    );
    expect(isMigstreamError(err, "TIMEOUT")).toBe(true);
    expect((await p.submit(echo(bytes(1, 8))))[0]).toBe(8);
  });

  it("a worker that cannot load breaks the pool with INTERNAL (no respawn loop, no hang)", async () => {
    const p = pool({ threads: 2, workerUrl: new URL("./no-such-worker.js", import.meta.url) });
    const jobs = [1, 2, 3].map((i) => p.submit(echo(bytes(1, i))));
    for (const j of jobs) {
      const err = await within(j, 10_000, "job on a broken pool").catch((e) => e);
      expect(isMigstreamError(err, "INTERNAL")).toBe(true);
      expect(err.message).toMatch(/could not start/);
    }
    await expect(p.start()).rejects.toMatchObject({ code: "INTERNAL" });
  });

  it("ignores fault plans and test jobs unless fault injection is on", async () => {
    const p = new WorkerPool({ threads: 2, faultInjection: false });
    pools.push(p);
    await expect(p.submit(echo(bytes(1, 0)))).rejects.toMatchObject({ code: "USAGE" });
  });

  it("close waits for submitted jobs, then refuses new ones", async () => {
    const p = pool({ threads: 2 });
    const slow = p.submit(echo(bytes(1, 2), { __test: { delayMs: 100 } }));
    await p.close();
    expect((await slow)[0]).toBe(2);
    expect(p.workers).toBe(0);
    await expect(p.submit(echo(bytes(1, 0)))).rejects.toMatchObject({ code: "USAGE" });
    await p.close(); // idempotent
  });

  it("rejects bad options and inputs with USAGE", () => {
    expect(() => new WorkerPool({ threads: 0 })).toThrow(expect.objectContaining({ code: "USAGE", field: "threads" }));
    expect(() => new WorkerPool({ threads: 1.5 })).toThrow(expect.objectContaining({ code: "USAGE" }));
    expect(() => new WorkerPool({ maxInFlight: 0 })).toThrow(expect.objectContaining({ field: "maxInFlight" }));
    const p = pool({ threads: 2 });
    return expect(p.submit(echo([1, 2] as unknown as Uint8Array))).rejects.toMatchObject({
      code: "USAGE",
      field: "data",
    });
  });
});

describe("WorkerPool (inline, threads: 1)", () => {
  it("runs on the calling thread with the same semantics", async () => {
    const p = pool({ threads: 1 });
    expect(p.inline).toBe(true);
    await p.start();
    expect(p.workers).toBe(0);
    const data = bytes(100, 7);
    const out = await p.submit(echo(data));
    expect(data.byteLength).toBe(0); // moved, as with workers
    expect(out.length).toBe(100);
    const kept = bytes(10, 1);
    const copy = await p.submit(echo(kept, { copy: true }));
    copy[0] = 99;
    expect(kept[0]).toBe(1);
  });

  it("keeps order under delays and fails the pipeline on a fault", async () => {
    const p = pool({ threads: 1, maxInFlight: 4 });
    const out: number[] = [];
    const jobs = Array.from({ length: 12 }, (_, i) =>
      echo(bytes(1, i), { __test: i === 9 ? { crashAfter: 0, crash: "exit" } : { delayMs: (12 - i) % 4 } }),
    );
    const err = await (async () => {
      for await (const v of p.mapOrdered(jobs)) out.push(v[0]);
    })().catch((e) => e);
    expect(isMigstreamError(err, "INTERNAL")).toBe(true); // inline: every crash mode throws
    expect(out).toEqual(out.map((_, i) => i));
    expect(out.length).toBeLessThanOrEqual(9);
  });
});

describe("WorkerPool (callerRuns)", () => {
  it("starts threads − 1 workers and codes on the calling thread when they are all busy, in order", async () => {
    const r = rng(23);
    const p = pool({ threads: 2, callerRuns: true, maxInFlight: 8 });
    await p.start();
    expect(p.workers).toBe(1);
    const jobs = Array.from({ length: 40 }, (_, i) =>
      echo(bytes(50 + i, i), { __test: { delayMs: Math.floor(r() * 6) } }),
    );
    const out: Uint8Array[] = [];
    for await (const v of p.mapOrdered(jobs)) out.push(v);
    out.forEach((v, i) => {
      expect(v.length === 50 + i && v.every((b) => b === i)).toBe(true);
    });
    // Slow jobs fill the worker's queue; the next runs here: its "exit" fault throws (inline) instead of ending a worker.
    const slow = Array.from({ length: WORKER_QUEUE_DEPTH }, (_, i) =>
      p.submit(echo(bytes(1, i + 1), { __test: { delayMs: 30 } })),
    );
    const c = await p.submit(echo(bytes(1, 99), { __test: { crashAfter: 0, crash: "exit" } })).catch((e) => e);
    expect(isMigstreamError(c, "INTERNAL")).toBe(true);
    expect(c.message).toMatch(/injected fault/);
    expect((await Promise.all(slow)).map((v) => v[0])).toEqual(slow.map((_, i) => i + 1));
    expect(p.workers).toBe(1); // no worker died
  });

  it("a dying worker fails its jobs with INTERNAL; the calling thread and a fresh worker carry on", async () => {
    const p = pool({ threads: 2, callerRuns: true });
    await p.start();
    const jobs = Array.from({ length: 12 }, (_, i) =>
      p.submit(echo(bytes(8, i), { __test: i === 0 ? { crashAfter: 0, crash: "exit" } : { delayMs: 2 } })),
    );
    const settled = await within(Promise.allSettled(jobs), 10_000, "jobs");
    const failed = settled.filter((x) => x.status === "rejected");
    expect(failed.length).toBeGreaterThan(0);
    for (const f of failed) expect(isMigstreamError((f as PromiseRejectedResult).reason, "INTERNAL")).toBe(true);
    expect(settled.some((x) => x.status === "fulfilled")).toBe(true);
    expect((await within(p.submit(echo(bytes(4, 9))), 10_000, "next job"))[0]).toBe(9);
  });
});
