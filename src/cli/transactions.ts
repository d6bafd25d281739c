// An encode input cut into transactions of a fixed size (the last may be
// shorter). A regular file is read straight into the buffers the encoder
// codes from — positional reads on libuv's threads, a few ahead of the one
// being coded — so its bytes are copied once, by the kernel; any other input
// (stdin, a pipe, a device) arrives in pieces that are gathered into them.
import type { FileHandle } from "node:fs/promises";
import { MigstreamError } from "../errors.js";

/** Reads in flight ahead of the transaction being coded (each holds one transaction buffer). */
export const FILE_READ_AHEAD = 3;

/** Where a transaction's bytes go: a buffer of `size` bytes the caller codes from once it is yielded. */
export type TransactionBuffer = (size: number) => Uint8Array;

/**
 * The regular file `fh` in transactions of `size` bytes, read into buffers
 * from `into`; up to FILE_READ_AHEAD reads run while a transaction is coded.
 * `into` must hand out a buffer not in use (a lent one, or one of
 * FILE_READ_AHEAD + 1 rotating buffers once the caller is done with the
 * oldest). Reads run to EOF, whatever size the file had when opened.
 */
export async function* fileTransactions(
  fh: FileHandle,
  size: number,
  into: TransactionBuffer,
  path: string,
): AsyncGenerator<Uint8Array> {
  let next = 0; // file position of the next read issued
  let eof = false;
  const reads: Promise<Uint8Array>[] = [];
  const issue = () => {
    const buf = into(size);
    reads.push(readFull(fh, buf, next, path));
    next += size;
  };
  try {
    for (let i = 0; i < FILE_READ_AHEAD; i++) issue();
    while (reads.length > 0) {
      const t = await reads.shift()!;
      if (t.length < size) eof = true; // the file ends here: later reads (already issued) find nothing
      if (!eof) issue();
      if (t.length > 0) yield t;
      if (eof) return;
    }
  } finally {
    await Promise.allSettled(reads);
  }
}

/** Reads buf.length bytes at `position` (fewer only at EOF), continuing short reads. */
async function readFull(fh: FileHandle, buf: Uint8Array, position: number, path: string): Promise<Uint8Array> {
  let got = 0;
  while (got < buf.length) {
    let n: number;
    try {
      n = (await fh.read(buf, got, buf.length - got, position + got)).bytesRead;
    } catch (e) {
      const errno = (e as { code?: string }).code;
      throw new MigstreamError("IO", `cannot read ${path}`, { errno, offset: position + got, cause: e });
    }
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/**
 * `pieces` (any sizes) gathered into transactions of `size` bytes, each in a
 * buffer from `into` — asked for once the previous transaction was yielded
 * and the caller came back for more (so one reused buffer is enough).
 */
export async function* gatheredTransactions(
  pieces: AsyncIterable<Uint8Array>,
  size: number,
  into: TransactionBuffer,
): AsyncGenerator<Uint8Array> {
  let buf = into(size);
  let fill = 0;
  for await (const piece of pieces) {
    for (let at = 0; at < piece.length; ) {
      const n = Math.min(piece.length - at, size - fill);
      buf.set(piece.subarray(at, at + n), fill);
      fill += n;
      at += n;
      if (fill === size) {
        yield buf;
        buf = into(size);
        fill = 0;
      }
    }
  }
  if (fill > 0) yield buf.subarray(0, fill);
}
