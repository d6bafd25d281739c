// The pool loads its worker from the built dist/worker.js, so these tests run
// against dist/. Rebuilds it (tsup) when missing or older than any source.

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll } from "vitest";

const root = fileURLToPath(new URL("../../", import.meta.url));
/** Test files run in parallel: one builds, the others wait for it (at most this long). */
const BUILD_WAIT_MS = 120_000;

function stale(): boolean {
  const worker = `${root}dist/worker.js`;
  const built = existsSync(worker) ? statSync(worker).mtimeMs : 0;
  const src = `${root}src/`;
  return readdirSync(src, { recursive: true, encoding: "utf8" }).some(
    (f) => f.endsWith(".ts") && statSync(src + f).mtimeMs > built,
  );
}

const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

export function ensureDist(): void {
  const lock = join(tmpdir(), "migstream-parallel-tsup.lock");
  const until = Date.now() + BUILD_WAIT_MS;
  while (stale()) {
    try {
      mkdirSync(lock);
    } catch {
      if (Date.now() > until) throw new Error(`dist/ still stale and ${lock} held: run npx tsup`);
      pause(200); // another test file is building
      continue;
    }
    try {
      const r = spawnSync(process.execPath, [`${root}node_modules/tsup/dist/cli-default.js`], {
        cwd: root,
        encoding: "utf8",
      });
      if (r.status !== 0) throw new Error(`tsup failed:\n${r.stdout}\n${r.stderr}`);
    } finally {
      rmdirSync(lock);
    }
    return; // built once; a source dated in the future must not loop
  }
}

/** Rejects with a test failure if `p` does not settle within `ms` (a hang is a bug). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hang: ${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([p, hang]).finally(() => clearTimeout(timer));
}

/** Deterministic PRNG (xorshift32), the one the format suites use. */
export { prng as rng } from "../format/helpers.js";

/** The worker pools the pipeline suites share: plain workers, caller-runs, and fault injection. */
export interface TestPools<P> {
  workers: P;
  caller: P;
  faulty: P;
}

/**
 * Starts the three pools before the suite's tests (building dist/ if needed,
 * then `ready`) and closes them after. Read the fields inside tests only.
 */
export function usePools<P extends { start(): Promise<void>; close(): Promise<void> }>(
  Pool: new (o: { threads: number; callerRuns?: boolean; faultInjection?: boolean }) => P,
  ready: () => Promise<void>,
): TestPools<P> {
  const pools = {} as TestPools<P>;
  beforeAll(async () => {
    ensureDist();
    await ready();
    pools.workers = new Pool({ threads: 2 });
    pools.caller = new Pool({ threads: 2, callerRuns: true });
    pools.faulty = new Pool({ threads: 2, faultInjection: true });
    await Promise.all([pools.workers.start(), pools.caller.start(), pools.faulty.start()]);
  });
  afterAll(async () => {
    await Promise.all([pools.workers?.close(), pools.caller?.close(), pools.faulty?.close()]);
  });
  return pools;
}
