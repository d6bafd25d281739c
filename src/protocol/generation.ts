// Telling the two VFIO migration protocols apart, on both sides: which one a
// device speaks, and which one produced a stream's items. A resume checks the
// stream's record before it touches the device, so a v1 stream is never fed
// to a v2 device or the reverse.
import { MigstreamError } from "../errors.js";
import type { RegionIO } from "./region-io.js";
import type { MigrationProtocol, ResumeItem } from "./types.js";
import type { MigrationDevice } from "./v2/device-io.js";

/** A device either driver can migrate: a v1 migration region or a v2 device. */
export type MigratableDevice = RegionIO | MigrationDevice;

/** 2 for a v2 MigrationDevice, 1 for a v1 RegionIO. */
export function generationOf(d: MigratableDevice): 1 | 2 {
  return (d as Partial<MigrationDevice>).generation === 2 ? 2 : 1;
}

/** True for a v2 device. */
export function isMigrationDevice(d: MigratableDevice): d is MigrationDevice {
  return generationOf(d) === 2;
}

/** The protocol record a save of `d` writes (FORMAT.md §5.8): what its destination needs to replay it. */
export function protocolOf(d: MigratableDevice): MigrationProtocol {
  return isMigrationDevice(d)
    ? { generation: 2, restartsAtStopCopy: d.restartsAtStopCopy === true }
    : { generation: 1 };
}

const NAME = { 1: "v1 (migration region)", 2: "v2 (device feature + data stream)" } as const;

/** "v1 (migration region)" / "v2 (device feature + data stream)". */
export function generationName(g: 1 | 2): string {
  return NAME[g];
}

/**
 * Reads the items up to the first one that is not a protocol record and
 * checks the record (none: generation 1) against `want`. Returns the record
 * and an iterator that yields the remaining items, the one read ahead first.
 * A mismatch is USAGE, thrown before the caller has touched its device.
 */
export async function openItems(
  items: AsyncIterable<ResumeItem> | Iterable<ResumeItem>,
  want: 1 | 2,
  step: string,
): Promise<{ protocol: MigrationProtocol; rest: AsyncIterator<ResumeItem> }> {
  const it: AsyncIterator<ResumeItem> | Iterator<ResumeItem> =
    Symbol.asyncIterator in items
      ? (items as AsyncIterable<ResumeItem>)[Symbol.asyncIterator]()
      : (items as Iterable<ResumeItem>)[Symbol.iterator]();
  let first = await it.next();
  let protocol: MigrationProtocol = { generation: 1 };
  if (!first.done && first.value.kind === "protocol") {
    protocol = first.value.protocol;
    first = await it.next();
    if (!first.done && first.value.kind === "protocol") {
      throw new MigstreamError("FORMAT", `${step}: the stream records this device's protocol twice`, {
        step,
        field: "protocol",
      });
    }
  }
  if (protocol.generation !== want) {
    throw new MigstreamError(
      "USAGE",
      `${step}: the stream holds a ${generationName(protocol.generation)} device's state; this device speaks ${generationName(want)} (not touched)`,
      { step, field: "generation" },
    );
  }
  let pending: IteratorResult<ResumeItem> | undefined = first;
  const rest: AsyncIterator<ResumeItem> = {
    async next() {
      if (pending !== undefined) {
        const r = pending;
        pending = undefined;
        return r;
      }
      return await it.next();
    },
    async return(v?: unknown) {
      await it.return?.(v as never);
      return { done: true, value: undefined };
    },
  };
  return { protocol, rest };
}

/** An AsyncIterator as an AsyncIterable (for `for await`). */
export function iterate<T>(it: AsyncIterator<T>): AsyncIterable<T> {
  return { [Symbol.asyncIterator]: () => it };
}
