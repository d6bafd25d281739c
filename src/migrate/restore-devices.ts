// Stream → several devices: the destination of a migration of devices that
// move together. The stream is decoded once (StreamDemux) and each device's
// items go to its own driver (resumeGroup): all devices load concurrently,
// and they are started only after the whole stream verified and every one of
// them loaded. No device is touched until the stream's head — its header and
// every device's DEVICE_BEGIN (and protocol record) — has been checked and
// paired with the given devices.
//
// Pairing: the stream's devices, in the order the stream announces them (the
// source's order), with the given devices in the order given. The number
// must match, and so must each pair's protocol generation, before any device
// is touched.
//
// Failure of the stream or of any device: every device is left not RUNNING
// (resumeGroup), and the error names the device, or is the stream's.
import { MigstreamError } from "../errors.js";
import { generationName, generationOf, type MigratableDevice } from "../protocol/generation.js";
import { resumeGroup } from "../protocol/group.js";
import type { Progress, ResumeSummary } from "../protocol/progress.js";
import { StreamDemux, type StreamDemuxOptions, type StreamHead } from "./demux.js";

/** A destination device, and how errors name it. */
export interface RestoreDevicesMember {
  device: MigratableDevice;
  label?: string;
}

/** Options of restoreDevices: the demux's, whether to start the devices, cancel, progress. */
export interface RestoreDevicesOptions extends StreamDemuxOptions {
  /** Start every device once all have loaded (default true); false: v1 stays in RESUMING, v2 in STOP. */
  start?: boolean;
  /** Cancels the restore (ABORTED); no device ends RUNNING. */
  signal?: AbortSignal;
  /** Progress of the device at `index` (of the given devices). */
  onProgress?: (index: number, p: Progress) => void;
  /** Called once, after the head checked and paired, just before the first access to any device. */
  onTouch?: () => void;
}

/** One restored device: the driver's summary and the stream device it came from. */
export interface RestoredDevice extends ResumeSummary {
  /** Its id and name in the stream. */
  id: number;
  name: string;
  /** performance.now() when it was put in RUNNING (0: not started). */
  startedAt: number;
}

/** What restoreDevices did: each device (in the order given) and the stream's head. */
export interface RestoreDevicesResult {
  /** In the order given. */
  devices: RestoredDevice[];
  head: StreamHead;
}

/** Restores `members` (in order) from a multi-device stream's bytes. */
export async function restoreDevices(
  members: RestoreDevicesMember[],
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: RestoreDevicesOptions = {},
): Promise<RestoreDevicesResult> {
  if (!Array.isArray(members) || members.length === 0)
    throw new MigstreamError("USAGE", "restoreDevices: give at least one device");
  const demux = new StreamDemux(source, options);
  const head = await demux.head();
  try {
    pair(head, members);
  } catch (e) {
    await demux.abort(e);
    throw e;
  }
  const cancel = () =>
    void demux.abort(new MigstreamError("ABORTED", "restore cancelled", { cause: options.signal?.reason }));
  options.signal?.addEventListener("abort", cancel, { once: true });
  options.onTouch?.();
  const pumping = demux.run();
  pumping.catch(() => {}); // reported through the devices' items (and `cause` below)
  try {
    const g = await resumeGroup(
      members.map((m, i) => ({
        device: m.device,
        label: m.label,
        id: head.devices[i].id,
        items: demux.items(head.devices[i].id),
      })),
      { start: options.start, signal: options.signal, onProgress: options.onProgress, cause: () => demux.failure },
    );
    await pumping;
    return {
      head,
      devices: g.devices.map((s, i) => ({
        ...s,
        id: head.devices[i].id,
        name: head.devices[i].name,
        startedAt: g.startedAt[i],
      })),
    };
  } catch (e) {
    await demux.abort(e);
    throw e;
  } finally {
    options.signal?.removeEventListener("abort", cancel);
  }
}

/** The stream's devices against the given ones: same number, same generations (USAGE before any device is touched). */
function pair(head: StreamHead, members: RestoreDevicesMember[]): void {
  const names = head.devices.map((d) => `${d.id} "${d.name}"`).join(", ");
  if (head.devices.length !== members.length) {
    throw new MigstreamError(
      "USAGE",
      `the stream holds ${head.devices.length} device${head.devices.length === 1 ? "" : "s"} (${names || "none"}) but ${members.length} were given; the stream's devices pair with the given ones in order (no device touched)`,
      { field: "devices" },
    );
  }
  head.devices.forEach((d, i) => {
    const want = generationOf(members[i].device);
    if (d.protocol !== undefined && d.protocol.generation !== want) {
      const label = members[i].label ? ` (${members[i].label})` : "";
      throw new MigstreamError(
        "USAGE",
        `stream device ${d.id} "${d.name}" holds a ${generationName(d.protocol.generation)} device's state, but the device it pairs with, #${i}${label}, speaks ${generationName(want)} (no device touched)`,
        { device: d.id, field: "generation" },
      );
    }
  });
}
