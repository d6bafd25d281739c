// Public shapes of the format API: encoder inputs, decoded results, trailers
// and the events a decoder emits.

import type { MigrationProtocol, Phase } from "../protocol/types.js";
import type { StreamHeader } from "./header.js";

export type { StreamHeader };

/** What a device announces in its DEVICE_BEGIN frame. */
export interface DeviceInfo {
  /** Up to 255 UTF-8 bytes. */
  name?: string;
  /** Opaque bytes for the destination (ids, config space, ...). */
  metadata?: Uint8Array;
  /** Which VFIO migration protocol produced the data (default v1, which the stream records by leaving it out). */
  protocol?: MigrationProtocol;
}

/** One item of a device's saved state, in order. */
export type DeviceItem = { kind: "phase"; phase: Phase; iteration: number } | { kind: "transaction"; data: Uint8Array };

/** One device for the one-shot encoder. */
export interface DeviceInput extends DeviceInfo {
  /** Device id, 0..65535, unique in the stream. */
  id: number;
  items: DeviceItem[];
}

export interface DeviceTrailer {
  frames: number;
  transactions: number;
  chunks: number;
  rawBytes: number;
  codedBytes: number;
  digest: bigint;
}

export interface StreamTrailer {
  frames: number;
  devices: number;
  transactions: number;
  chunks: number;
  rawBytes: number;
  codedBytes: number;
  framesDigest: bigint;
}

export interface DecodedDevice {
  id: number;
  name: string;
  metadata: Uint8Array;
  /** The device's DEVICE_PROTOCOL record ({ generation: 1 } without one). */
  protocol: MigrationProtocol;
  items: DeviceItem[];
  trailer: DeviceTrailer;
}

export interface DecodedStream {
  header: StreamHeader;
  devices: DecodedDevice[];
  trailer: StreamTrailer;
}

/** Where an event's frame starts in the stream, and its sequence number. */
interface At {
  frame: number;
  offset: number;
}

/**
 * What a decoder emits, in stream order. Every event comes only after its
 * frame passed all checks (and its MAC); `chunk` data only after its raw hash
 * matched; `device-end` only after the device trailer and digest matched.
 */
export type DecodeEvent =
  | { type: "header"; header: StreamHeader }
  | ({ type: "device"; device: number; name: string; metadata: Uint8Array } & At)
  | ({ type: "protocol"; device: number; protocol: MigrationProtocol } & At)
  | ({ type: "phase"; device: number; phase: Phase; iteration: number } & At)
  | ({ type: "transaction"; device: number; size: number; chunks: number } & At)
  | ({
      type: "chunk";
      device: number;
      codec: number;
      level: number;
      rawLength: number;
      codedLength: number;
      /** The decoded bytes; absent when verifying without decompression. */
      data?: Uint8Array;
    } & At)
  | ({
      type: "transaction-end";
      device: number;
      size: number;
      /** The whole transaction, when the decoder assembles transactions. */
      data?: Uint8Array;
    } & At)
  | ({ type: "device-end"; device: number; trailer: DeviceTrailer } & At)
  | ({ type: "skipped"; frameType: number; device: number; length: number } & At)
  | ({ type: "end"; trailer: StreamTrailer } & At);
