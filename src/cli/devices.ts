// The devices a command was given (`--device` repeated): opened in the order
// given, all or none (a spec that fails to open closes those already open),
// and how a migration of several of them runs under the CLI — one progress
// line for the set, and the destination's ack kept for the report.
import { MigstreamError } from "../errors.js";
import { MAX_NAME_LENGTH } from "../format/constants.js";
import type { EncoderOptions, EncoderStats } from "../format/encoder.js";
import { type SaveDevicesResult, saveDevices } from "../migrate/save-devices.js";
import type { ByteSink } from "../migrate/sink.js";
import type { Ack } from "../network/ack.js";
import type { GroupSaveOptions } from "../protocol/group.js";
import type { Progress } from "../protocol/progress.js";
import { type OpenedDevice, openDevice } from "../transport/spec.js";
import type { CliIO } from "./command.js";
import { coded, ProgressLine, phaseLabel } from "./progress.js";
import type { Style } from "./style.js";

/** Opens every spec, in order; if one fails, closes the others and throws its error naming it. */
export async function openDevices(specs: string[]): Promise<OpenedDevice[]> {
  const open: OpenedDevice[] = [];
  try {
    for (const [i, spec] of specs.entries()) {
      try {
        open.push(await openDevice(spec));
      } catch (e) {
        if (specs.length === 1 || !(e instanceof MigstreamError)) throw e;
        throw new MigstreamError(e.code, `--device #${i + 1} (${spec}): ${e.message}`, {
          errno: e.errno,
          field: e.field,
          step: e.step,
          cause: e,
        });
      }
    }
    return open;
  } catch (e) {
    await closeDevices(open);
    throw e;
  }
}

/** Closes every device (errors ignored: this runs on the way out). */
export async function closeDevices(devices: readonly OpenedDevice[]): Promise<void> {
  await Promise.allSettled(devices.map((d) => d.close()));
}

/** The names recorded in the stream: `--name` once per `--device` (in order), or the specs themselves. */
export function deviceNames(command: string, specs: string[], names: string[] | undefined): string[] {
  if (names !== undefined && names.length !== specs.length) {
    throw new MigstreamError(
      "USAGE",
      `${command}: --name given ${names.length} time${names.length === 1 ? "" : "s"} for ${specs.length} --device options: give it once per device, in the same order, or not at all (see migstream ${command} --help)`,
    );
  }
  return (names ?? specs).map(truncateName);
}

/** Device names are at most MAX_NAME_LENGTH UTF-8 bytes in the stream. */
function truncateName(name: string): string {
  const b = new TextEncoder().encode(name);
  if (b.length <= MAX_NAME_LENGTH) return name;
  return `${new TextDecoder().decode(b.subarray(0, MAX_NAME_LENGTH - 3)).replace(/\uFFFD$/, "")}...`;
}

export interface SaveDevicesRun {
  encoder: EncoderOptions;
  names: string[];
  save: GroupSaveOptions;
  confirm?: () => Promise<Ack & { ok: true }>;
}

/** saveDevices with one progress line for the set; returns the destination's ack too. */
export async function saveDevicesWithProgress(
  io: CliIO,
  style: Style,
  label: string,
  devices: OpenedDevice[],
  sink: ByteSink,
  o: SaveDevicesRun,
): Promise<{ result: SaveDevicesResult; ack?: Ack & { ok: true } }> {
  const progress = new ProgressLine(io.stderr, style, label);
  const last: (Progress | undefined)[] = devices.map(() => undefined);
  let stats: EncoderStats | undefined;
  let ack: (Ack & { ok: true }) | undefined;
  const draw = () => {
    const phases = last.map((p, i) => `${i}:${p ? phaseLabel(p.phase, p.iteration) : "setup"}`).join(" ");
    const pending = last.reduce((a, p) => a + (p?.pending ?? 0), 0);
    progress.update({
      phase: phases,
      bytes: last.reduce((a, p) => a + (p?.bytes ?? 0), 0),
      wire: sink.bytes,
      pending,
      coded: coded(stats),
    });
  };
  try {
    const result = await saveDevices(
      devices.map((d, i) => ({ device: d, info: { name: o.names[i] }, label: o.names[i] })),
      sink,
      {
        encoder: o.encoder,
        onEncoder: (e) => (stats = e.stats),
        save: {
          ...o.save,
          onProgress: (i, p) => {
            last[i] = p;
            draw();
            o.save.onProgress?.(i, p);
          },
        },
        confirm: o.confirm
          ? async () => {
              progress.update({
                phase: "waiting for the destination",
                bytes: stats?.rawBytes ?? 0,
                wire: sink.bytes,
                coded: coded(stats),
              });
              const got = await o.confirm!();
              ack = got;
              const took = got.devices?.length ?? 1;
              if (took !== devices.length) {
                // A destination that restored fewer devices than the stream holds: the others' states would be lost.
                throw new MigstreamError(
                  "DEVICE",
                  `the destination confirmed ${took} of the stream's ${devices.length} devices: give it --device once per device, in the same order`,
                );
              }
            }
          : undefined,
      },
    );
    return { result, ack };
  } finally {
    progress.clear();
  }
}
