// The simulated device's own transaction records (records.ts): a destination must detect a
// corrupted, truncated or malformed transaction before applying anything.
import { describe, expect, it } from "vitest";
import {
  DATA_RECORD,
  END_RECORD,
  parseTxn,
  TXN_HEADER,
  writeDataRecordHeader,
  writeEndRecord,
  writeTxnHeader,
} from "../../src/device/records.js";

const IMAGE = 16384;

/** A transaction with one DATA record (`n` bytes at image offset `at`) and optionally END. */
function txn(n: number, at: number, end = false, checksum = true): Uint8Array {
  const size = TXN_HEADER + DATA_RECORD + n + (end ? END_RECORD : 0);
  const b = new Uint8Array(size);
  writeDataRecordHeader(b, TXN_HEADER, n, at);
  for (let i = 0; i < n; i++) b[TXN_HEADER + DATA_RECORD + i] = (i * 7) & 0xff;
  if (end) writeEndRecord(b, TXN_HEADER + DATA_RECORD + n, { transactions: 4, imageSize: IMAGE, digest: 99n });
  writeTxnHeader(b, 0, 3, 77, size - TXN_HEADER, checksum);
  return b;
}

describe("simulated device transaction format", () => {
  it("parses what it writes", () => {
    const t = parseTxn(txn(100, 4000, true), IMAGE);
    if (typeof t === "string") throw new Error(t);
    expect(t.seq).toBe(3);
    expect(t.session).toBe(77);
    expect(t.data).toEqual([{ imageOffset: 4000, start: TXN_HEADER + DATA_RECORD, length: 100 }]);
    expect(t.end).toEqual({ transactions: 4, imageSize: IMAGE, digest: 99n });
    expect(typeof parseTxn(txn(10, 0, false, false), IMAGE)).toBe("object");
  });

  const broken: Record<string, [(b: Uint8Array) => Uint8Array, RegExp]> = {
    short: [(b) => b.subarray(0, 20), /shorter than its header/],
    "bad magic": [(b) => ((b[0] ^= 1), b), /magic/],
    "length mismatch (split)": [(b) => b.subarray(0, b.length - 1), /does not match data_size/],
    "payload bit flip": [(b) => ((b[TXN_HEADER + DATA_RECORD + 5] ^= 0x10), b), /checksum mismatch/],
    "unknown flags": [(b) => ((b[24] |= 0x80), b), /flags/],
  };
  for (const [name, [mangle, why]] of Object.entries(broken)) {
    it(`rejects a transaction: ${name}`, () => {
      expect(parseTxn(mangle(txn(100, 0)), IMAGE)).toMatch(why);
    });
  }

  it("rejects records that overrun the transaction or fall outside the state", () => {
    const over = txn(100, 0, false, false);
    new DataView(over.buffer).setUint32(TXN_HEADER + 4, 500, true);
    expect(parseTxn(over, IMAGE)).toMatch(/overruns/);
    expect(parseTxn(txn(100, IMAGE - 50, false, false), IMAGE)).toMatch(/outside the 16384-byte state/);
    const unknown = txn(100, 0, false, false);
    new DataView(unknown.buffer).setUint32(TXN_HEADER, 9, true);
    expect(parseTxn(unknown, IMAGE)).toMatch(/unknown record type 9/);
  });

  it("rejects anything after END", () => {
    const b = new Uint8Array(TXN_HEADER + END_RECORD + DATA_RECORD + 1);
    writeEndRecord(b, TXN_HEADER, { transactions: 1, imageSize: IMAGE, digest: undefined });
    writeDataRecordHeader(b, TXN_HEADER + END_RECORD, 1, 0);
    writeTxnHeader(b, 0, 0, 1, b.length - TXN_HEADER, false);
    expect(parseTxn(b, IMAGE)).toMatch(/record after END/);
  });
});
