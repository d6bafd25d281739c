// `migstream sim serve`: a simulated device served over vfio-user until
// SIGTERM or SIGINT, then the socket file is removed and the exit code is 0.
import { MigstreamError } from "../../errors.js";
import { parseFault } from "../../transport/sim/faults.js";
import { simDeviceOptions } from "../../transport/sim/options.js";
import { serveSim } from "../../transport/sim/serve.js";
import { DEFAULT_MIGRATION_REGION_INDEX, MAX_REGIONS, PCI_NUM_FIXED_REGIONS } from "../../transport/vfio-user/constants.js";
import { DEFAULT_IDLE_TIMEOUT_MS } from "../../transport/vfio-user/server.js";
import type { CliIO } from "../command.js";
import { intOption, parseCommand, sizeOption, usageOf } from "../args.js";

/** The sim commands take options only. */
const NO_POSITIONALS = { min: 0, max: 0, names: "" };
const CMD = "sim serve";
/** Signals that stop the server cleanly. */
const STOP_SIGNALS = ["SIGTERM", "SIGINT"] as const;

/** Resolves with the first stop signal received (and stops listening for the others). */
function stopSignal(): Promise<string> {
  return new Promise((resolve) => {
    const handlers = STOP_SIGNALS.map((sig) => {
      const on = () => {
        for (const [s, h] of handlers) process.removeListener(s, h);
        resolve(sig);
      };
      process.on(sig, on);
      return [sig, on] as const;
    });
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
  const log = v.verbose ? (line: string) => void io.stderr.write(`${line}\n`) : undefined;

  // Listen for stop signals before the (possibly slow) state generation.
  const stop = stopSignal();
  let served;
  try {
    served = await serveSim(path, { device, faults, maxDataXfer, regionIndex, idleTimeoutMs, log });
  } catch (e) {
    if (e instanceof RangeError) throw new MigstreamError("LIMIT", `${CMD}: cannot allocate the device state: ${e.message}`, { cause: e });
    throw e;
  }
  const { server, device: dev } = served;
  io.stdout.write(
    `${CMD}: listening on ${path} (state ${dev.image.size} bytes, digest ${hex64(dev.digest())}, migration region ${server.regionIndex}, digest region ${server.digestRegionIndex})\n`,
  );
  const sig = await stop;
  await server.close();
  log?.(`${CMD}: ${sig}: stopped`);
  return 0;
}

/** A u64 as 16 hex digits. */
export function hex64(v: bigint): string {
  return BigInt.asUintN(64, v).toString(16).padStart(16, "0");
}
