// Web Streams and async-iterable forms, shaped like CompressionStream:
//   raw bytes ──MigrationEncoderStream──▶ stream bytes ──MigrationDecoderStream──▶ raw bytes
// The encoder turns its input into one device's stop-and-copy transactions of
// `transactionSize` bytes (the last may be shorter); the decoder yields the
// raw bytes of one device's transactions, chunk by chunk, each after its
// checks (and MAC) passed. Memory: one transaction buffer (encoder), one frame
// and one chunk (decoder), plus dedup windows.

import { init } from "../codec/index.js";
import { MigstreamError } from "../errors.js";
import { DEFAULT_TRANSACTION_SIZE, MAX_TRANSACTION_SIZE } from "./constants.js";
import { type DecoderOptions, StreamDecoder } from "./decoder.js";
import { type DeviceWriter, type EncoderOptions, StreamEncoder } from "./encoder.js";
import type { DecodeEvent, DeviceInfo } from "./types.js";

/** StreamEncoder's options, the device's name and metadata, and how the input is cut. */
export interface EncoderStreamOptions extends EncoderOptions, DeviceInfo {
  /** Bytes per transaction; default DEFAULT_TRANSACTION_SIZE. Also the declared maxTransaction unless given. */
  transactionSize?: number;
  /** Device id; default 0. */
  device?: number;
}

/** StreamDecoder's options, and which device's bytes to yield. */
export interface DecoderStreamOptions extends DecoderOptions {
  /** Which device's bytes to yield; default the stream's only device (USAGE if it has several). */
  device?: number;
}

/** Raw bytes in, stream bytes out: one device's stop-and-copy transactions of `transactionSize` bytes. */
export class MigrationEncoderStream extends TransformStream<Uint8Array, Uint8Array> {
  /** Throws USAGE for bad options (those of StreamEncoder, and transactionSize). */
  constructor(options: EncoderStreamOptions = {}) {
    const size = options.transactionSize ?? DEFAULT_TRANSACTION_SIZE;
    if (!Number.isInteger(size) || size < 1 || size > MAX_TRANSACTION_SIZE) {
      throw new MigstreamError(
        "USAGE",
        `transactionSize must be an integer in 1..${MAX_TRANSACTION_SIZE}, got ${size}`,
        { field: "transactionSize" },
      );
    }
    let out: TransformStreamDefaultController<Uint8Array> | null = null;
    const enc = new StreamEncoder((b) => out!.enqueue(b), {
      ...options,
      maxTransaction: options.maxTransaction ?? size,
      maxDevices: options.maxDevices ?? 1,
    });
    let dev: DeviceWriter | null = null;
    let buf: Uint8Array | null = null;
    let fill = 0;
    super({
      start: async (c) => {
        out = c;
        dev = enc.device(options.device ?? 0, { name: options.name, metadata: options.metadata });
        await dev.phase("stopcopy", 0);
      },
      transform: async (piece, c) => {
        out = c;
        if (!(piece instanceof Uint8Array))
          throw new MigstreamError("USAGE", "MigrationEncoderStream takes Uint8Array chunks");
        let at = 0;
        // Whole transactions straight from the input when nothing is buffered.
        while (fill === 0 && piece.length - at >= size) {
          await dev!.transaction(piece.subarray(at, at + size));
          at += size;
        }
        while (at < piece.length) {
          buf ??= new Uint8Array(size);
          const n = Math.min(size - fill, piece.length - at);
          buf.set(piece.subarray(at, at + n), fill);
          fill += n;
          at += n;
          if (fill === size) {
            await dev!.transaction(buf);
            fill = 0;
          }
        }
      },
      flush: async (c) => {
        out = c;
        if (fill > 0) await dev!.transaction(buf!.subarray(0, fill));
        await dev!.end();
        await enc.finish();
      },
    });
  }
}

/** Stream bytes in, one device's raw bytes out, each chunk after its checks (and MAC) passed. */
export class MigrationDecoderStream extends TransformStream<Uint8Array, Uint8Array> {
  /** Throws USAGE for bad options (those of StreamDecoder, and device). */
  constructor(options: DecoderStreamOptions = {}) {
    const dec = new StreamDecoder({ ...options, assemble: false, verifyOnly: false });
    const want = options.device;
    let chosen: number | null = want ?? null;
    const emit = (ev: DecodeEvent, c: TransformStreamDefaultController<Uint8Array>) => {
      if (ev.type === "device" && want === undefined) {
        if (chosen !== null) {
          throw new MigstreamError(
            "USAGE",
            `the stream carries several devices (${chosen}, ${ev.device}): pass { device }`,
            {
              device: ev.device,
            },
          );
        }
        chosen = ev.device;
      } else if (ev.type === "chunk" && ev.device === chosen && ev.data !== undefined) {
        c.enqueue(ev.data);
      }
    };
    super({
      start: async () => {
        await init();
      },
      transform: async (piece, c) => {
        if (!(piece instanceof Uint8Array))
          throw new MigstreamError("USAGE", "MigrationDecoderStream takes Uint8Array chunks");
        for await (const ev of dec.writeAsync(piece)) emit(ev, c);
      },
      flush: async (c) => {
        for await (const ev of dec.end()) emit(ev, c);
      },
    });
  }
}
