// Stream → several devices: the destination of a migration of devices that
// move together. The stream is decoded once (StreamDemux) and each device's
// items go to its own driver (resumeGroup): all devices load concurrently,
// and they are started only after the whole stream verified and every one of
// them loaded. No device is touched until the stream's head — its header and
// every device's DEVICE_BEGIN (and protocol record) — has been checked and
// paired with the given devices, and the stream has proved itself as a
// one-device restore's must (restore-stream.ts): its first transaction (or,
// with none, its end) delivered and verified, its declared limits checked
// against the devices. The stream ends at its verified STREAM_END (demux.ts).
//
// Pairing: the stream's devices, in the order the stream announces them (the
// source's order), with the given devices in the order given. The number
// must match, and so must each pair's protocol generation, before any device
// is touched.
//
// Failure of the stream or of any device: every device is left not RUNNING
// (resumeGroup), and the error names the device, or is the stream's.
import { MigstreamError } from "../errors.js";
import { generationName, generationOf, isMigrationDevice, type MigratableDevice } from "../protocol/generation.js";
import { resumeGroup } from "../protocol/group.js";
import type { Progress, ResumeSummary } from "../protocol/progress.js";
import type { RegionIO } from "../protocol/region-io.js";
import { StreamDemux, type StreamDemuxOptions, type StreamHead } from "./demux.js";
import { checkFits, regionCapacity } from "./restore-stream.js";

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
  /** Called once, after the head checked and paired and the stream proved itself, just before the first access to any device. */
  onTouch?: () => void;
  /**
   * Refuse (DEVICE), before touching any device, a stream whose declared
   * `max_transaction` exceeds the data section of the largest device given,
   * when all speak v1 (`checkFits`): no device could take such a
   * transaction. The declaration is the stream's, not each device's: a
   * smaller device is held to its own section by its driver. Off by default,
   * as for one device.
   */
  checkFit?: boolean;
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
    await demux.proven();
    if (options.checkFit === true) fits(head, members);
  } catch (e) {
    await demux.abort(e);
    throw e;
  }
  // Cancelled: the signal's reason (e.g. "interrupted (SIGHUP)") is what every device's error says.
  const cancel = () => {
    const why = options.signal?.reason instanceof Error ? options.signal.reason.message : "restore cancelled";
    void demux.abort(new MigstreamError("ABORTED", why, { cause: options.signal?.reason }));
  };
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

/**
 * The stream's declared transaction size against the largest device given,
 * when every one speaks v1. A v2 device's data is a stream with no buffer size:
 * a set with one declares the encoder's default, which says nothing of the
 * v1 devices' sections (their drivers hold them to those).
 */
function fits(head: StreamHead, members: RestoreDevicesMember[]): void {
  const regions = members.map((m) => m.device).filter((d): d is RegionIO => !isMigrationDevice(d));
  if (regions.length < members.length) return;
  const largest = regions.reduce((a, d) => (regionCapacity(d) > regionCapacity(a) ? d : a));
  checkFits(head.header, largest);
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
