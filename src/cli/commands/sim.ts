// `migstream sim serve|digest`: a simulated device in its own process behind
// a vfio-user socket, and its state digest.
import {
  FAULT_FORM,
  FAULT_POINT_NAMES,
  MIGRATION_FAULT_FORM,
  MIGRATION_FAULT_POINT_NAMES,
} from "../../transport/sim/fault-spec.js";
import { SIM_V2_VARIANT_NAMES, SIM_VARIANT_NAMES } from "../../transport/sim/options.js";
import { DEFAULT_IDLE_TIMEOUT_MS } from "../../transport/vfio-user/server.js";
import type { Command } from "../command.js";
import { usage } from "../exit.js";
import { simDigest } from "./sim-digest.js";
import { simServe } from "./sim-serve.js";

const HELP = `usage: migstream sim serve --socket PATH [options]
       migstream sim digest --socket PATH [--timeout MS] [--json]

sim serve: serve a strict simulated device (v1 migration region) over vfio-user
on a UNIX socket, one client at a time, until SIGTERM, SIGINT or SIGHUP (then
the socket file is removed). Prints one line when it is listening (not with -q).
  --socket PATH            where to listen (a stale socket file is replaced)
  --state-size BYTES       device state size (default 1MiB; KiB/MiB/GiB, 0x-hex)
  --seed N                 seed of the generated state (default 1)
  --empty                  start with an all-zero state (a destination)
  --transaction-size B     bytes per saved buffer, or MIN-MAX drawn per buffer (default 64KiB)
  --dirty-rate PAGES       pages the running device changes per acknowledged
                           pre-copy transaction (default 0)
  --variant NAME[,NAME]    vendor behaviour, repeatable: ${SIM_VARIANT_NAMES.join(", ")}
                           libvfio-user: device and server as the reference server library:
                           one client, then it exits printing the final state and digest
  --fault SPEC             arm a fault, repeatable: ${FAULT_FORM}
                           points: ${FAULT_POINT_NAMES.join(", ")}
  --max-transfer BYTES     max_data_xfer_size offered (default 1MiB)
  --region-index N         migration region index (default 9; the digest region follows)
  --idle-timeout MS        drop a client that sends no whole VERSION message within MS of
                           connecting, or stops for MS inside a message; the next client is
                           served (default ${DEFAULT_IDLE_TIMEOUT_MS}; 0: never)
  --on-disconnect WHAT     when a client goes away mid-migration: recover (default: the device
                           returns to RUNNING; a source keeps its state, a destination still
                           RESUMING is reset and stopped) or stay (nothing: the device keeps
                           the state the client left, as real hardware does)
  --exit-with-stdin        also stop when stdin ends (a parent holding the pipe is gone)
                           (v2 devices keep their state when a client leaves: stay)
  --protocol v1|v2         v2: a device with the v2 state machine and data stream, served
                           as libvfio-user serves one (DEVICE_FEATURE, MIG_DATA_READ/WRITE;
                           the state survives reconnects and resets); default v1
    v2 variants:           ${SIM_V2_VARIANT_NAMES.join(", ")}
    v2 faults:             ${MIGRATION_FAULT_FORM}
                           points: ${MIGRATION_FAULT_POINT_NAMES.join(", ")}
    --dirty-rate (v2)      pages changed per MiB read in pre-copy
  --reset-to-running       v2: DEVICE_RESET returns to RUNNING (libvfio-user before 4f4fce4)
  --verbose                log connections and device failures to stderr

sim digest: print the XXH3-64 digest of a served device's state (16 hex
digits), read from its digest region.
  --socket PATH            the server's socket
  --timeout MS             bound on each wait (default 5000)
  --json                   print {"digest", "deviceState", "migrationRegion"}

examples:
  migstream sim serve --socket /tmp/src.sock --state-size 64MiB --seed 7 --dirty-rate 4 &
  migstream sim serve --socket /tmp/dst.sock --state-size 64MiB --empty &
  migstream sim digest --socket /tmp/src.sock
  migstream sim serve --socket /tmp/f.sock --variant mlx5 --fault read-data,nth=3,errno=EIO`;

export const sim: Command = {
  name: "sim",
  summary: "serve a simulated device over vfio-user (sim serve), print its state digest (sim digest)",
  help: HELP,
  signals: true,
  async run(argv, io) {
    const [sub, ...rest] = argv;
    if (sub === "serve") return simServe(rest, io);
    if (sub === "digest") return simDigest(rest, io);
    throw usage(
      sub === undefined
        ? "sim: missing subcommand (serve or digest)"
        : `sim: unknown subcommand '${sub}' (serve or digest)`,
    );
  },
};
