// What a stream holds, gathered from a decoder's events: devices, phases,
// transactions, the codec mix, and the sizes a report compares — raw bytes,
// bytes on the wire, and QEMU's raw layout (each buffer with its markers).
import { CODEC_DEDUP_REF, CODEC_ZERO, codecName } from "../codec/ids.js";
import { FLAG_BOUND, MAC_AES_256_GCM } from "../format/constants.js";
import type { DecodeEvent, StreamHeader } from "../format/types.js";
import type { Phase } from "../protocol/types.js";

/**
 * The baseline size of QEMU's VFIO stream: the raw buffers plus this many
 * bytes per buffer for its 64-bit markers and size fields (no compression,
 * no integrity check).
 */
export const QEMU_BUFFER_OVERHEAD = 24;

export interface CodecUse {
  chunks: number;
  rawBytes: number;
  codedBytes: number;
}

export interface PhaseStats {
  phase: Phase;
  iteration: number;
  transactions: number;
  rawBytes: number;
  codedBytes: number;
}

export interface DeviceStats {
  id: number;
  name: string;
  metadataBytes: number;
  /** Which VFIO migration protocol saved it: "v1" (no record) or "v2"; `restartsAtStopCopy` for a v2 device that restarts its stream. */
  protocol: "v1" | "v2";
  restartsAtStopCopy?: boolean;
  phases: PhaseStats[];
  transactions: number;
  chunks: number;
  rawBytes: number;
  codedBytes: number;
}

export interface StreamStats {
  header: {
    version: string;
    /** Keyed: every frame authenticated. */
    mac: boolean;
    /** Every frame sealed with AES-256-GCM (mac_alg 2). */
    encrypted: boolean;
    /** Bound to a connection's challenge (FORMAT.md §7.1). */
    bound: boolean;
    streamId: string;
    maxFrame: number;
    maxChunk: number;
    maxTransaction: number;
    dedupWindow: number;
    maxDevices: number;
  } | null;
  devices: DeviceStats[];
  /** By codec name (raw, zero, lz4, zstd, dedup-ref). */
  codecs: Record<string, CodecUse>;
  transactions: number;
  chunks: number;
  rawBytes: number;
  /** Bytes of chunk payloads (coded_length sums). */
  codedBytes: number;
  /** Stream bytes in total (headers, frames, checks, tags). */
  wireBytes: number;
  /** The same data in QEMU's raw layout: raw + QEMU_BUFFER_OVERHEAD per transaction. */
  qemuBytes: number;
  /** Raw bytes sent as ZERO chunks (no payload). */
  zeroBytes: number;
  /** Raw bytes sent as dedup references. */
  dedupBytes: number;
  /** rawBytes / wireBytes (0 for an empty stream). */
  ratio: number;
  /** STREAM_END was read and verified. */
  complete: boolean;
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

function headerStats(h: StreamHeader): NonNullable<StreamStats["header"]> {
  return {
    version: `${h.versionMajor}.${h.versionMinor}`,
    mac: h.macAlg !== 0,
    encrypted: h.macAlg === MAC_AES_256_GCM,
    bound: (h.flags & FLAG_BOUND) !== 0,
    streamId: hex(h.streamId),
    maxFrame: h.maxFrame,
    maxChunk: h.maxChunk,
    maxTransaction: h.maxTransaction,
    dedupWindow: h.dedupWindow,
    maxDevices: h.maxDevices,
  };
}

/** Feed it every decoder event; read `result(wireBytes)` at the end. */
export class StatsCollector {
  #header: StreamStats["header"] = null;
  #devices = new Map<number, DeviceStats>();
  #codecs: Record<string, CodecUse> = {};
  #complete = false;
  #totals = { transactions: 0, chunks: 0, rawBytes: 0, codedBytes: 0, zeroBytes: 0, dedupBytes: 0 };

  add(ev: DecodeEvent): void {
    switch (ev.type) {
      case "header":
        this.#header = headerStats(ev.header);
        break;
      case "device":
        this.#devices.set(ev.device, {
          id: ev.device,
          name: ev.name,
          metadataBytes: ev.metadata.length,
          protocol: "v1",
          phases: [],
          transactions: 0,
          chunks: 0,
          rawBytes: 0,
          codedBytes: 0,
        });
        break;
      case "protocol": {
        const d = this.#devices.get(ev.device);
        if (d && ev.protocol.generation === 2) {
          d.protocol = "v2";
          d.restartsAtStopCopy = ev.protocol.restartsAtStopCopy;
        }
        break;
      }
      case "phase":
        this.#devices
          .get(ev.device)
          ?.phases.push({ phase: ev.phase, iteration: ev.iteration, transactions: 0, rawBytes: 0, codedBytes: 0 });
        break;
      case "transaction": {
        const d = this.#devices.get(ev.device);
        if (!d) break;
        d.transactions++;
        this.#totals.transactions++;
        const p = d.phases.at(-1);
        if (p) p.transactions++;
        break;
      }
      case "chunk": {
        const d = this.#devices.get(ev.device);
        if (!d) break;
        const name = codecName(ev.codec);
        this.#codecs[name] ??= { chunks: 0, rawBytes: 0, codedBytes: 0 };
        const c = this.#codecs[name];
        c.chunks++;
        c.rawBytes += ev.rawLength;
        c.codedBytes += ev.codedLength;
        d.chunks++;
        d.rawBytes += ev.rawLength;
        d.codedBytes += ev.codedLength;
        const p = d.phases.at(-1);
        if (p) {
          p.rawBytes += ev.rawLength;
          p.codedBytes += ev.codedLength;
        }
        const t = this.#totals;
        t.chunks++;
        t.rawBytes += ev.rawLength;
        t.codedBytes += ev.codedLength;
        if (ev.codec === CODEC_ZERO) t.zeroBytes += ev.rawLength;
        if (ev.codec === CODEC_DEDUP_REF) t.dedupBytes += ev.rawLength;
        break;
      }
      case "end":
        this.#complete = true;
        break;
    }
  }

  result(wireBytes: number): StreamStats {
    const t = this.#totals;
    return {
      header: this.#header,
      devices: [...this.#devices.values()],
      codecs: this.#codecs,
      ...t,
      wireBytes,
      qemuBytes: t.rawBytes + QEMU_BUFFER_OVERHEAD * t.transactions,
      ratio: wireBytes > 0 ? t.rawBytes / wireBytes : 0,
      complete: this.#complete,
    };
  }
}
