import { describe, expect, it } from "vitest";
import { MigstreamError } from "../../src/errors.js";
import { OrderedPipeline } from "../../src/parallel/ordered.js";
import { within } from "./dist.js";

/** A runner whose jobs finish only when the test says so, in any order. */
function controlled() {
  const waiting = new Map<number, { resolve(v: number): void; reject(e: unknown): void }>();
  const started: number[] = [];
  const run = (n: number) =>
    new Promise<number>((resolve, reject) => {
      started.push(n);
      waiting.set(n, { resolve, reject });
    });
  return { run, started, waiting };
}

const tick = () => new Promise((r) => setTimeout(r, 5));

describe("OrderedPipeline", () => {
  it("yields in submission order when jobs finish in reverse order", async () => {
    const c = controlled();
    const p = new OrderedPipeline(c.run, 8);
    const out: number[] = [];
    const done = (async () => {
      for await (const v of p.map([0, 1, 2, 3, 4, 5, 6, 7])) out.push(v);
    })();
    await tick();
    expect(c.started).toEqual([0, 1, 2, 3, 4, 5, 6, 7]); // all eight run at once
    for (let n = 7; n >= 0; n--) {
      c.waiting.get(n)!.resolve(n * 10);
      await tick();
      // nothing may come out before job 0 is done
      expect(out.length).toBe(n === 0 ? 8 : 0);
    }
    await done;
    expect(out).toEqual([0, 10, 20, 30, 40, 50, 60, 70]);
  });

  it("never pulls more than maxInFlight ahead of the consumer", async () => {
    let pulled = 0;
    async function* source() {
      for (let i = 0; i < 50; i++) {
        pulled++;
        yield i;
      }
    }
    const max = 4;
    const p = new OrderedPipeline(async (n: number) => {
      await new Promise((r) => setTimeout(r, (n * 7) % 5));
      return n;
    }, max);
    let received = 0;
    let widest = 0;
    for await (const v of p.map(source())) {
      expect(v).toBe(received);
      received++;
      expect(pulled).toBeLessThanOrEqual(received + max - 1);
      widest = Math.max(widest, pulled - received);
      await tick(); // a slow consumer: the source must wait for it
      expect(pulled).toBeLessThanOrEqual(received + max - 1);
    }
    expect(received).toBe(50);
    expect(widest).toBe(max - 1); // and it does run max jobs at once
  });

  it("fails as soon as any job fails, even while earlier jobs still run", async () => {
    const c = controlled();
    const p = new OrderedPipeline(c.run, 4);
    const it = p.map([0, 1, 2, 3]);
    const first = it.next();
    await tick();
    c.waiting.get(2)!.reject(new MigstreamError("CODEC", "bad chunk 2"));
    await expect(within(first, 1000, "pipeline")).rejects.toMatchObject({ code: "CODEC", message: "bad chunk 2" });
    // Jobs 0 and 1 never finish; the pipeline must not wait for them.
    expect(await it.next()).toEqual({ done: true, value: undefined });
  });

  it("fails while blocked on a slow source when an in-flight job fails", async () => {
    let closed = false;
    async function* source() {
      try {
        yield 0;
        await new Promise(() => {}); // never yields again
      } finally {
        closed = true;
      }
    }
    const p = new OrderedPipeline(async (n: number) => {
      throw new MigstreamError("CHECKSUM", `job ${n}`);
    }, 4);
    await expect(within(p.map(source()).next(), 1000, "pipeline")).rejects.toMatchObject({ code: "CHECKSUM" });
    expect(closed).toBe(false); // a pull still pending: not waited on (it would hang)
  });

  it("propagates a source error and closes the source on an early break", async () => {
    const p = new OrderedPipeline(async (n: number) => n, 3);
    async function* bad() {
      yield 1;
      throw new Error("source broke");
    }
    await expect(
      (async () => {
        for await (const _ of p.map(bad()));
      })(),
    ).rejects.toThrow("source broke");

    let closed = false;
    async function* endless() {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        closed = true;
      }
    }
    for await (const v of p.map(endless())) if (v === 5) break;
    expect(closed).toBe(true);
  });

  it("accepts sync iterables and turns a synchronous throw into a failure", async () => {
    const p = new OrderedPipeline((n: number): Promise<number> => {
      if (n === 2) throw new MigstreamError("USAGE", "sync throw");
      return Promise.resolve(n);
    }, 2);
    const out: number[] = [];
    await expect(
      (async () => {
        for await (const v of p.map([0, 1, 2, 3])) out.push(v);
      })(),
    ).rejects.toMatchObject({ code: "USAGE" });
    // Only results before the failed job may come out, in order.
    expect([[0], [0, 1]]).toContainEqual(out);
  });

  it("rejects a bad window size", () => {
    expect(() => new OrderedPipeline(async () => 0, 0)).toThrow(MigstreamError);
    expect(() => new OrderedPipeline(async () => 0, 1.5)).toThrow(/maxInFlight/);
  });
});
