// Real QEMU processes as the producer and consumer of their own live-migration
// stream, driven over QMP (JSON lines on a UNIX socket): shared by
// test/cli/qemu.test.ts (migstream as QEMU's exec: filter, both ends) and
// bench/qemu.mjs (the same filter timed against lz4 and cat). Plain JS so the
// bench runs it without a build.
//
// The guests are TCG machines with no disk and no devices (-nodefaults): the
// source is started, runs its firmware briefly and is stopped, so its
// migration ends with the source in `postmigrate` and the destination in
// `paused`. An optional file is placed in the source's guest RAM at reset
// (QEMU's generic `loader` device), so the stream carries known data and the
// destination's RAM can be read back (`pmemsave`) and compared with it.
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";

/** The QEMU binary the tests and the bench run. */
export const QEMU = process.env.MIGSTREAM_QEMU || "qemu-system-x86_64";
/** Where the loaded file goes in guest RAM (16 MiB: above the firmware's low memory). */
export const LOAD_ADDR = 0x1000000;
/** Longest wait for QEMU to start, for a QMP answer, or for a migration to settle, ms. */
export const QEMU_WAIT_MS = 30_000;

/** QEMU's version line, or null when it cannot be run. */
export function qemuVersion() {
  const r = spawnSync(QEMU, ["--version"], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.split("\n")[0].trim() : null;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A QMP connection: `cmd` sends one command and resolves with its `return` (rejects on `error`). */
class Qmp {
  #socket;
  #buf = "";
  #waiters = [];
  #closed = null;

  constructor(socket) {
    this.#socket = socket;
    socket.setEncoding("utf8");
    socket.on("data", (text) => {
      this.#buf += text;
      for (let nl; (nl = this.#buf.indexOf("\n")) >= 0; ) {
        const line = this.#buf.slice(0, nl).trim();
        this.#buf = this.#buf.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line);
        if (msg.event || msg.QMP) continue; // asynchronous events and the greeting
        this.#waiters.shift()?.(msg);
      }
    });
    const fail = (e) => {
      this.#closed ??= e ?? new Error("QMP connection closed");
      for (const w of this.#waiters.splice(0)) w({ error: { desc: this.#closed.message } });
    };
    socket.on("error", fail);
    socket.on("close", () => fail());
  }

  static async connect(path, deadline) {
    for (;;) {
      try {
        const s = await new Promise((resolve, reject) => {
          const s = net.connect(path);
          s.once("connect", () => (s.off("error", reject), resolve(s)));
          s.once("error", reject);
        });
        const q = new Qmp(s);
        await q.cmd("qmp_capabilities");
        return q;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`no QMP on ${path}: ${e.message}`);
        await sleep(20);
      }
    }
  }

  cmd(execute, args) {
    if (this.#closed) return Promise.reject(this.#closed);
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`QMP ${execute}: no answer within ${QEMU_WAIT_MS} ms`)),
        QEMU_WAIT_MS,
      );
      this.#waiters.push((msg) => {
        clearTimeout(t);
        if (msg.error) reject(new Error(`QMP ${execute}: ${msg.error.desc}`));
        else resolve(msg.return);
      });
      this.#socket.write(`${JSON.stringify(args ? { execute, arguments: args } : { execute })}\n`);
    });
  }

  close() {
    this.#socket.destroy();
  }
}

/**
 * Starts `qemu-system-x86_64` (TCG, `mem` MiB, no devices, stopped at start,
 * QMP on DIR/NAME.qmp). `load`: a file put into guest RAM at LOAD_ADDR;
 * `incoming`: the -incoming URI (a destination). Resolves once QMP answers.
 * The result's `stderr()` is what QEMU and its exec: children printed.
 */
export async function startQemu({ dir, name, mem = 64, load, incoming }) {
  const qmpPath = join(dir, `${name}.qmp`);
  const args = [
    "-machine",
    "pc,accel=tcg",
    "-m",
    String(mem),
    "-nographic",
    "-nodefaults",
    "-no-user-config",
    "-S",
    "-qmp",
    `unix:${qmpPath},server=on,wait=off`,
  ];
  if (load) args.push("-device", `loader,file=${load},addr=${LOAD_ADDR},force-raw=on`);
  if (incoming) args.push("-incoming", incoming);
  const child = spawn(QEMU, args, { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stdout.setEncoding("utf8").on("data", (t) => (err += t));
  child.stderr.setEncoding("utf8").on("data", (t) => (err += t));
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const deadline = Date.now() + QEMU_WAIT_MS;
  let qmp;
  try {
    while (!existsSync(qmpPath)) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${QEMU} did not start:\n${err}`);
      await sleep(10);
    }
    qmp = await Qmp.connect(qmpPath, deadline);
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  }
  return {
    child,
    qmp,
    exited,
    stderr: () => err,
    /** Resolves with the first match of `re` in QEMU's (and its children's) output. */
    async waitOutput(re, ms = QEMU_WAIT_MS) {
      const end = Date.now() + ms;
      for (;;) {
        const m = re.exec(err);
        if (m) return m;
        if (child.exitCode !== null || Date.now() > end) throw new Error(`${name}: no ${re} in QEMU's output:\n${err}`);
        await sleep(10);
      }
    },
    status: async () => (await qmp.cmd("query-status")).status,
    /** Ends QEMU (quit over QMP, then SIGKILL if it lingers). */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        await qmp.cmd("quit").catch(() => {});
        const t = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(t);
      }
      qmp.close();
    },
  };
}

/** Lets the (stopped-at-start) source run its firmware for `ms`, then stops it: a paused guest that ran. */
export async function runThenStop(vm, ms = 100) {
  await vm.qmp.cmd("cont");
  await sleep(ms);
  await vm.qmp.cmd("stop");
}

/**
 * Starts a migration to `uri` and waits until QEMU reports it completed or
 * failed (with exec: QEMU reports it only after the command exited). Resolves
 * with the final query-migrate answer and the wall time from the command, ms.
 */
export async function migrate(vm, uri) {
  const t0 = performance.now();
  await vm.qmp.cmd("migrate", { uri });
  const end = Date.now() + QEMU_WAIT_MS;
  for (;;) {
    const m = await vm.qmp.cmd("query-migrate");
    if (m.status === "completed" || m.status === "failed" || m.status === "cancelled")
      return { info: m, ms: performance.now() - t0 };
    if (Date.now() > end) throw new Error(`migration still ${m.status} after ${QEMU_WAIT_MS} ms`);
    await sleep(5);
  }
}

/**
 * Waits until an incoming destination leaves `inmigrate`: resolves with its
 * run state, or with `exited` and QEMU's exit code if it ended instead (a
 * failed incoming migration ends QEMU).
 */
export async function settle(vm) {
  const end = Date.now() + QEMU_WAIT_MS;
  for (;;) {
    if (vm.child.exitCode !== null || vm.child.signalCode !== null) return { status: "exited", exit: await vm.exited };
    const status = await vm.status().catch(() => null);
    if (status !== null && status !== "inmigrate") return { status };
    if (status === null) return { status: "exited", exit: await vm.exited };
    if (Date.now() > end) throw new Error(`destination still ${status} after ${QEMU_WAIT_MS} ms`);
    await sleep(5);
  }
}

/** Single-quotes `s` for /bin/sh (QEMU runs exec: commands with `sh -c`). */
export function sh(s) {
  return `'${String(s).replace(/'/g, `'\\''`)}'`;
}
