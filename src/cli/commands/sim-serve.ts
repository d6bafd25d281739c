// `migstream sim serve`: a simulated device served over vfio-user until
// SIGTERM, SIGINT or SIGHUP (or, with --exit-with-stdin, until its stdin ends:
// a parent holding the pipe went away), then the socket file is removed and
// the exit code is 0.
import { MigstreamError } from "../../errors.js";
import { parseFault } from "../../transport/sim/faults.js";
import { simDeviceOptions } from "../../transport/sim/options.js";
import { SIM_DISCONNECT_POLICIES, type SimDisconnect, serveSim } from "../../transport/sim/serve.js";
import { DEFAULT_MIGRATION_REGION_INDEX, MAX_REGIONS, PCI_NUM_FIXED_REGIONS } from "../../transport/vfio-user/constants.js";
import { DEFAULT_IDLE_TIMEOUT_MS } from "../../transport/vfio-user/server.js";
import type { CliIO } from "../command.js";
import { intOption, parseCommand, sizeOption, usageOf } from "../args.js";
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
  const { values: v } = parseCommand(CMD, argv, {
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
    "idle-timeout": { type: "string" },
    "on-disconnect": { type: "string" },
    "exit-with-stdin": { type: "boolean" },
    verbose: { type: "boolean" },
  }, NO_POSITIONALS);
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
  const regionIndex = intOption(CMD, "--region-index", v["region-index"], DEFAULT_MIGRATION_REGION_INDEX, PCI_NUM_FIXED_REGIONS, MAX_REGIONS - 1);
  const idleTimeoutMs = intOption(CMD, "--idle-timeout", v["idle-timeout"], DEFAULT_IDLE_TIMEOUT_MS, 0, 2 ** 31);
  const onDisconnect = (v["on-disconnect"] ?? "recover") as SimDisconnect;
  if (!SIM_DISCONNECT_POLICIES.includes(onDisconnect)) throw usageOf(CMD, `--on-disconnect '${v["on-disconnect"]}' is not one of ${SIM_DISCONNECT_POLICIES.join(", ")}`);
  const log = v.verbose ? (line: string) => void io.stderr.write(`${line}\n`) : undefined;

  // Listen for stop signals before the (possibly slow) state generation.
  const stop = stopped(io.signal, v["exit-with-stdin"] ? io.stdin : undefined);
  let served;
  try {
    served = await serveSim(path, { device, faults, maxDataXfer, regionIndex, idleTimeoutMs, onDisconnect, log });
  } catch (e) {
    if (e instanceof RangeError) throw new MigstreamError("LIMIT", `${CMD}: cannot allocate the device state: ${e.message}`, { cause: e });
    throw e;
  }
  const { server, device: dev } = served;
  if (!v.quiet) io.stdout.write(
    `${CMD}: listening on ${path} (state ${dev.image.size} bytes, digest ${hex64(dev.digest())}, migration region ${server.regionIndex}, digest region ${server.digestRegionIndex})\n`,
  );
  const why = await stop;
  await server.close();
  log?.(`${CMD}: ${why}: stopped`);
  return 0;
}
