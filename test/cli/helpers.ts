// The CLI as a user runs it: `node dist/cli.js ...` processes (dist/ rebuilt
// with tsup when older than any source), simulated devices as `sim serve`
// processes, and small TCP tools (a byte-flipping / killing proxy).
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
} from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll } from "vitest";

const root = fileURLToPath(new URL("../../", import.meta.url));
const DIST = join(root, "dist");
/**
 * The CLI these tests run: a private copy of dist/ (taken by ensureCli), so a
 * rebuild by another suite (tsup empties dist/ first) cannot pull files from
 * under a running test. It lives under node_modules/ so that the package's
 * package.json and dependencies are still found above it.
 */
export let CLI = join(DIST, "cli.js");
const SNAPSHOTS = join(root, "node_modules/.cache/migstream-cli-tests");
/** Another test file may be building: wait at most this long. */
const BUILD_WAIT_MS = 120_000;
/** The same lock the other suites use, so that two files never run tsup at once. */
const LOCK = join(tmpdir(), "migstream-parallel-tsup.lock");
/** Bound on a process printing an expected line. */
export const LINE_WAIT_MS = 20_000;

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p));
    else if (e.name.endsWith(".ts")) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

function stale(): boolean {
  const built = existsSync(CLI) ? statSync(CLI).mtimeMs : 0;
  return newest(join(root, "src")) > built;
}

const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Rebuilds dist/ (tsup; the wasm is embedded in the sources) when dist/cli.js
 * is older than src/, then copies it for this test file (see CLI). Call it in
 * beforeAll and `releaseCli` in afterAll.
 */
export function ensureCli(): void {
  const until = Date.now() + BUILD_WAIT_MS;
  for (;;) {
    try {
      mkdirSync(LOCK);
    } catch {
      if (Date.now() > until) throw new Error(`${LOCK} held for ${BUILD_WAIT_MS} ms: run npm run build`);
      pause(200);
      continue;
    }
    try {
      if (stale()) {
        const r = spawnSync(process.execPath, [join(root, "node_modules/tsup/dist/cli-default.js")], {
          cwd: root,
          encoding: "utf8",
        });
        if (r.status !== 0) throw new Error(`tsup failed:\n${r.stdout}\n${r.stderr}`);
      }
      mkdirSync(SNAPSHOTS, { recursive: true });
      const dir = mkdtempSync(join(SNAPSHOTS, "dist-"));
      for (const f of readdirSync(DIST)) if (f.endsWith(".js")) copyFileSync(join(DIST, f), join(dir, f));
      CLI = join(dir, "cli.js");
    } finally {
      rmdirSync(LOCK);
    }
    return;
  }
}

/** Removes this file's copy of dist/. */
export function releaseCli(): void {
  if (CLI.startsWith(SNAPSHOTS)) rmSync(join(CLI, ".."), { recursive: true, force: true });
  CLI = join(DIST, "cli.js");
}

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  /** stdout as bytes (binary output). */
  bytes: Buffer;
  stderr: string;
}

/** A running `migstream` process. */
export interface Proc {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `re` in stdout+stderr (rejects if the process ends first). */
  waitFor(re: RegExp, ms?: number): Promise<RegExpExecArray>;
  done: Promise<Run>;
}

export function start(
  args: string[],
  opts: { env?: Record<string, string>; input?: Uint8Array; keepStdinOpen?: boolean } = {},
): Proc {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: root,
    env: { ...process.env, NO_COLOR: "", ...opts.env },
    stdio: [opts.input ? "pipe" : "ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  const raw: Buffer[] = [];
  const listeners = new Set<() => void>();
  const poke = () =>
    listeners.forEach((f) => {
      f();
    });
  child.stdout!.on("data", (c: Buffer) => (raw.push(c), (out += c.toString("latin1")), poke()));
  child.stderr!.setEncoding("utf8").on("data", (c: string) => ((err += c), poke()));
  if (opts.input && opts.keepStdinOpen) child.stdin!.write(opts.input);
  else if (opts.input) child.stdin!.end(opts.input);
  let ended = false;
  const done = new Promise<Run>((resolve) =>
    child.once("close", (code, signal) => {
      ended = true;
      poke();
      const bytes = Buffer.concat(raw);
      resolve({ code, signal, stdout: bytes.toString("utf8"), bytes, stderr: err });
    }),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    done,
    waitFor(re, ms = LINE_WAIT_MS) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = re.exec(out + err);
          if (m) {
            listeners.delete(check);
            clearTimeout(t);
            resolve(m);
          } else if (ended) {
            listeners.delete(check);
            clearTimeout(t);
            reject(new Error(`process ended without printing ${re}:\n${out}\n${err}`));
          }
        };
        const t = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`no ${re} within ${ms} ms:\n${out}\n${err}`));
        }, ms);
        listeners.add(check);
        check();
      });
    },
  };
}

/** Runs `migstream ...args` to its end. */
export function run(args: string[], opts: { env?: Record<string, string>; input?: Uint8Array } = {}): Promise<Run> {
  return start(args, opts).done;
}

export interface Sim {
  socket: string;
  initialDigest: string;
  proc: Proc;
  stop(): Promise<Run>;
}

/**
 * `base` flags with `extra` after them, each flag of `extra` replacing the
 * same flag in `base` (commands refuse a single-valued option given twice).
 */
export function withFlags(base: string[], extra: string[]): string[] {
  const given = new Set(extra.filter((a) => a.startsWith("--")));
  const kept: string[] = [];
  for (let i = 0; i < base.length; i++) {
    const valued = i + 1 < base.length && !base[i + 1].startsWith("--");
    if (!given.has(base[i])) kept.push(...base.slice(i, valued ? i + 2 : i + 1));
    if (valued) i++;
  }
  return [...kept, ...extra];
}

/** `migstream sim serve --socket DIR/NAME.sock ...args`, once listening. */
export async function sim(dir: string, name: string, args: string[]): Promise<Sim> {
  const socket = join(dir, `${name}.sock`);
  const proc = start(["sim", "serve", "--socket", socket, ...args]);
  const m = await proc.waitFor(/listening on .*digest ([0-9a-f]{16})/);
  return {
    socket,
    initialDigest: m[1],
    proc,
    stop: () => {
      if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill("SIGTERM");
      return proc.done;
    },
  };
}

export interface Digest {
  digest: string;
  deviceState: string;
}

export async function digest(s: Sim): Promise<Digest> {
  const r = await run(["sim", "digest", "--socket", s.socket, "--json"]);
  if (r.code !== 0) throw new Error(`sim digest failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Digest;
}

/** A temp dir, removed by the returned cleanup. */
export function tempDir(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), "migstream-cli-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * The hooks of a CLI suite: a private copy of the CLI and a temp dir for the
 * suite's files, both gone after it. Returns the dir's path, once the suite runs.
 */
export function cliSuite(): { dir(): string } {
  let tmp: ReturnType<typeof tempDir> | undefined;
  beforeAll(() => {
    ensureCli();
    tmp = tempDir();
  });
  afterAll(() => {
    tmp?.cleanup();
    releaseCli();
  });
  return { dir: () => tmp!.dir };
}

/** The port a `restore --listen tcp://127.0.0.1:0` printed. */
export async function listeningPort(p: Proc): Promise<number> {
  const m = await p.waitFor(/listening on tcp:\/\/127\.0\.0\.1:(\d+)/);
  return Number(m[1]);
}

export interface Proxy {
  port: number;
  /** Source bytes forwarded so far. */
  forwarded(): number;
  close(): Promise<void>;
}

/**
 * A TCP proxy in front of 127.0.0.1:`target`. `flipAt`: XOR the source byte at
 * that stream offset with 0x01. `cutAt`: after forwarding that many source
 * bytes, call `onCut` (e.g. kill the source) and end the destination side.
 * `swallowFin`: the source's end is not passed on. `record`: collects what the
 * source sent (a capture). Destination → source bytes (the hello, the ack)
 * pass unchanged.
 */
export async function proxy(
  target: number,
  o: { flipAt?: number; cutAt?: number; onCut?: () => void; swallowFin?: boolean; record?: Buffer[] } = {},
): Promise<Proxy> {
  let total = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (src) => {
    const dst = net.connect({ host: "127.0.0.1", port: target, allowHalfOpen: true });
    sockets.add(src).add(dst);
    src.on("error", () => dst.destroy());
    dst.on("error", () => src.destroy());
    let cut = false;
    src.on("data", (c: Buffer) => {
      if (cut) return;
      let piece = c;
      if (o.cutAt !== undefined && total + piece.length >= o.cutAt) {
        piece = piece.subarray(0, o.cutAt - total);
        cut = true;
      }
      if (o.flipAt !== undefined && o.flipAt >= total && o.flipAt < total + piece.length) {
        piece = Buffer.from(piece);
        piece[o.flipAt - total] ^= 0x01;
      }
      total += piece.length;
      o.record?.push(Buffer.from(piece));
      if (!dst.write(piece)) {
        src.pause();
        dst.once("drain", () => src.resume());
      }
      if (cut) {
        o.onCut?.();
        src.destroy();
        dst.end();
      }
    });
    // swallowFin: a middlebox that does not pass the source's half-close on (the destination never sees its end).
    src.on("end", () => o.swallowFin || dst.end());
    dst.on("data", (c: Buffer) => src.destroyed || src.write(c));
    dst.on("end", () => src.destroyed || src.end());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    forwarded: () => total,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Ends of an ack line sent after the destination's 40-byte hello (or instead of it, when busy). */
export interface RawSource {
  socket: net.Socket;
  /** The hello's bytes, or null when the destination answered with an ack at once. */
  hello: Promise<Buffer | null>;
  /** The ack line, parsed. */
  ack: Promise<Record<string, unknown>>;
  /** Everything received, once the connection closed. */
  closed: Promise<Buffer>;
}

/** A raw source: connects to 127.0.0.1:port and separates the destination's hello from its ack line. */
export function rawSource(port: number): RawSource {
  const socket = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true });
  socket.on("error", () => {});
  let got = Buffer.alloc(0);
  let helloDone: (b: Buffer | null) => void = () => {};
  let ackDone: (a: Record<string, unknown>) => void = () => {};
  const hello = new Promise<Buffer | null>((r) => (helloDone = r));
  const ack = new Promise<Record<string, unknown>>((r) => (ackDone = r));
  const closed = new Promise<Buffer>((r) => socket.once("close", () => r(got)));
  socket.on("data", (c: Buffer) => {
    got = Buffer.concat([got, c]);
    const start = got[0] === 0x7b ? 0 : 40;
    if (start === 40 && got.length >= 40) helloDone(got.subarray(0, 40));
    if (start === 0) helloDone(null);
    const nl = got.indexOf(0x0a, start);
    if (got.length > start && got[start] === 0x7b && nl > 0)
      ackDone(JSON.parse(got.subarray(start, nl).toString("utf8")));
  });
  return { socket, hello, ack, closed };
}

/** A loopback port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** The pids whose parent is `pid` (from /proc). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Whether process `pid` still exists (a zombie counts as gone). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Polls `cond` every 50 ms for up to `ms`. */
export async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}
