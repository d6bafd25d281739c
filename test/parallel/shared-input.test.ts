// A SharedArrayBuffer input is read in place and must come back unchanged
// (pool.ts: "leave it unchanged until the job settles"): coding it inline or on
// workers never writes the payload over the caller's bytes, so coding the same
// chunks again gives the same result.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WorkerPool } from "../../dist/index.js";
import { ensureDist } from "./dist.js";

beforeAll(ensureDist);

const image = new Uint8Array(new SharedArrayBuffer(1 << 20));
for (let i = 0; i < image.length; i++) image[i] = i % 8192 < 4096 ? (i * 7) % 13 : 0;
const before = image.slice();
const chunks = Array.from({ length: 4 }, (_, k) => image.subarray(k << 18, (k + 1) << 18));
const pools: WorkerPool[] = [];
afterAll(() => Promise.all(pools.map((p) => p.close())));

describe("shared input", () => {
  for (const threads of [1, 2]) {
    it(`${threads === 1 ? "inline" : "workers"}: LZ4 leaves a SharedArrayBuffer input as it was`, async () => {
      const pool = new WorkerPool({ threads });
      pools.push(pool);
      const run = async () => {
        const out: string[] = [];
        for await (const c of pool.encodeOrdered(chunks, { codec: "lz4" }))
          out.push(`${c.codec}:${c.payload.length}:${c.hash}`);
        return out;
      };
      const first = await run();
      expect(first.every((c) => c.startsWith("2:"))).toBe(true); // LZ4 for every chunk
      expect(Buffer.compare(image, before)).toBe(0);
      expect(await run()).toEqual(first);
    });
  }
});
