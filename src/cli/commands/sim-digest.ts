// `migstream sim digest`: the state digest of a device served by `sim serve`,
// read from its digest region over vfio-user (and, with --json, its device_state).
import { stateName } from "../../protocol/constants.js";
import { migStateName } from "../../protocol/v2/constants.js";
import { openVfioUser, VfioUserMigration } from "../../transport/vfio-user/migration.js";
import { intOption, parseCommand, usageOf } from "../args.js";
import type { CliIO } from "../command.js";
import { hex64 } from "../units.js";

/** The sim commands take options only. */
const NO_POSITIONALS = { min: 0, max: 0, names: "" };
const CMD = "sim digest";
/** Default bound on each wait, ms. */
const DEFAULT_TIMEOUT_MS = 5000;
/** Largest --timeout, ms (an hour). */
const MAX_TIMEOUT_MS = 3_600_000;

export async function simDigest(argv: string[], io: CliIO): Promise<number> {
  const { values: v } = parseCommand(
    CMD,
    argv,
    {
      socket: { type: "string" },
      timeout: { type: "string" },
    },
    NO_POSITIONALS,
  );
  if (!v.socket) throw usageOf(CMD, "--socket PATH is required");
  const path = v.socket;
  const timeoutMs = intOption(CMD, "--timeout", v.timeout, DEFAULT_TIMEOUT_MS, 1, MAX_TIMEOUT_MS);
  const d = await readSimDigest(path, timeoutMs, io.signal);
  io.stdout.write(v.json ? `${JSON.stringify(d)}\n` : `${d.digest}\n`);
  return 0;
}

/** What `sim digest --json` prints (v2 devices: `protocol: "v2"` instead of a migration region). */
export interface SimDigestInfo {
  /** XXH3-64 of the device state, 16 hex digits. */
  digest: string;
  deviceState: string;
  migrationRegion?: number;
  protocol?: "v2";
}

/** Reads a served sim device's digest region and state over vfio-user (one connection; v1 or v2, detected). */
export async function readSimDigest(
  path: string,
  timeoutMs = DEFAULT_TIMEOUT_MS,
  signal?: AbortSignal,
): Promise<SimDigestInfo> {
  const dev = await openVfioUser(path, { timeoutMs });
  // A stop signal ends the wait at once (the pending read fails with TRANSPORT).
  const stop = () => void dev.close();
  signal?.addEventListener("abort", stop, { once: true });
  try {
    if (dev instanceof VfioUserMigration) {
      return {
        digest: hex64(await dev.stateDigest()),
        deviceState: migStateName(await dev.getState()),
        protocol: "v2",
      };
    }
    const digest = hex64(await dev.stateDigest());
    const b = await dev.read(0, 4);
    const state = new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
    return { digest, deviceState: stateName(state), migrationRegion: dev.index };
  } finally {
    signal?.removeEventListener("abort", stop);
    await dev.close();
  }
}
