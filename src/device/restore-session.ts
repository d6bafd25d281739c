// The vendor side of one resume session: checks each transaction as the user
// writes data_size (layout, checksum, order) and applies it to the image;
// on RESUMING → RUNNING checks the state is complete (END seen, digest).
import { xxh3_64 } from "../kernels/xxh3.js";
import type { DeviceImage } from "./image.js";
import { type EndRecord, parseTxn } from "./records.js";

export interface TxnRecord {
  seq: number;
  size: number;
}

export class RestoreSession {
  #expect = 0;
  #session: number | undefined;
  end: EndRecord | undefined;
  readonly received: TxnRecord[] = [];

  /** Applies one transaction (exactly the bytes the user wrote); returns why it is rejected, if it is. */
  apply(txn: Uint8Array, image: DeviceImage): string | undefined {
    const t = parseTxn(txn, image.size);
    if (typeof t === "string") return t;
    if (this.end) return `transaction ${t.seq} after the END record`;
    if (this.#session !== undefined && t.session !== this.#session)
      return `transaction from another save session (${t.session}, expected ${this.#session})`;
    const ok = t.seq === this.#expect || (t.prevOptional && t.seq === this.#expect + 1);
    if (!ok) return `transaction ${t.seq} out of order (expected ${this.#expect})`;
    if (t.end && t.end.imageSize !== image.size)
      return `state size ${t.end.imageSize} does not match this device's ${image.size}`;
    if (t.end && t.end.transactions !== t.seq + 1)
      return `END record counts ${t.end.transactions} transactions at seq ${t.seq}`;
    for (const d of t.data) image.bytes.set(txn.subarray(d.start, d.start + d.length), d.imageOffset);
    if (t.data.length > 0) image.pristine = false;
    this.#session = t.session;
    this.#expect = t.seq + 1;
    this.end = t.end;
    this.received.push({ seq: t.seq, size: txn.length });
    return undefined;
  }

  /** RESUMING → RUNNING: why the state cannot be started, if it cannot. */
  finish(image: DeviceImage, checkDigest: boolean): string | undefined {
    if (!this.end) return "no END record: the restored state is incomplete";
    if (checkDigest && this.end.digest !== undefined && xxh3_64(image.bytes) !== this.end.digest)
      return "restored state digest mismatch";
    return undefined;
  }
}
