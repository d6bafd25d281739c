// `migstream sim digest`: the state digest of a device served by `sim serve`,
// read from its digest region over vfio-user (and, with --json, its device_state).
import { stateName } from "../../protocol/constants.js";
import { connectVfioUser } from "../../transport/vfio-user/client.js";
import type { CliIO } from "../command.js";
import { intOption, parseCommand, usageOf } from "../args.js";
import { hex64 } from "../units.js";

/** The sim commands take options only. */
const NO_POSITIONALS = { min: 0, max: 0, names: "" };
const CMD = "sim digest";
/** Default bound on each wait, ms. */
const DEFAULT_TIMEOUT_MS = 5000;
/** Largest --timeout, ms (an hour). */
const MAX_TIMEOUT_MS = 3_600_000;

export async function simDigest(argv: string[], io: CliIO): Promise<number> {
  const { values: v } = parseCommand(CMD, argv, {
    socket: { type: "string" },
    timeout: { type: "string" },
  }, NO_POSITIONALS);
  if (!v.socket) throw usageOf(CMD, "--socket PATH is required");
  const path = v.socket;
  const timeoutMs = intOption(CMD, "--timeout", v.timeout, DEFAULT_TIMEOUT_MS, 1, MAX_TIMEOUT_MS);
  const dev = await connectVfioUser(path, { timeoutMs });
  // A stop signal ends the wait at once (the pending read fails with TRANSPORT).
  const stop = () => void dev.close();
  io.signal?.addEventListener("abort", stop, { once: true });
  try {
    const digest = hex64(await dev.stateDigest());
    if (!v.json) {
      io.stdout.write(`${digest}\n`);
      return 0;
    }
    const b = await dev.read(0, 4);
    const state = new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
    io.stdout.write(`${JSON.stringify({ digest, deviceState: stateName(state), migrationRegion: dev.index })}\n`);
    return 0;
  } finally {
    io.signal?.removeEventListener("abort", stop);
    await dev.close();
  }
}
