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

/**
 * Reads `size` bytes at region `offset` into `into` (length ≥ size) and returns
 * `into.subarray(0, size)`.
 */
export async function readData(io: RegionIO, offset: number, size: number, into: Uint8Array, step: string): Promise<Uint8Array> {
  const max = pieceSize(io);
  for (let done = 0; done < size; ) {
    const n = Math.min(max, size - done);
    const dst = into.subarray(done, done + n);
    let got: Uint8Array;
    try {
      got = await io.read(offset + done, n, dst);
    } catch (e) {
      throw atStep(e, step, "data");
    }
    if (got.length !== n) {
      throw new MigstreamError("TRANSPORT", `${step}: short read (${got.length} of ${n} bytes at region offset ${offset + done})`, {
        step,
        field: "data",
        offset: offset + done,
      });
    }
    // A transport that ignored `into` still gave us the bytes: land them there.
    if (got.buffer !== dst.buffer || got.byteOffset !== dst.byteOffset) dst.set(got);
    done += n;
  }
  return into.subarray(0, size);
}

/** Writes all of `data` at region `offset`. */
export async function writeData(io: RegionIO, offset: number, data: Uint8Array, step: string): Promise<void> {
  const max = pieceSize(io);
  for (let done = 0; done < data.length; ) {
    const n = Math.min(max, data.length - done);
    try {
      await io.write(offset + done, data.subarray(done, done + n));
    } catch (e) {
      throw atStep(e, step, "data");
    }
    done += n;
  }
}
