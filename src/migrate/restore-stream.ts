// Stream → device: decodes the stream as it arrives and restores one device
// from it. The device is not touched until the stream's header and its first
// device frames have been checked (and, with a key, authenticated), so a
// connection that sends garbage never reaches the device. After that, a
// transaction is written only once all its chunks verified, and the device is
// started only after the whole stream verified; on any failure the resume
// driver resets the device (never RUNNING with a partial state).
import { resumeAny } from "../protocol/drive.js";
import type { MigratableDevice } from "../protocol/generation.js";
import type { ResumeOptions } from "../protocol/resume.js";
import type { ResumeSummary } from "../protocol/progress.js";
import type { ResumeItem } from "../protocol/types.js";
import { streamItems, type StreamItemsOptions } from "./items.js";

/**
 * `reuseOutput` defaults to true here: the resume driver writes each
 * transaction to the device before it asks for the next, so one assembly
 * buffer serves them all (no new array per transaction).
 */
export interface RestoreOptions extends StreamItemsOptions, Pick<ResumeOptions, "start" | "signal" | "onProgress"> {
  /** Called once, just before the first access to the device. */
  onTouch?: () => void;
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
  const items = streamItems(source, { ...options, reuseOutput: options.reuseOutput ?? true });
  try {
    // The first item needs the header and the first device frames, checked.
    const first = await items.next();
    options.onTouch?.();
    return await resumeAny(region, prepend(first, items), { start: options.start, signal: options.signal, onProgress: options.onProgress });
  } finally {
    await items.return(undefined).catch(() => {});
  }
}

async function* prepend(first: IteratorResult<ResumeItem>, rest: AsyncIterator<ResumeItem>): AsyncGenerator<ResumeItem> {
  if (first.done) return;
  yield first.value;
  for (;;) {
    const r = await rest.next();
    if (r.done) return;
    yield r.value;
  }
}
