// Simulated devices for the demo, each behind its own vfio-user socket:
// `migstream sim serve` child processes under Node; under Deno, servers in this
// process (a Deno child would need --allow-run and permissions of its own),
// reached over the same real sockets by the same client. Their digests are
// read over vfio-user too (`migstream sim digest`, or its function in process).
// A child holds a pipe from us as its stdin and stops when it ends
// (--exit-with-stdin): if we die, even by SIGKILL, the kernel closes the pipe,
// the child stops and removes its socket file, and nothing is left behind.
import { execFile, spawn } from "node:child_process";
import { MigstreamError } from "../errors.js";
import { simDeviceOptions, simMigrationOptions, simProtocol } from "../transport/sim/options.js";
import { serveSim, serveSimV2 } from "../transport/sim/serve.js";
import { readSimDigest } from "./commands/sim-digest.js";
import { hex64 } from "./units.js";

/** Bound on a server becoming ready (state generation included), ms. */
export const SIM_READY_MS = 30_000;
/** Bound on a server stopping after SIGTERM, ms. */
export const SIM_STOP_MS = 5_000;
/** Bound on one `sim digest` run, ms. */
export const SIM_DIGEST_MS = 15_000;

const LISTENING = /listening on .*digest ([0-9a-f]{16})/;

/** The `sim serve` flag of each `sim:` key (see transport/sim/options.ts). */
const FLAGS: Record<string, string> = {
  state: "--state-size",
  seed: "--seed",
  txn: "--transaction-size",
  dirty: "--dirty-rate",
  variant: "--variant",
  empty: "--empty",
  protocol: "--protocol",
};

export interface SimDigest {
  digest: string;
  deviceState: string;
}

export interface SimProc {
  socket: string;
  /** The digest the server printed at start (its initial state). */
  initialDigest: string;
  /** The device's digest and device_state now, read over vfio-user. */
  digest(): Promise<SimDigest>;
  /** Stops serving (a child: SIGTERM, then SIGKILL if it lingers). */
  stop(): Promise<void>;
}

/** Serves a simulated device with `sim:` settings on `socket`: a child process under Node, this process under Deno. */
export function startSim(cli: string, socket: string, kv: Record<string, string>): Promise<SimProc> {
  return "Deno" in globalThis ? startSimHere(socket, kv) : startSimProcess(cli, socket, kv);
}

/** `sim serve` flags for `sim:` settings. */
export function simServeArgs(kv: Record<string, string>): string[] {
  return Object.entries(kv).flatMap(([k, v]) => {
    const flag = FLAGS[k];
    if (!flag) throw new MigstreamError("USAGE", `sim serve has no flag for '${k}'`);
    return k === "empty" ? (v === "1" ? [flag] : []) : [flag, v];
  });
}

async function startSimHere(socket: string, kv: Record<string, string>): Promise<SimProc> {
  const { server, device } =
    simProtocol(kv) === 2
      ? await serveSimV2(socket, { device: simMigrationOptions(kv) })
      : await serveSim(socket, { device: simDeviceOptions(kv) });
  return {
    socket,
    initialDigest: hex64(device.digest()),
    digest: () => readSimDigest(socket, SIM_DIGEST_MS),
    stop: () => server.close(),
  };
}

/** Starts `cli sim serve --socket PATH ...` and waits for its listening line. */
function startSimProcess(cli: string, socket: string, kv: Record<string, string>): Promise<SimProc> {
  const child = spawn(
    process.execPath,
    [cli, "sim", "serve", "--socket", socket, "--exit-with-stdin", ...simServeArgs(kv)],
    { stdio: ["pipe", "pipe", "pipe"] },
  );
  child.stdin!.on("error", () => {}); // nothing is written; a child gone first is noticed through "exit"
  let out = "";
  let err = "";
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (err = (err + c).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const t = setTimeout(() => child.kill("SIGKILL"), SIM_STOP_MS);
    await exited;
    clearTimeout(t);
  };
  return new Promise<SimProc>((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(
        new MigstreamError(
          "DEVICE",
          `sim serve --socket ${socket}: ${why}${err ? `: ${err.trim().split("\n").at(-1)}` : ""}`,
        ),
      );
    };
    const timer = setTimeout(() => fail(`not ready within ${SIM_READY_MS} ms`), SIM_READY_MS);
    child.once("error", (e) => fail(e.message));
    const early = (code: number | null, sig: NodeJS.Signals | null) => fail(`exited (${sig ?? code}) before listening`);
    child.once("exit", early);
    child.stdout!.setEncoding("utf8").on("data", (c: string) => {
      out += c;
      const m = LISTENING.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.off("exit", early);
      child.stdout!.removeAllListeners("data");
      child.stdout!.resume();
      resolve({ socket, initialDigest: m[1], digest: () => simDigestProcess(cli, socket), stop });
    });
  });
}

/** Runs `cli sim digest --socket PATH --json`. */
function simDigestProcess(cli: string, socket: string): Promise<SimDigest> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [cli, "sim", "digest", "--socket", socket, "--json"],
      { timeout: SIM_DIGEST_MS },
      (e, stdout, stderr) => {
        if (e)
          return reject(
            new MigstreamError("DEVICE", `sim digest --socket ${socket} failed: ${(stderr || e.message).trim()}`),
          );
        try {
          const v = JSON.parse(stdout) as SimDigest;
          resolve({ digest: v.digest, deviceState: v.deviceState });
        } catch {
          reject(new MigstreamError("DEVICE", `sim digest --socket ${socket} printed no JSON: ${stdout.trim()}`));
        }
      },
    );
  });
}
