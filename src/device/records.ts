// The simulated device's own transaction records (opaque to users, like a real
// vendor's). Every transaction is self-describing, so the destination device
// detects a corrupted, reordered, missing or foreign transaction when the user
// writes data_size, and rejects it with EINVAL:
//
//   transaction header (32 bytes, little-endian)
//     0 u32 magic "SIMT"      4 u32 seq (0, 1, 2... within a save session)
//     8 u32 session id       12 u32 payload length
//    16 u64 xxh3-64 of the payload (0 when checksums are off)
//    24 u32 flags (bit 0: checksum present; bit 1: the previous seq may be
//       missing — a pre-copy buffer the user read but never acknowledged)
//    28 u32 zero
//   payload: records
//     DATA  (16 + n bytes): u32 type 1, u32 n, u64 image offset, n bytes
//     END   (32 bytes):     u32 type 2, u32 transactions in the session (incl. this one),
//                           u64 image size, u64 image digest (xxh3-64, 0 if off), u64 flags (bit 0: digest present)
//   END is the last record of the last stop-and-copy transaction.
import { xxh3_64 } from "../kernels/xxh3.js";

const TXN_MAGIC = 0x544d4953; // "SIMT"
export const TXN_HEADER = 32;
export const DATA_RECORD = 16;
export const END_RECORD = 32;
export const REC_DATA = 1;
export const REC_END = 2;
const FLAG_CHECKSUM = 1;
const FLAG_PREV_OPTIONAL = 2;
const FLAG_DIGEST = 1;
/** Smallest transaction that can carry progress: header, a DATA record and one byte, or END. */
export const MIN_TXN = TXN_HEADER + END_RECORD;

/** A decoded END record. */
export interface EndRecord {
  transactions: number;
  imageSize: number;
  digest: bigint | undefined;
}

/** Writes a transaction header for `payloadLength` bytes of payload following it in `buf`. */
export function writeTxnHeader(
  buf: Uint8Array,
  at: number,
  seq: number,
  session: number,
  payloadLength: number,
  checksum: boolean,
  prevOptional = false,
): void {
  const dv = new DataView(buf.buffer, buf.byteOffset + at, TXN_HEADER);
  dv.setUint32(0, TXN_MAGIC, true);
  dv.setUint32(4, seq, true);
  dv.setUint32(8, session, true);
  dv.setUint32(12, payloadLength, true);
  const sum = checksum ? xxh3_64(buf.subarray(at + TXN_HEADER, at + TXN_HEADER + payloadLength)) : 0n;
  dv.setBigUint64(16, sum, true);
  dv.setUint32(24, (checksum ? FLAG_CHECKSUM : 0) | (prevOptional ? FLAG_PREV_OPTIONAL : 0), true);
  dv.setUint32(28, 0, true);
}

export function writeDataRecordHeader(buf: Uint8Array, at: number, length: number, imageOffset: number): void {
  const dv = new DataView(buf.buffer, buf.byteOffset + at, DATA_RECORD);
  dv.setUint32(0, REC_DATA, true);
  dv.setUint32(4, length, true);
  dv.setBigUint64(8, BigInt(imageOffset), true);
}

export function writeEndRecord(buf: Uint8Array, at: number, end: EndRecord): void {
  const dv = new DataView(buf.buffer, buf.byteOffset + at, END_RECORD);
  dv.setUint32(0, REC_END, true);
  dv.setUint32(4, end.transactions, true);
  dv.setBigUint64(8, BigInt(end.imageSize), true);
  dv.setBigUint64(16, end.digest ?? 0n, true);
  dv.setBigUint64(24, end.digest === undefined ? 0n : BigInt(FLAG_DIGEST), true);
}

/** One parsed transaction: DATA records as (image offset, payload range), and END if present. */
export interface ParsedTxn {
  seq: number;
  session: number;
  prevOptional: boolean;
  data: Array<{ imageOffset: number; start: number; length: number }>;
  end: EndRecord | undefined;
}

/**
 * Parses and checks a whole transaction (`txn` = exactly what the user wrote)
 * before anything is applied. Returns the reason it is rejected as a string.
 */
export function parseTxn(txn: Uint8Array, imageSize: number): ParsedTxn | string {
  if (txn.length < TXN_HEADER) return `transaction of ${txn.length} bytes is shorter than its header`;
  const dv = new DataView(txn.buffer, txn.byteOffset, txn.byteLength);
  if (dv.getUint32(0, true) !== TXN_MAGIC) return "bad transaction magic";
  const seq = dv.getUint32(4, true);
  const session = dv.getUint32(8, true);
  const payloadLength = dv.getUint32(12, true);
  if (payloadLength !== txn.length - TXN_HEADER)
    return `payload length ${payloadLength} does not match data_size ${txn.length}`;
  const flags = dv.getUint32(24, true);
  if (flags & ~(FLAG_CHECKSUM | FLAG_PREV_OPTIONAL) || dv.getUint32(28, true) !== 0) return "bad transaction flags";
  if (flags & FLAG_CHECKSUM) {
    if (xxh3_64(txn.subarray(TXN_HEADER)) !== dv.getBigUint64(16, true))
      return `checksum mismatch in transaction ${seq}`;
  } else if (dv.getBigUint64(16, true) !== 0n) return "checksum field set without the flag";
  const out: ParsedTxn = { seq, session, prevOptional: (flags & FLAG_PREV_OPTIONAL) !== 0, data: [], end: undefined };
  let at = TXN_HEADER;
  while (at < txn.length) {
    if (out.end) return "record after END";
    if (txn.length - at < 8) return `truncated record at ${at}`;
    const type = dv.getUint32(at, true);
    if (type === REC_DATA) {
      if (txn.length - at < DATA_RECORD) return `truncated DATA record at ${at}`;
      const length = dv.getUint32(at + 4, true);
      const imageOffset = Number(dv.getBigUint64(at + 8, true));
      const start = at + DATA_RECORD;
      if (length === 0 || length > txn.length - start) return `DATA record at ${at} overruns the transaction`;
      if (imageOffset > imageSize || length > imageSize - imageOffset)
        return `DATA record at ${at} is outside the ${imageSize}-byte state`;
      out.data.push({ imageOffset, start, length });
      at = start + length;
    } else if (type === REC_END) {
      if (txn.length - at < END_RECORD) return `truncated END record at ${at}`;
      const f = dv.getBigUint64(at + 24, true);
      if (f & ~BigInt(FLAG_DIGEST)) return "bad END flags";
      out.end = {
        transactions: dv.getUint32(at + 4, true),
        imageSize: Number(dv.getBigUint64(at + 8, true)),
        digest: f ? dv.getBigUint64(at + 16, true) : undefined,
      };
      at += END_RECORD;
    } else return `unknown record type ${type} at ${at}`;
  }
  return out;
}
