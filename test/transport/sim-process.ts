// Helpers for cross-process tests: `migstream sim serve` processes from the
// built dist/cli.js (rebuilt when older than the sources it bundles), `sim
// digest` runs, and save/resume over vfio-user into an in-memory item list.
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ResumeItem, ResumeSummary, SaveSummary } from "../../src/protocol/index.js";
import { type ResumeOptions, resume, type SaveOptions, save, stateName } from "../../src/protocol/index.js";
import { connectVfioUser } from "../../src/transport/vfio-user/client.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
export const CLI = `${root}dist/cli.js`;
/** Sources bundled into dist/cli.js that this suite depends on. */
const SOURCES = [
  "src/cli",
  "src/cli/commands",
  "src/transport",
  "src/transport/sim",
  "src/transport/vfio-user",
  "src/device",
  "src/protocol",
  "src/protocol/v2",
  "src/migrate",
  "src/format",
];
/** Another test file may be building: wait at most this long. */
const BUILD_WAIT_MS = 120_000;
/** Bound on a server process becoming ready. */
const READY_MS = 15_000;
/** Same lock as test/parallel/dist.ts, so two files never run tsup at once. */
const LOCK = join(tmpdir(), "migstream-parallel-tsup.lock");

function newest(dir: string): number {
  const d = `${root}${dir}/`;
  return Math.max(
    0,
    ...readdirSync(d)
      .filter((f) => f.endsWith(".ts"))
      .map((f) => statSync(d + f).mtimeMs),
  );
}

function stale(): boolean {
  const built = existsSync(CLI) ? statSync(CLI).mtimeMs : 0;
  return SOURCES.some((d) => newest(d) > built);
}

const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Rebuilds dist/ (tsup) when dist/cli.js is missing or older than its sources. */
export function ensureCli(): void {
  const until = Date.now() + BUILD_WAIT_MS;
  while (stale()) {
    try {
      mkdirSync(LOCK);
    } catch {
      if (Date.now() > until) throw new Error(`dist/cli.js still stale and ${LOCK} held: run npx tsup`);
      pause(200);
      continue;
    }
    try {
      const r = spawnSync(process.execPath, [`${root}node_modules/tsup/dist/cli-default.js`], {
        cwd: root,
        encoding: "utf8",
      });
      if (r.status !== 0) throw new Error(`tsup failed:\n${r.stdout}\n${r.stderr}`);
    } finally {
      rmdirSync(LOCK);
    }
    return;
  }
}

export interface ServerProc {
  path: string;
  child: ChildProcess;
  /** The digest the server printed when it started (its initial state). */
  initialDigest: string;
  stderr(): string;
  /** A `--variant libvfio-user` server ends with its one client: the state and digest it printed then. */
  exitReport(): Promise<{ deviceState: string; digest: string }>;
  /** Sends `signal` and resolves with how the process ended. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `migstream sim serve --socket PATH ...args` and waits for its listening line. */
export function startServer(path: string, args: string[] = []): Promise<ServerProc> {
  const child = spawn(process.execPath, [CLI, "sim", "serve", "--socket", path, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr!.on("data", (c) => (err += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return new Promise<ServerProc>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`sim serve not ready within ${READY_MS} ms: ${err}`));
    }, READY_MS);
    child.stdout!.on("data", (c) => {
      out += c;
      const m = /listening on .* digest ([0-9a-f]{16})/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      resolve({
        path,
        child,
        initialDigest: m[1],
        stderr: () => err,
        async exitReport() {
          const how = await exited;
          const r = /the client left; exiting \(device (.+), digest ([0-9a-f]{16})\)/.exec(out);
          if (!r || how.code !== 0)
            throw new Error(`sim serve ended (${how.code ?? how.signal}) without its exit report: ${out}${err}`);
          return { deviceState: r[1], digest: r[2] };
        },
        stop(signal = "SIGTERM") {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          return exited;
        },
      });
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`sim serve exited (${code ?? signal}) before listening: ${err.trim()}`));
    });
  });
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `node dist/cli.js ...args`. */
export function cli(args: string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { encoding: "utf8" }, (e, stdout, stderr) => {
      resolve({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

export interface DigestReport {
  digest: string;
  deviceState: string;
  migrationRegion: number;
}

/** `migstream sim digest --socket PATH --json`. */
export async function digestCli(path: string): Promise<DigestReport> {
  const r = await cli(["sim", "digest", "--socket", path, "--json"]);
  if (r.code !== 0) throw new Error(`sim digest failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as DigestReport;
}

/** The same report read in this process (what `sim digest` does, without a process per call). */
export async function digestOf(path: string): Promise<DigestReport> {
  const dev = await connectVfioUser(path, { timeoutMs: 10_000 });
  try {
    const digest = BigInt.asUintN(64, await dev.stateDigest())
      .toString(16)
      .padStart(16, "0");
    const b = await dev.read(0, 4);
    return {
      digest,
      deviceState: stateName(new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true)),
      migrationRegion: dev.index,
    };
  } finally {
    await dev.close();
  }
}

/** Saves the device at `path` over vfio-user into a list of resume items (copies of each transaction). */
export async function saveOver(
  path: string,
  options: SaveOptions = {},
): Promise<{ items: ResumeItem[]; summary: SaveSummary }> {
  const items: ResumeItem[] = [];
  const dev = await connectVfioUser(path, { timeoutMs: 10_000 });
  try {
    const summary = await save(
      dev,
      {
        phase: (phase, iteration) => void items.push({ kind: "phase", phase, iteration }),
        transaction: (data) => void items.push({ kind: "transaction", data: data.slice() }),
      },
      options,
    );
    items.push({ kind: "verified" });
    return { items, summary };
  } finally {
    await dev.close();
  }
}

/** Resumes the device at `path` over vfio-user from `items`. */
export async function resumeOver(
  path: string,
  items: ResumeItem[],
  options: ResumeOptions = {},
): Promise<ResumeSummary> {
  const dev = await connectVfioUser(path, { timeoutMs: 10_000 });
  try {
    return await resume(dev, items, options);
  } finally {
    await dev.close();
  }
}

/** Settles with the rejection of `p` (fails if `p` resolves). */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected a rejection");
}
