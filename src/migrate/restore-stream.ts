// Stream → device: decodes the stream as it arrives and restores one device
// from it. The device is not touched until the stream has delivered its first
// transaction (or, for a device with none, its verified end) — its header and
// frames checked and, with a key, authenticated — and the stream's protocol
// generation and declared limits were checked against what the device can
// take; so a connection that sends garbage, a stream that cannot fit, or one
// that stalls before it carries any data never reaches the device, which
// keeps its state. After that, a transaction is written only once all its
// chunks verified, and the device is started only after the whole stream
// verified; on any failure the resume driver resets the device (never RUNNING
// with a partial state).
import { MigstreamError } from "../errors.js";
import type { StreamHeader } from "../format/header.js";
import { HEADER_SIZE as REGION_HEADER_SIZE } from "../protocol/constants.js";
import { resumeAny } from "../protocol/drive.js";
import { generationName, generationOf, isMigrationDevice, type MigratableDevice } from "../protocol/generation.js";
import type { ResumeSummary } from "../protocol/progress.js";
import type { RegionIO } from "../protocol/region-io.js";
import type { ResumeOptions } from "../protocol/resume.js";
import type { ResumeItem } from "../protocol/types.js";
import { type StreamItemsOptions, streamItems } from "./items.js";

/**
 * `reuseOutput` defaults to true here: the resume driver writes each
 * transaction to the device before it asks for the next, so one assembly
 * buffer serves them all (no new array per transaction).
 */
export interface RestoreOptions extends StreamItemsOptions, Pick<ResumeOptions, "start" | "signal" | "onProgress"> {
  /** Called once, just before the first access to the device (the stream delivered data and fits the device). */
  onTouch?: () => void;
  /**
   * Refuse (DEVICE), before touching the device, a stream whose declared
   * `max_transaction` exceeds the device's data section (`checkFits`), when
   * the stream holds this one device (see restoreDevices for several). Off by
   * default: an encoder not told the device's size declares its default
   * (64 MiB); `saveTo`, `save` and `encode` declare what they send.
   */
  checkFit?: boolean;
}

/**
 * The most data one transaction can bring to the device behind `region`: a
 * migration region's data section lies after its 32-byte register header.
 */
export function regionCapacity(region: RegionIO): number {
  return Math.max(0, region.size - REGION_HEADER_SIZE);
}

/**
 * DEVICE when the stream declares transactions larger than the device's data
 * section can take: such a stream cannot be restored without splitting
 * transactions, which vendors do not accept, so the device is not entered.
 */
export function checkFits(header: StreamHeader, region: RegionIO): void {
  const room = regionCapacity(region);
  if (header.maxTransaction > room) {
    throw new MigstreamError(
      "DEVICE",
      `the stream declares transactions of up to ${header.maxTransaction} bytes, but the device's migration region (${region.size} bytes) has room for at most ${room}; the device was not touched`,
      { offset: 40, field: "max_transaction" },
    );
  }
}

/** USAGE, before the device is touched, when the stream's protocol record names the other generation (resumeAny checks it again). */
function checkGeneration(held: readonly ResumeItem[], region: MigratableDevice): void {
  const rec = held.find((i) => i.kind === "protocol");
  const got = rec?.kind === "protocol" ? rec.protocol.generation : 1;
  const want = generationOf(region);
  if (got !== want) {
    throw new MigstreamError(
      "USAGE",
      `the stream holds a ${generationName(got)} device's state; this device speaks ${generationName(want)}; the device was not touched`,
      {
        field: "generation",
      },
    );
  }
}

/**
 * Restores `region` (a v1 migration region or a v2 device) from stream bytes.
 * A stream of the other protocol generation is refused before the device is
 * touched. Throws the stream's or the device's error.
 */
export async function restoreDevice(
  region: MigratableDevice,
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: RestoreOptions = {},
): Promise<ResumeSummary> {
  let header: StreamHeader | null = null;
  let devices = 0;
  const items = streamItems(source, {
    ...options,
    reuseOutput: options.reuseOutput ?? true,
    onEvent: (ev) => {
      if (ev.type === "header") header = ev.header;
      else if (ev.type === "device") devices++;
      options.onEvent?.(ev);
    },
  });
  try {
    // The protocol record and phases are held back until the first data (or the verified end): only then is the device entered.
    const held: ResumeItem[] = [];
    for (;;) {
      const r = await items.next();
      if (r.done) break;
      held.push(r.value);
      if (r.value.kind !== "phase" && r.value.kind !== "protocol") break;
    }
    checkGeneration(held, region);
    // A stream of several devices declares the largest transaction of any: it says nothing of this one (its driver holds it to its section).
    if (header !== null && options.checkFit === true && devices <= 1 && !isMigrationDevice(region))
      checkFits(header, region);
    options.onTouch?.();
    return await resumeAny(region, prepend(held, items), {
      start: options.start,
      signal: options.signal,
      onProgress: options.onProgress,
    });
  } finally {
    await items.return(undefined).catch(() => {});
  }
}

async function* prepend(held: ResumeItem[], rest: AsyncIterator<ResumeItem>): AsyncGenerator<ResumeItem> {
  yield* held;
  if (held.at(-1)?.kind === "verified") return;
  for (;;) {
    const r = await rest.next();
    if (r.done) return;
    yield r.value;
  }
}
