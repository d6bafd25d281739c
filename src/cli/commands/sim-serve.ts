// `migstream sim serve`: a simulated device served over vfio-user until
// SIGTERM, SIGINT or SIGHUP (or, with --exit-with-stdin, until its stdin ends:
// a parent holding the pipe went away), then the socket file is removed and
// the exit code is 0.
// With --variant libvfio-user the server behaves as the reference server: it
// serves its one client and exits when that client leaves, printing the
// device's final state and digest (it has no digest region to ask).
import { MigstreamError } from "../../errors.js";
import { stateName } from "../../protocol/constants.js";
import { migrationFlagNames } from "../../protocol/v2/support.js";
import { parseFault, parseMigrationFault } from "../../transport/sim/fault-spec.js";
import { serverVariantOf, simDeviceOptions, simMigrationOptions } from "../../transport/sim/options.js";
import { SIM_DISCONNECT_POLICIES, type SimDisconnect, serveSim, serveSimV2 } from "../../transport/sim/serve.js";
import {
  DEFAULT_MIGRATION_REGION_INDEX,
  MAX_REGIONS,
  PCI_NUM_FIXED_REGIONS,
} from "../../transport/vfio-user/constants.js";
import { DEFAULT_IDLE_TIMEOUT_MS } from "../../transport/vfio-user/server.js";
import { intOption, parseCommand, sizeOption, usageOf } from "../args.js";
import type { CliIO } from "../command.js";
import { hex64 } from "../units.js";

/** The sim commands take options only. */
const NO_POSITIONALS = { min: 0, max: 0, names: "" };
const CMD = "sim serve";
/** Resolves with why the server should stop: a stop signal (`signal`), or (when `stdin` is given) its end. */
function stopped(signal: AbortSignal | undefined, stdin?: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve) => {
    const why = () => (signal?.reason instanceof Error ? signal.reason.message : "stopped");
    if (signal?.aborted) return resolve(why());
    signal?.addEventListener("abort", () => resolve(why()), { once: true });
    if (stdin) {
      // Nothing is read from it: its end (EOF, or an error once the writer is gone) is the signal.
      const gone = () => resolve("stdin closed");
      stdin.on("data", () => {});
      stdin.once("end", gone);
      stdin.once("error", gone);
      stdin.once("close", gone);
    }
  });
}

export async function simServe(argv: string[], io: CliIO): Promise<number> {
  const { values: v } = parseCommand(
    CMD,
    argv,
    {
      socket: { type: "string" },
      "state-size": { type: "string" },
      seed: { type: "string" },
      empty: { type: "boolean" },
      "transaction-size": { type: "string" },
      "dirty-rate": { type: "string" },
      variant: { type: "string", multiple: true },
      fault: { type: "string", multiple: true },
      "max-transfer": { type: "string" },
      "region-index": { type: "string" },
      protocol: { type: "string" },
      "reset-to-running": { type: "boolean" },
      "idle-timeout": { type: "string" },
      "on-disconnect": { type: "string" },
      "exit-with-stdin": { type: "boolean" },
      verbose: { type: "boolean" },
    },
    NO_POSITIONALS,
  );
  const protocol = v.protocol ?? "v1";
  if (protocol !== "v1" && protocol !== "v2") throw usageOf(CMD, `--protocol ${protocol} is neither v1 nor v2`);
  if (protocol === "v2") return serveV2(v, io);
  if (!v.socket) throw usageOf(CMD, "--socket PATH is required");
  const path = v.socket;
  const kv: Record<string, string> = {};
  if (v["state-size"] !== undefined) kv.state = v["state-size"];
  if (v.seed !== undefined) kv.seed = v.seed;
  if (v.empty) kv.empty = "1";
  if (v["transaction-size"] !== undefined) kv.txn = v["transaction-size"];
  if (v["dirty-rate"] !== undefined) kv.dirty = v["dirty-rate"];
  if (v.variant !== undefined) kv.variant = v.variant.join(",");
  const device = simDeviceOptions(kv);
  const faults = (v.fault ?? []).map(parseFault);
  const maxDataXfer = sizeOption(CMD, "--max-transfer", v["max-transfer"]);
  const regionIndex = intOption(
    CMD,
    "--region-index",
    v["region-index"],
    DEFAULT_MIGRATION_REGION_INDEX,
    PCI_NUM_FIXED_REGIONS,
    MAX_REGIONS - 1,
  );
  const idleTimeoutMs = idleTimeout(v);
  const onDisconnect = (v["on-disconnect"] ?? "recover") as SimDisconnect;
  if (!SIM_DISCONNECT_POLICIES.includes(onDisconnect))
    throw usageOf(CMD, `--on-disconnect '${v["on-disconnect"]}' is not one of ${SIM_DISCONNECT_POLICIES.join(", ")}`);
  const log = v.verbose ? (line: string) => void io.stderr.write(`${line}\n`) : undefined;

  // Listen for stop signals before the (possibly slow) state generation.
  const stop = stopped(io.signal, v["exit-with-stdin"] ? io.stdin : undefined);
  const served = await allocating(
    serveSim(path, {
      device,
      faults,
      maxDataXfer,
      regionIndex,
      idleTimeoutMs,
      onDisconnect,
      log,
      variant: serverVariantOf(kv.variant),
    }),
  );
  const { server, device: dev } = served;
  if (!v.quiet)
    io.stdout.write(
      `${CMD}: listening on ${path} (state ${dev.image.size} bytes, digest ${hex64(dev.digest())}, migration region ${server.regionIndex}, digest region ${server.digestRegionIndex ?? "none"})\n`,
    );
  const sig = await Promise.race([stop, server.closed.then(() => undefined)]);
  await server.close();
  if (sig === undefined) {
    io.stdout.write(
      `${CMD}: the client left; exiting (device ${stateName(dev.state)}, digest ${hex64(dev.digest())})\n`,
    );
    return 0;
  }
  log?.(`${CMD}: ${sig}: stopped`);
  return 0;
}

type ServeValues = {
  socket?: string;
  "state-size"?: string;
  seed?: string;
  empty?: boolean;
  "transaction-size"?: string;
  "dirty-rate"?: string;
  variant?: string[];
  fault?: string[];
  "max-transfer"?: string;
  "region-index"?: string;
  "reset-to-running"?: boolean;
  "idle-timeout"?: string;
  "on-disconnect"?: string;
  "exit-with-stdin"?: boolean;
  quiet?: boolean;
  verbose?: boolean;
};

/** --idle-timeout MS (default the server's). */
function idleTimeout(v: ServeValues): number {
  return intOption(CMD, "--idle-timeout", v["idle-timeout"], DEFAULT_IDLE_TIMEOUT_MS, 0, 2 ** 31);
}

/** `sim serve --protocol v2`: a simulated v2 device as libvfio-user serves one. */
async function serveV2(v: ServeValues, io: CliIO): Promise<number> {
  if (!v.socket) throw usageOf(CMD, "--socket PATH is required");
  for (const k of ["transaction-size", "region-index"] as const)
    if (v[k] !== undefined) throw usageOf(CMD, `--${k} applies to --protocol v1 only`);
  const kv: Record<string, string> = { protocol: "v2" };
  if (v["state-size"] !== undefined) kv.state = v["state-size"];
  if (v.seed !== undefined) kv.seed = v.seed;
  if (v.empty) kv.empty = "1";
  if (v["dirty-rate"] !== undefined) kv.dirty = v["dirty-rate"];
  if (v.variant !== undefined) kv.variant = v.variant.join(",");
  const device = simMigrationOptions(kv);
  const faults = (v.fault ?? []).map(parseMigrationFault);
  // A v2 device keeps its state when its client leaves (as libvfio-user's does): there is nothing to recover.
  if (v["on-disconnect"] !== undefined && v["on-disconnect"] !== "stay")
    throw usageOf(CMD, "--on-disconnect: a v2 device keeps its state when its client leaves (stay)");
  const idleTimeoutMs = idleTimeout(v);
  const maxDataXfer = sizeOption(CMD, "--max-transfer", v["max-transfer"]);
  const log = v.verbose ? (line: string) => void io.stderr.write(`${line}\n`) : undefined;
  const stop = stopped(io.signal, v["exit-with-stdin"] ? io.stdin : undefined);
  const served = await allocating(
    serveSimV2(v.socket, {
      device,
      faults,
      maxDataXfer,
      idleTimeoutMs,
      log,
      resetKeepsState: v["reset-to-running"] !== true,
    }),
  );
  const { server, device: dev } = served;
  if (!v.quiet)
    io.stdout.write(
      `${CMD}: listening on ${v.socket} (v2, state ${dev.image.size} bytes, digest ${hex64(dev.digest())}, flags ${migrationFlagNames(dev.migrationFlags)}, digest region ${server.digestRegionIndex})\n`,
    );
  const sig = await stop;
  await server.close();
  log?.(`${CMD}: ${sig}: stopped`);
  return 0;
}

/** A u64 as 16 hex digits (re-exported: where other modules have taken it from). */
export { hex64 };

/** Starts a simulated device; its state too large to allocate is LIMIT (said with the command), not a crash. */
async function allocating<T>(start: Promise<T>): Promise<T> {
  try {
    return await start;
  } catch (e) {
    if (e instanceof RangeError)
      throw new MigstreamError("LIMIT", `${CMD}: cannot allocate the device state: ${e.message}`, { cause: e });
    throw e;
  }
}
