// Where things happen along a stream, for `inspect --html`: each device's
// phases as spans of stream bytes, and every chunk's codec and sizes at its
// offset. The stream carries no clock, so position in the stream (the order in
// which a migration wrote it) stands for time.
import { codecName } from "../codec/ids.js";
import type { DecodeEvent } from "../format/types.js";
import type { Phase } from "../protocol/types.js";

/** One PHASE of one device: from its frame to the device's next PHASE or DEVICE_END. */
export interface PhaseSpan {
  device: number;
  phase: Phase;
  iteration: number;
  start: number;
  end: number;
  transactions: number;
  rawBytes: number;
  codedBytes: number;
}

export interface ChunkMark {
  offset: number;
  codec: string;
  rawLength: number;
  codedLength: number;
}

export interface Timeline {
  spans: PhaseSpan[];
  chunks: ChunkMark[];
  /** Device ids and names, in the order they began. */
  devices: { id: number; name: string }[];
  /** Stream bytes read. */
  length: number;
}

/** Feed it every decoder event; read `result(offset)` at the end (or after a failure). */
export class TimelineCollector {
  #spans: PhaseSpan[] = [];
  #open = new Map<number, PhaseSpan>();
  #chunks: ChunkMark[] = [];
  #devices: { id: number; name: string }[] = [];

  add(ev: DecodeEvent): void {
    switch (ev.type) {
      case "device":
        this.#devices.push({ id: ev.device, name: ev.name });
        break;
      case "phase": {
        this.#close(ev.device, ev.offset);
        const span = {
          device: ev.device,
          phase: ev.phase,
          iteration: ev.iteration,
          start: ev.offset,
          end: ev.offset,
          transactions: 0,
          rawBytes: 0,
          codedBytes: 0,
        };
        this.#spans.push(span);
        this.#open.set(ev.device, span);
        break;
      }
      case "transaction": {
        const s = this.#open.get(ev.device);
        if (s) s.transactions++;
        break;
      }
      case "chunk": {
        this.#chunks.push({
          offset: ev.offset,
          codec: codecName(ev.codec),
          rawLength: ev.rawLength,
          codedLength: ev.codedLength,
        });
        const s = this.#open.get(ev.device);
        if (s) {
          s.rawBytes += ev.rawLength;
          s.codedBytes += ev.codedLength;
        }
        break;
      }
      case "device-end":
        this.#close(ev.device, ev.offset);
        break;
    }
  }

  #close(device: number, at: number): void {
    const s = this.#open.get(device);
    if (s) s.end = at;
    this.#open.delete(device);
  }

  /** The timeline; spans still open (a damaged stream) end at `length`. */
  result(length: number): Timeline {
    for (const d of [...this.#open.keys()]) this.#close(d, length);
    return { spans: this.#spans, chunks: this.#chunks, devices: this.#devices, length };
  }
}
