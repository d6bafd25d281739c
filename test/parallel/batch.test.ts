// The pool's Batcher on its own: held chunks (a producer that gives one per
// task) gather across tasks until the batch is full or flush() is called,
// and go out on their own after HOLD_MS at the latest, never stuck; chunks
// that are not held still go out at the end of their task; a lent buffer
// taken back (reclaim) is lent again.
import { describe, expect, it } from "vitest";
import { MigstreamError } from "../../src/errors.js";
import { BATCH_MAX_CHUNKS, Batcher, HOLD_MS } from "../../src/parallel/batch.js";
import type { BatchResult } from "../../src/parallel/jobs.js";

interface Span {
  offset: number;
  length: number;
}

/** A batcher whose sends are recorded (spans per batch) and answered at once with each chunk's first byte. */
function recording() {
  const sent: number[][] = [];
  const b = new Batcher<Span, number>(
    BATCH_MAX_CHUNKS,
    async (buffer, spans) => {
      sent.push(spans.map((s) => buffer[s.offset]));
      return {
        buffer,
        items: spans.map(() => ({ codec: 0, level: 0, length: 1, hash: 0n })),
      } as unknown as BatchResult;
    },
    (r, _i, span) => r.buffer[span.offset],
  );
  const add = (v: number, hold: boolean) =>
    b.add(
      16,
      "k",
      (offset) => ({ offset, length: 16 }),
      (into) => into.fill(v),
      () => undefined,
      hold,
    );
  return { b, sent, add };
}

const nextTask = () => new Promise((r) => setImmediate(r));

describe("Batcher", () => {
  it("held chunks gather across tasks and go out when the batch is full", async () => {
    const { sent, add } = recording();
    const got: Promise<number>[] = [];
    for (let i = 0; i < BATCH_MAX_CHUNKS; i++) {
      got.push(add(i + 1, true));
      await nextTask();
      if (i < BATCH_MAX_CHUNKS - 1) expect(sent.length).toBe(0);
    }
    expect(sent).toEqual([Array.from({ length: BATCH_MAX_CHUNKS }, (_, i) => i + 1)]);
    expect(await Promise.all(got)).toEqual(Array.from({ length: BATCH_MAX_CHUNKS }, (_, i) => i + 1));
  });

  it("flush() sends held chunks at once", async () => {
    const { b, sent, add } = recording();
    const one = add(7, true);
    const two = add(8, true);
    await nextTask();
    expect(sent.length).toBe(0);
    b.flush();
    expect(sent).toEqual([[7, 8]]);
    expect([await one, await two]).toEqual([7, 8]);
  });

  it("a held chunk nobody flushes goes out on its own (after HOLD_MS), never stuck", async () => {
    const { sent, add } = recording();
    const one = add(3, true);
    await nextTask();
    expect(sent.length).toBe(0);
    expect(await one).toBe(3);
    expect(sent).toEqual([[3]]);
    expect(HOLD_MS).toBeGreaterThan(0);
  });

  it("a chunk that is not held still goes out at the end of its task, with the held ones before it", async () => {
    const { sent, add } = recording();
    const held = add(1, true);
    await nextTask();
    const plain = add(2, false);
    await nextTask();
    expect(sent).toEqual([[1, 2]]);
    expect([await held, await plain]).toEqual([1, 2]);
  });

  it("reclaim takes a lent buffer back for lending again, and refuses one it did not lend", () => {
    const { b } = recording();
    const v = b.lend(100);
    b.reclaim(v);
    expect(b.lend(100).buffer).toBe(v.buffer);
    expect(() => b.reclaim(new Uint8Array(100))).toThrow(MigstreamError);
  });
});
