// Decoded stream → the resume driver's items for one device: first its
// protocol record (v1 when the stream has none), then phases and transactions.
// A transaction is handed on only after all its chunks passed their checks
// (and their frames' MACs, when keyed); `verified` only after STREAM_END and
// every trailer and digest checked. The byte source is pulled as the device consumes, so a slow
// device slows the reader (backpressure) and nothing is held but one frame and
// one transaction.
//
// The stream ends at its verified STREAM_END frame, not at the end of the
// input (FORMAT.md §2): `verified` follows STREAM_END at once, without
// waiting for the source to end — a network peer may hold its connection
// open for the answer. Input bytes already read past the end are counted
// (`onEnd`) for the caller to report; they are not part of the stream.
import { MigstreamError } from "../errors.js";
import { type DecoderOptions, StreamDecoder } from "../format/decoder.js";
import type { DecodeEvent } from "../format/types.js";
import type { ResumeItem } from "../protocol/types.js";

export interface StreamItemsOptions extends Omit<DecoderOptions, "verifyOnly" | "assemble"> {
  /** The device to take from the stream; default: the stream's only (or first) device. */
  device?: number;
  /** Called with every decoder event (inspection, progress). */
  onEvent?: (ev: DecodeEvent) => void;
  /** Called once STREAM_END verified, before `verified` is handed on. */
  onEnd?: (end: StreamEnd) => void;
}

/** Where a verified stream ended in its input. */
export interface StreamEnd {
  /** The stream's length in bytes (header to STREAM_END). */
  streamBytes: number;
  /** Input bytes already read that follow STREAM_END (not part of the stream). */
  trailingBytes: number;
}

/**
 * Items for `resume()` from a stream's bytes. Other devices in the stream are
 * verified and skipped. With `reuseOutput`, every transaction's data is a view
 * of one reused buffer, valid until the next item is asked for (as resume()
 * consumes them).
 */
export async function* streamItems(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: StreamItemsOptions = {},
): AsyncGenerator<ResumeItem> {
  const dec = new StreamDecoder({ ...options, assemble: true });
  let device = options.device ?? -1;
  let seen = false;
  let read = 0;
  /** The protocol item went out (it precedes the device's first phase; none in the stream: v1). */
  let told = false;
  let ended = false;
  async function* take(events: AsyncIterable<DecodeEvent>): AsyncGenerator<ResumeItem> {
    for await (const ev of events) {
      options.onEvent?.(ev);
      switch (ev.type) {
        case "device":
          if (device < 0) device = ev.device;
          if (ev.device === device) seen = true;
          break;
        case "protocol":
          if (ev.device === device) {
            told = true;
            yield { kind: "protocol", protocol: ev.protocol };
          }
          break;
        case "phase":
          if (ev.device !== device) break;
          if (!told) {
            told = true;
            yield { kind: "protocol", protocol: { generation: 1 } };
          }
          yield { kind: "phase", phase: ev.phase, iteration: ev.iteration };
          break;
        case "transaction-end":
          if (ev.device === device) yield { kind: "transaction", data: ev.data! };
          break;
        case "end":
          if (!seen) {
            throw new MigstreamError(
              "FORMAT",
              device < 0 ? "the stream holds no device" : `the stream holds no device ${device}`,
              {
                device: device < 0 ? undefined : device,
              },
            );
          }
          // Complete and verified: what follows in the input is not ours to read.
          options.onEnd?.({ streamBytes: dec.offset, trailingBytes: read - dec.offset });
          if (!told) yield { kind: "protocol", protocol: { generation: 1 } };
          yield { kind: "verified" };
          ended = true;
          return;
      }
    }
  }
  for await (const piece of source) {
    read += piece.length;
    yield* take(dec.writeAsync(piece));
    if (ended) return;
  }
  // With a pool, the events still pending; then TRUNCATED: the input ended before STREAM_END.
  yield* take(dec.end());
  if (!ended) throw new MigstreamError("INTERNAL", "the decoder accepted an input that ended without STREAM_END");
}
