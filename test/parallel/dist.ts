// The pool loads its worker from the built dist/worker.js, so these tests run
// against dist/. Rebuilds it (tsup) when missing or older than src/parallel.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
/** Test files run in parallel: one builds, the others wait for it (at most this long). */
const BUILD_WAIT_MS = 120_000;

function stale(): boolean {
  const worker = `${root}dist/worker.js`;
  const built = existsSync(worker) ? statSync(worker).mtimeMs : 0;
  const src = `${root}src/parallel/`;
  return readdirSync(src).some((f) => statSync(src + f).mtimeMs > built);
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
      const r = spawnSync(process.execPath, [`${root}node_modules/tsup/dist/cli-default.js`], { cwd: root, encoding: "utf8" });
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

/** Deterministic PRNG (xorshift32). */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}
