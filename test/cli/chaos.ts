// The chaos harness (test/cli/chaos.test.ts; more seeds with `npm run
// chaos`): per seed, a fresh source and destination (`sim serve
// --on-disconnect stay`: end states are the driver's doing), `restore
// --listen` and `save --to` as processes, and between them a loopback proxy
// that, in one direction, delays, splits into tiny writes, stalls for good,
// or cuts the connection at a byte drawn from the seed; the stream unkeyed,
// keyed or sealed (seed mod 3). Each run is then classified from both
// devices' states and digests and both exit codes.
import { writeFileSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { digest, listeningPort, type Sim, sim, start } from "./helpers.js";

/** The idle, ack and connect timeouts every chaos run gives both commands, ms (the handshake deadline stays at its default). */
export const CHAOS_TIMEOUT_MS = 2000;
/** A run ends within this (migration time plus the timeouts that can follow one another), ms. */
export const CHAOS_RUN_BOUND_MS = 25_000;

export type FaultKind = "none" | "delay" | "split" | "stall" | "cut";
export type Direction = "to-destination" | "to-source";

export interface Fault {
  kind: FaultKind;
  direction: Direction;
  /** The byte (of that direction's traffic) where the fault begins. */
  at: number;
  /** delay: ms per piece; split: most bytes per write. */
  amount: number;
}

/** Valid ends of a run (anything else fails the test). */
export type Outcome =
  | "migrated" // destination RUNNING with the source's digest; source stopped
  | "migrated, answer lost" // the same, but the source never heard: its driver put it back in RUNNING too
  | "failed, destination reset" // destination reset and stopped (none of the partial state); source RUNNING with its state
  | "failed, destination untouched"; // destination never entered (its own state, as it was); source RUNNING with its state

/** How the stream is protected in a run: seed mod 3 picks none, HMAC (--key-file) or sealed (--encrypt). */
export type Protection = "none" | "key" | "encrypt";

export interface ChaosResult {
  seed: number;
  fault: Fault;
  protection: Protection;
  outcome: Outcome | null;
  /** Why the run is not one of the valid outcomes, or exceeded its bound. */
  violation: string | null;
  ms: number;
  saveCode: number | null;
  restoreCode: number | null;
}

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The fault a seed draws. `streamBytes`: about how long the stream is. */
export function faultFor(seed: number, streamBytes: number): Fault {
  const r = prng(seed);
  const kinds: FaultKind[] = ["none", "delay", "split", "stall", "stall", "cut", "cut", "cut"];
  const kind = kinds[Math.floor(r() * kinds.length)];
  const direction: Direction = r() < 0.75 ? "to-destination" : "to-source";
  // Toward the source travel the 40-byte hello and the answer line (~120 bytes).
  // A quarter of the faults toward the destination fall in its first 512 bytes (the handshake).
  const span = direction === "to-source" ? 180 : r() < 0.25 ? 512 : streamBytes;
  const at = Math.floor(r() * span);
  const amount = kind === "delay" ? 1 + Math.floor(r() * 20) : 1 + Math.floor(r() * 64);
  return { kind, direction, at, amount };
}

/** A proxy in front of 127.0.0.1:target applying `f` (one connection). */
async function chaosProxy(target: number, f: Fault): Promise<{ port: number; close(): void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (src) => {
    const dst = net.connect({ host: "127.0.0.1", port: target, allowHalfOpen: true });
    sockets.add(src).add(dst);
    const cut = () => {
      src.destroy();
      dst.destroy();
    };
    src.on("error", cut);
    dst.on("error", cut);
    const pipe = (from: net.Socket, to: net.Socket, faulty: boolean) => {
      let seen = 0;
      let queue = Promise.resolve();
      let stalled = false;
      from.on("data", (c: Buffer) => {
        if (stalled) return;
        const start = seen;
        seen += c.length;
        if (!faulty || f.kind === "none" || seen <= f.at) return void to.write(c);
        // The fault starts inside this piece: what lies before `at` passes as it is.
        const head = c.subarray(0, Math.max(0, f.at - start));
        const tail = c.subarray(head.length);
        if (head.length) to.write(head);
        if (f.kind === "cut") return cut();
        if (f.kind === "stall") {
          stalled = true; // held for good: only the peers' own timeouts end this
          return;
        }
        from.pause();
        queue = queue.then(async () => {
          if (f.kind === "delay") {
            await new Promise((res) => setTimeout(res, f.amount));
            to.write(tail);
          } else {
            for (let i = 0; i < tail.length; ) {
              const n = Math.min(tail.length - i, f.amount);
              await new Promise<void>((res) => to.write(tail.subarray(i, i + n), () => res()));
              i += n;
            }
          }
          from.resume();
        });
      });
      from.on("end", () => void queue.then(() => stalled || to.end()));
    };
    pipe(src, dst, f.direction === "to-destination");
    pipe(dst, src, f.direction === "to-source");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** One seeded run in `dir`. */
export async function chaosRun(dir: string, seed: number): Promise<ChaosResult> {
  const timeout = String(CHAOS_TIMEOUT_MS);
  const common = ["--state-size", "2MiB", "--transaction-size", "64KiB", "--on-disconnect", "stay"];
  const [src, dst]: Sim[] = await Promise.all([
    sim(dir, `c${seed}-src`, [...common, "--seed", String(seed + 1)]),
    sim(dir, `c${seed}-dst`, [...common, "--empty"]),
  ]);
  const fault = faultFor(seed, 2 << 20);
  const protection: Protection = (["none", "key", "encrypt"] as const)[seed % 3];
  // One key file per seed: seeds run at once in the same directory, and a shared file is
  // truncated by one seed's write while another's process reads it (a 0-byte key, USAGE).
  const keyFile = join(dir, `chaos-${seed}.key`);
  writeFileSync(keyFile, "c3".repeat(32));
  const key = protection === "none" ? [] : ["--key-file", keyFile];
  const seal = protection === "encrypt" ? ["--encrypt"] : [];
  const t0 = Date.now();
  let proxy: { port: number; close(): void } | undefined;
  try {
    const restore = start([
      "restore",
      "--device",
      `vfio-user:${dst.socket}`,
      "--listen",
      "tcp://127.0.0.1:0",
      "--attempts",
      "1",
      "--timeout",
      timeout,
      ...key,
    ]);
    const port = await listeningPort(restore);
    proxy = await chaosProxy(port, fault);
    const save = start([
      "save",
      "--device",
      `vfio-user:${src.socket}`,
      "--to",
      `tcp://127.0.0.1:${proxy.port}`,
      "--codec",
      "raw",
      "--timeout",
      timeout,
      "--connect-timeout",
      timeout,
      ...key,
      ...seal,
    ]);
    // Nothing may wait past its timeouts: both end well within the bound, or the run is a violation.
    const bound = new Promise<"late">((r) => setTimeout(() => r("late"), CHAOS_RUN_BOUND_MS).unref());
    const ended = await Promise.race([Promise.all([save.done, restore.done]), bound]);
    const ms = Date.now() - t0;
    if (ended === "late") {
      const still = [
        save.child.exitCode === null && save.child.signalCode === null ? "save" : "",
        restore.child.exitCode === null && restore.child.signalCode === null ? "restore" : "",
      ].filter(Boolean);
      save.child.kill("SIGKILL");
      restore.child.kill("SIGKILL");
      const violation = `${still.join(" and ")} still running after ${CHAOS_RUN_BOUND_MS} ms\nsave: ${save.stderr().trim()}\nrestore: ${restore.stderr().trim()}`;
      return { seed, fault, protection, outcome: null, violation, ms, saveCode: null, restoreCode: null };
    }
    const [s, r] = ended;
    proxy.close();
    const [a, b] = await Promise.all([digest(src), digest(dst)]);
    const res = { seed, fault, protection, ms, saveCode: s.code, restoreCode: r.code };
    const srcKept = a.digest === src.initialDigest; // no dirtying: the source's state is its initial one throughout
    let outcome: Outcome | null = null;
    if (b.deviceState === "RUNNING" && b.digest === a.digest && srcKept) {
      if (a.deviceState === "STOP" && s.code === 0 && r.code === 0) outcome = "migrated";
      else if (a.deviceState === "RUNNING" && s.code !== 0 && r.code === 0) outcome = "migrated, answer lost";
    } else if (a.deviceState === "RUNNING" && srcKept && s.code !== 0 && r.code !== 0) {
      if (b.deviceState === "STOP" && b.digest === dst.initialDigest) outcome = "failed, destination reset";
      else if (b.deviceState === "RUNNING" && b.digest === dst.initialDigest && !/had been written/.test(r.stderr))
        outcome = "failed, destination untouched";
    }
    const violation = outcome
      ? null
      : `source ${a.deviceState} ${a.digest} (initial ${src.initialDigest}, save exit ${s.code}), destination ${b.deviceState} ${b.digest} (initial ${dst.initialDigest}, restore exit ${r.code})\nsave: ${s.stderr.trim()}\nrestore: ${r.stderr.trim()}`;
    return { ...res, outcome, violation };
  } finally {
    proxy?.close();
    await Promise.all([src.stop(), dst.stop()]);
  }
}
