// The v2 data stream: reads that fill a buffer from the device's stream
// (short reads continue; 0 or ENOMSG ends the fill), and writes that loop
// until the device took every byte (cases 9–12, 18, 26).
import { MigstreamError } from "../../errors.js";
import { atStep, protocolError } from "../failure.js";
import type { DataChannel } from "./device-io.js";

/** How data accesses are cut: at most `piece` bytes each, or exactly `piece` when `fixed`. */
export interface Access {
  piece: number;
  fixed: boolean;
}

/** Why a fill stopped before the buffer was full. */
export type FillEnd = "full" | "nothing-now" | "end";

function isEnomsg(e: unknown): boolean {
  return e instanceof MigstreamError && e.errno === "ENOMSG";
}

/**
 * Reads the stream into `buf` until it is full, or a read returns 0 (STOP_COPY:
 * the end; PRE_COPY: nothing now) or, in PRE_COPY, fails with ENOMSG (nothing
 * now). Returns the bytes read and why it stopped. ENOMSG in STOP_COPY is a
 * PROTOCOL error (the UAPI does not allow it there).
 */
export async function fillBuffer(
  ch: DataChannel,
  buf: Uint8Array,
  a: Access,
  precopy: boolean,
  step: string,
): Promise<{ n: number; end: FillEnd }> {
  let n = 0;
  for (;;) {
    const room = buf.length - n;
    const ask = a.fixed ? a.piece : Math.min(a.piece, room);
    if (room <= 0 || ask > room) return { n, end: "full" };
    let got: number;
    try {
      got = await ch.read(buf.subarray(n, n + ask));
    } catch (e) {
      if (isEnomsg(e)) {
        if (precopy) return { n, end: "nothing-now" };
        throw protocolError(step, "data", "the device answered ENOMSG in STOP_COPY, where only 0 may end the stream");
      }
      throw atStep(e, step, "data");
    }
    if (!Number.isInteger(got) || got < 0 || got > ask)
      throw protocolError(step, "data", `read returned ${got} for a ${ask}-byte read`);
    if (got === 0) return { n, end: precopy ? "nothing-now" : "end" };
    n += got;
  }
}

/**
 * Writes all of `data` (cut as `a` says), resending what a short write left
 * (case 18). A write that takes 0 bytes is EIO. With `errorsApplied`, an
 * EINVAL answer counts as the whole piece taken (a declared device quirk;
 * RESUMING → STOP validates).
 */
export async function writeAll(
  ch: DataChannel,
  data: Uint8Array,
  a: Access,
  errorsApplied: boolean,
  step: string,
): Promise<void> {
  for (let done = 0; done < data.length; ) {
    const piece = data.subarray(done, Math.min(data.length, done + a.piece));
    if (a.fixed && piece.length !== a.piece) {
      throw new MigstreamError(
        "PROTOCOL",
        `${step}: ${piece.length} bytes left for a device that takes exactly ${a.piece} per write`,
        { step, field: "data" },
      );
    }
    let took: number;
    try {
      took = await ch.write(piece);
    } catch (e) {
      if (!(errorsApplied && e instanceof MigstreamError && e.errno === "EINVAL")) throw atStep(e, step, "data");
      took = piece.length;
    }
    if (!Number.isInteger(took) || took < 0 || took > piece.length)
      throw protocolError(step, "data", `write returned ${took} for ${piece.length} bytes`);
    if (took === 0)
      throw new MigstreamError("DEVICE", `${step}: the device took 0 of ${piece.length} bytes`, {
        step,
        field: "data",
        errno: "EIO",
      });
    done += took;
  }
}
