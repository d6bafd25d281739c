// The data section: one access per buffer when the transport allows it, split
// at `maxAccess` otherwise (the spec allows any split; some vendors require the
// whole buffer in one access, so we split only when we must).
import { MigstreamError } from "../errors.js";
import { atStep } from "./failure.js";
import type { RegionIO } from "./region-io.js";

/** Largest piece the transport carries (whole numbers; Infinity stays Infinity). */
function pieceSize(io: RegionIO): number {
  return Number.isFinite(io.maxAccess) ? Math.floor(io.maxAccess) : Infinity;
}

/** One piece of a data read: lands in `dst`. */
async function readPiece(io: RegionIO, at: number, dst: Uint8Array, step: string): Promise<void> {
  const n = dst.length;
  let got: Uint8Array;
  try {
    got = await io.read(at, n, dst);
  } catch (e) {
    throw atStep(e, step, "data");
  }
  if (got.length !== n) {
    throw new MigstreamError("TRANSPORT", `${step}: short read (${got.length} of ${n} bytes at region offset ${at})`, {
      step,
      field: "data",
      offset: at,
    });
  }
  // A transport that ignored `into` still gave us the bytes: land them there.
  if (got.buffer !== dst.buffer || got.byteOffset !== dst.byteOffset) dst.set(got);
}

async function writePiece(io: RegionIO, at: number, src: Uint8Array, step: string): Promise<void> {
  try {
    await io.write(at, src);
  } catch (e) {
    throw atStep(e, step, "data");
  }
}

/**
 * Waits for accesses issued together, in issue order; rejects with the first
 * failure (later ones are then ignored: they ran after it on the device).
 */
async function inOrder(all: readonly Promise<unknown>[]): Promise<void> {
  for (let i = 0; i < all.length; i++) {
    try {
      await all[i];
    } catch (e) {
      for (let j = i + 1; j < all.length; j++) all[j].catch(() => {});
      throw e;
    }
  }
}

/**
 * Reads `size` bytes at region `offset` into `into` (length ≥ size) and returns
 * `into.subarray(0, size)`. On a pipelined transport every piece is issued at
 * once (before this returns its promise), so an access issued right after the
 * call follows the last piece.
 */
export function readData(
  io: RegionIO,
  offset: number,
  size: number,
  into: Uint8Array,
  step: string,
): Promise<Uint8Array> {
  const max = pieceSize(io);
  if (io.pipelined === true) {
    const pieces: Promise<void>[] = [];
    for (let done = 0; done < size; done += max)
      pieces.push(readPiece(io, offset + done, into.subarray(done, Math.min(size, done + max)), step));
    return inOrder(pieces).then(() => into.subarray(0, size));
  }
  return (async () => {
    for (let done = 0; done < size; done += max)
      await readPiece(io, offset + done, into.subarray(done, Math.min(size, done + max)), step);
    return into.subarray(0, size);
  })();
}

/**
 * Writes all of `data` at region `offset`. On a pipelined transport every
 * piece is issued at once, as in readData.
 */
export function writeData(io: RegionIO, offset: number, data: Uint8Array, step: string): Promise<void> {
  const max = pieceSize(io);
  const n = data.length;
  if (io.pipelined === true) {
    const pieces: Promise<void>[] = [];
    for (let done = 0; done < n; done += max)
      pieces.push(writePiece(io, offset + done, data.subarray(done, Math.min(n, done + max)), step));
    return inOrder(pieces);
  }
  return (async () => {
    for (let done = 0; done < n; done += max)
      await writePiece(io, offset + done, data.subarray(done, Math.min(n, done + max)), step);
  })();
}
