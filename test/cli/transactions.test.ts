// An encode input cut into transactions (src/cli/transactions.ts): a regular
// file read by position straight into the given buffers, several reads ahead,
// and pieces of any size gathered — both give the same transactions: every
// byte once, in order, each `size` bytes but the last.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FILE_READ_AHEAD, fileTransactions, gatheredTransactions } from "../../src/cli/transactions.js";
import { MigstreamError } from "../../src/errors.js";

const dir = mkdtempSync(join(tmpdir(), "migstream-txns-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 131 + (i >> 9)) & 0xff);

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const t of it) out.push(t.slice()); // copied: a buffer may be reused after the next step
  return out;
}

function joined(ts: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(ts.reduce((a, t) => a + t.length, 0));
  let at = 0;
  for (const t of ts) {
    all.set(t, at);
    at += t.length;
  }
  return all;
}

describe("fileTransactions", () => {
  for (const [len, size] of [
    [0, 4096],
    [1000, 4096],
    [4096, 4096],
    [5 * 4096, 4096],
    [5 * 4096 + 7, 4096],
    [100_000, 999],
  ]) {
    it(`a ${len}-byte file in ${size}-byte transactions`, async () => {
      const data = bytes(len);
      const path = join(dir, `f${len}-${size}`);
      writeFileSync(path, data);
      const fh = await open(path, "r");
      const handed: Uint8Array[] = [];
      const into = (n: number) => {
        const b = new Uint8Array(n);
        handed.push(b);
        return b;
      };
      const ts = await collect(fileTransactions(fh, size, into, path));
      await fh.close();
      expect(ts.map((t) => t.length)).toEqual(
        Array.from({ length: Math.ceil(len / size) }, (_, i) => Math.min(size, len - i * size)),
      );
      expect(joined(ts)).toEqual(data);
      // Read ahead: never more buffers than the transactions plus the reads issued past the end.
      expect(handed.length).toBeLessThanOrEqual(ts.length + FILE_READ_AHEAD);
    });
  }

  it("continues short reads, and a failed read is IO naming the file and offset", async () => {
    const data = bytes(10_000);
    const short = {
      async read(buf: Uint8Array, off: number, len: number, pos: number) {
        const n = Math.min(len, 333, data.length - pos);
        buf.set(data.subarray(pos, pos + n), off);
        return { bytesRead: Math.max(0, n), buffer: buf };
      },
    } as unknown as FileHandle;
    const ts = await collect(fileTransactions(short, 4096, (n) => new Uint8Array(n), "short"));
    expect(ts.map((t) => t.length)).toEqual([4096, 4096, 1808]);
    expect(joined(ts)).toEqual(data);

    const failing = {
      async read(_buf: Uint8Array, _off: number, _len: number, pos: number) {
        if (pos >= 8192) throw Object.assign(new Error("EIO: i/o error"), { code: "EIO" });
        return { bytesRead: _len };
      },
    } as unknown as FileHandle;
    const e = await collect(fileTransactions(failing, 4096, (n) => new Uint8Array(n), "disk.raw")).catch((x) => x);
    expect(e).toBeInstanceOf(MigstreamError);
    expect(e).toMatchObject({ code: "IO", errno: "EIO", offset: 8192 });
    expect(e.message).toMatch(/disk\.raw/);
  });
});

describe("gatheredTransactions", () => {
  it("pieces of any size make the same transactions as the file", async () => {
    const data = bytes(50_000);
    const cuts = [0, 1, 7, 4096, 4097, 10_000, 30_000, 49_999, 50_000];
    async function* pieces() {
      for (let i = 1; i < cuts.length; i++) yield data.subarray(cuts[i - 1], cuts[i]);
    }
    const one = new Uint8Array(4096);
    const ts = await collect(gatheredTransactions(pieces(), 4096, () => one));
    expect(ts.map((t) => t.length)).toEqual([...Array(12).fill(4096), 50_000 - 12 * 4096]);
    expect(joined(ts)).toEqual(data);
  });
});
