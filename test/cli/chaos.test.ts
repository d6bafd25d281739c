// The chaos test: seeded runs of `save --to` → a faulty loopback proxy →
// `restore --listen` (see chaos.ts). Every run must end as a valid outcome —
// the destination RUNNING with the source's exact digest, or the destination
// not holding any of the stream (reset and stopped, or never entered) and the
// source RUNNING with its state — with both processes done within the bound.
// CHAOS_SEEDS=N (default 13: seeds 1..13 draw every kind of fault, in both
// directions, in the handshake and mid-stream) runs seeds CHAOS_FIRST..
// (default 1), CHAOS_PARALLEL at a time (default 3); `npm run chaos` runs
// 200. The outcome counts are printed at the end.
import { afterAll, describe, expect, it } from "vitest";
import { type ChaosResult, chaosRun } from "./chaos.js";
import { cliSuite } from "./helpers.js";

const SEEDS = Number(process.env.CHAOS_SEEDS ?? 13);
const FIRST = Number(process.env.CHAOS_FIRST ?? 1);
const PARALLEL = Number(process.env.CHAOS_PARALLEL ?? 3);

/** At most PARALLEL runs at once (each is four processes and a proxy). */
let running = 0;
const queue: (() => void)[] = [];
async function slot<T>(f: () => Promise<T>): Promise<T> {
  while (running >= PARALLEL) await new Promise<void>((r) => queue.push(r));
  running++;
  try {
    return await f();
  } finally {
    running--;
    queue.shift()?.();
  }
}
const results: ChaosResult[] = [];
const suite = cliSuite();

afterAll(() => {
  if (results.length === 0) return;
  const counts = new Map<string, number>();
  for (const r of results) {
    const k = r.outcome ?? "VIOLATION";
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  const kinds = new Map<string, number>();
  for (const r of results)
    kinds.set(`${r.fault.kind} ${r.fault.direction}`, (kinds.get(`${r.fault.kind} ${r.fault.direction}`) ?? 0) + 1);
  const prot = new Map<string, number>();
  for (const r of results) prot.set(r.protection, (prot.get(r.protection) ?? 0) + 1);
  const ms = results.map((r) => r.ms).sort((a, b) => a - b);
  console.log(
    `chaos: ${results.length} runs (seeds ${FIRST}..${FIRST + SEEDS - 1}); outcomes: ${[...counts].map(([k, n]) => `${k} ${n}`).join(", ")}; ` +
      `faults: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(", ")}; streams: ${[...prot].map(([k, n]) => `${k} ${n}`).join(", ")}; run time median ${ms[ms.length >> 1]} ms, max ${ms.at(-1)} ms`,
  );
});

describe.concurrent("chaos: faults on the wire between save --to and restore --listen", () => {
  for (let seed = FIRST; seed < FIRST + SEEDS; seed++) {
    it(`seed ${seed}`, async () => {
      const r = await slot(() => chaosRun(suite.dir(), seed));
      results.push(r);
      expect(r.violation, `seed ${seed}, ${r.protection}, fault ${JSON.stringify(r.fault)}`).toBeNull();
    }, 600_000);
  }
});
