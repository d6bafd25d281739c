// The migrate pipeline's buffer handling: a ByteSink write settles only once
// the writable is done with the bytes (so the stream encoder may reuse its
// output blocks, saveDevice's default), and the restore side decodes into reused
// buffers (transactions, gathered frames) while the device consumes them.
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { SimDevice } from "../../src/device/index.js";
import { MigstreamError } from "../../src/errors.js";
import { decodeStream } from "../../src/format/index.js";
import { restoreDevice } from "../../src/migrate/restore-stream.js";
import { saveDevice } from "../../src/migrate/save-to.js";
import { writableSink } from "../../src/migrate/sink.js";
import { InProcessRegion } from "../../src/transport/in-process.js";

/**
 * A writable that, like a socket, keeps the caller's buffer until the write
 * completes and only then takes its bytes (a copy at callback time), a few
 * milliseconds later.
 */
function lazyWritable(delayMs = 2): { stream: Writable; taken: Uint8Array[] } {
  const taken: Uint8Array[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      setTimeout(() => {
        taken.push(Uint8Array.prototype.slice.call(chunk) as Uint8Array);
        cb();
      }, delayMs);
    },
  });
  return { stream, taken };
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return (
    Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0
  );
}

describe("writableSink without copies", () => {
  it("settles a write only once the writable took the bytes, so the caller may reuse its buffer", async () => {
    const { stream, taken } = lazyWritable();
    const sink = writableSink(stream, { label: "test", copy: false });
    const buf = new Uint8Array(1000); // below the writable's high-water mark: its write() says "more"
    for (let round = 0; round < 5; round++) {
      buf.fill(round + 1);
      await sink.write(buf);
      expect(taken.length).toBe(round + 1); // taken before the write settled
    }
    await sink.end();
    taken.forEach((t, i) => {
      expect(t.every((x) => x === i + 1)).toBe(true);
    });
    expect(sink.bytes).toBe(5000);
  });

  it("fails a write the writable never completes within the drain timeout, and one on a destroyed writable", async () => {
    const stuck = new Writable({ write() {} });
    const sink = writableSink(stuck, { label: "stuck", copy: false, code: "TRANSPORT", drainTimeoutMs: 50 });
    const e = await sink.write(new Uint8Array(10)).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(MigstreamError);
    expect((e as MigstreamError).code).toBe("TIMEOUT");
    const gone = new Writable({
      write(_c, _e, cb) {
        cb();
      },
    });
    const s2 = writableSink(gone, { label: "gone", copy: false, code: "TRANSPORT" });
    gone.destroy();
    const e2 = await s2.write(new Uint8Array(10)).catch((x: unknown) => x);
    expect((e2 as MigstreamError).code).toBe("TRANSPORT");
  });
});

describe("saveDevice reuses the encoder's output blocks", () => {
  it("the stream a lazy writable takes is intact and restores the device", async () => {
    const src = new SimDevice({ stateSize: 3 << 20, txnSize: 256 << 10, seed: 4 });
    const { stream, taken } = lazyWritable(1);
    const sink = writableSink(stream, { label: "lazy", copy: false });
    const r = await saveDevice(new InProcessRegion(src), sink, {
      encoder: { codec: "raw", streamId: new Uint8Array(16) },
      save: { precopy: false },
    });
    expect(r.wireBytes).toBeGreaterThan(3 << 20); // raw: more than one output block, each reused
    const bytes = new Uint8Array(Buffer.concat(taken));
    const decoded = decodeStream(bytes);
    expect(decoded.devices[0].items.filter((i) => i.kind === "transaction").length).toBe(r.summary.transactions);
    // Restore from small pieces: frames span pieces (gathered into reused buffers) and
    // transactions are assembled into one reused buffer while the device takes them.
    const dst = new SimDevice({
      stateSize: 3 << 20,
      txnSize: 256 << 10,
      empty: true,
      dataOffset: src.dataOffset,
      dataSize: src.dataSize,
    });
    const pieces: Uint8Array[] = [];
    for (let at = 0, k = 0; at < bytes.length; k++) {
      const n = 1 + ((k * 7919) % 70_000);
      pieces.push(bytes.subarray(at, at + n));
      at += n;
    }
    const summary = await restoreDevice(new InProcessRegion(dst), pieces);
    expect(summary.transactions).toBe(r.summary.transactions);
    expect(dst.digest()).toBe(src.digest());
    expect(same(dst.image.bytes, src.image.bytes)).toBe(true);
  });
});
