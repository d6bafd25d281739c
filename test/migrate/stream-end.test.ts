// A restore ends at the stream's verified STREAM_END, not at the end of its
// input: a source that never ends after the last frame still gets its device
// restored; bytes after the end are counted, never applied, and never undo
// the restore; an input that ends early is still TRUNCATED with the device
// reset. The same holds for a stream of several devices (StreamDemux,
// restoreDevices).
import { describe, expect, it } from "vitest";
import { SimDevice } from "../../src/device/index.js";
import { isMigstreamError } from "../../src/errors.js";
import { encodeStreamAsync } from "../../src/format/index.js";
import { StreamDemux } from "../../src/migrate/demux.js";
import { type StreamEnd, streamItems } from "../../src/migrate/items.js";
import { restoreDevices } from "../../src/migrate/restore-devices.js";
import { restoreDevice } from "../../src/migrate/restore-stream.js";
import { saveDevice } from "../../src/migrate/save-to.js";
import { STATE_RUNNING, STATE_STOP } from "../../src/protocol/constants.js";
import { InProcessRegion } from "../../src/transport/in-process.js";

async function savedStream(): Promise<{ bytes: Uint8Array; src: SimDevice }> {
  const src = new SimDevice({ stateSize: 1 << 20, txnSize: 64 << 10, seed: 3 });
  const parts: Uint8Array[] = [];
  await saveDevice(new InProcessRegion(src), (b) => void parts.push(b.slice()), {
    encoder: { codec: "lz4" },
    info: { name: "src" },
    save: { precopy: false },
  });
  return { bytes: new Uint8Array(Buffer.concat(parts)), src };
}

/** Yields `pieces`, then waits forever (a peer that never closes). */
async function* neverEnding(pieces: Uint8Array[], pulled: { after: boolean }): AsyncGenerator<Uint8Array> {
  for (const p of pieces) yield p;
  pulled.after = true;
  await new Promise(() => {});
}

const dstFor = (src: SimDevice) =>
  new SimDevice({
    stateSize: 1 << 20,
    txnSize: 64 << 10,
    empty: true,
    dataOffset: src.dataOffset,
    dataSize: src.dataSize,
  });

describe("a restore ends at STREAM_END", () => {
  it("completes without the input ending, and never asks for more input", async () => {
    const { bytes, src } = await savedStream();
    const dst = dstFor(src);
    const pulled = { after: false };
    let end: StreamEnd | undefined;
    const half = bytes.length >> 1;
    const summary = await restoreDevice(
      new InProcessRegion(dst),
      neverEnding([bytes.subarray(0, half), bytes.subarray(half)], pulled),
      { onEnd: (e) => (end = e) },
    );
    expect(summary.started).toBe(true);
    expect(dst.digest()).toBe(src.digest());
    expect(dst.state & 7).toBe(STATE_RUNNING);
    expect(end).toEqual({ streamBytes: bytes.length, trailingBytes: 0 });
    expect(pulled.after).toBe(false); // completed at STREAM_END, before asking for the next piece
  });

  it("counts bytes after STREAM_END in the same piece without applying them or undoing the restore", async () => {
    const { bytes, src } = await savedStream();
    const dst = dstFor(src);
    const garbage = new Uint8Array(333).fill(0xee);
    let end: StreamEnd | undefined;
    const summary = await restoreDevice(
      new InProcessRegion(dst),
      neverEnding([Buffer.concat([bytes, garbage])], { after: false }),
      { onEnd: (e) => (end = e) },
    );
    expect(summary.started).toBe(true);
    expect(dst.digest()).toBe(src.digest());
    expect(end).toEqual({ streamBytes: bytes.length, trailingBytes: 333 });
  });

  it("an input that ends before STREAM_END is TRUNCATED; the device is reset and stopped", async () => {
    const { bytes, src } = await savedStream();
    const dst = dstFor(src);
    const before = dst.digest();
    const e = await restoreDevice(new InProcessRegion(dst), [bytes.subarray(0, bytes.length - 10)]).catch(
      (x: unknown) => x,
    );
    expect(isMigstreamError(e, "TRUNCATED")).toBe(true);
    expect(dst.state & 7).toBe(STATE_STOP);
    expect(dst.digest()).toBe(before);
  });

  it("streamItems hands out `verified` right after STREAM_END of another writer's stream (the one-shot encoder)", async () => {
    const data = new Uint8Array(100_000).map((_, i) => i % 251);
    const bytes = await encodeStreamAsync(
      [
        {
          id: 0,
          items: [
            { kind: "phase", phase: "stopcopy", iteration: 0 },
            { kind: "transaction", data },
          ],
        },
      ],
      { codec: "raw" },
    );
    let end: StreamEnd | undefined;
    const kinds: string[] = [];
    for await (const it of streamItems(neverEnding([bytes, new Uint8Array(5)], { after: false }), {
      onEnd: (e) => (end = e),
    }))
      kinds.push(it.kind);
    expect(kinds).toEqual(["protocol", "phase", "transaction", "verified"]); // a v1 device's protocol record first
    expect(end).toEqual({ streamBytes: bytes.length, trailingBytes: 0 }); // the 5 bytes came in a later piece, never asked for
  });

  it("StreamEncoder.writeOut() writes the first transaction at once, not when its output block fills (what saveDevice does for a destination's handshake)", async () => {
    const { StreamEncoder } = await import("../../src/format/encoder.js");
    const { StreamDecoder } = await import("../../src/format/decoder.js");
    for (const threads of [0, 1]) {
      const { WorkerPool } = await import("../../src/parallel/index.js");
      // threads 1 with the caller running jobs: the pooled path, without worker files from dist/.
      const pool = threads ? new WorkerPool({ threads: 1, callerRuns: true }) : null;
      const out: Uint8Array[] = [];
      const enc = new StreamEncoder((b) => void out.push(b.slice()), { codec: "lz4", pool: pool ?? undefined });
      const d = enc.device(0);
      await d.phase("precopy", 0);
      const before = out.reduce((n, b) => n + b.length, 0);
      await d.transaction(new Uint8Array(4096).fill(3));
      expect(out.reduce((n, b) => n + b.length, 0)).toBe(before); // held in the 1 MiB block
      await enc.writeOut();
      const dec = new StreamDecoder();
      const kinds: string[] = [];
      for (const b of out) for (const ev of dec.write(b)) kinds.push(ev.type);
      expect(kinds).toContain("transaction-end");
      await d.end();
      await enc.finish();
      await pool?.close();
    }
  });

  it("several devices: StreamDemux hands every device `verified` right after STREAM_END, counts what follows, never asks for more", async () => {
    const data = (n: number, k: number) => new Uint8Array(n).map((_, i) => (i * k) % 251);
    const dev = (id: number, n: number) => ({
      id,
      items: [
        { kind: "phase" as const, phase: "stopcopy" as const, iteration: 0 },
        { kind: "transaction" as const, data: data(n, id + 3) },
      ],
    });
    const bytes = await encodeStreamAsync([dev(0, 70_000), dev(1, 30_000)], { codec: "lz4" });
    const pulled = { after: false };
    let end: StreamEnd | undefined;
    const demux = new StreamDemux(neverEnding([Buffer.concat([bytes, new Uint8Array(21)])], pulled), {
      onEnd: (e) => (end = e),
    });
    const head = await demux.head();
    expect(head.devices.map((d) => d.id)).toEqual([0, 1]);
    const kinds = head.devices.map(() => [] as string[]);
    const reading = head.devices.map(async (d, i) => {
      for await (const it of demux.items(d.id)) kinds[i].push(it.kind);
    });
    await demux.run();
    await Promise.all(reading);
    for (const k of kinds) expect(k).toEqual(["protocol", "phase", "transaction", "verified"]);
    expect(end).toEqual({ streamBytes: bytes.length, trailingBytes: 21 });
    expect(pulled.after).toBe(false);
  });

  it("several devices: restoreDevices completes from a source that never ends; an input cut before STREAM_END is TRUNCATED and no device is RUNNING", async () => {
    const srcs = [1, 2].map((seed) => new SimDevice({ stateSize: 1 << 20, txnSize: 64 << 10, seed }));
    const { saveDevices } = await import("../../src/migrate/save-devices.js");
    const parts: Uint8Array[] = [];
    await saveDevices(
      srcs.map((d, i) => ({ device: new InProcessRegion(d), info: { name: `d${i}` } })),
      (b) => void parts.push(b.slice()),
      { encoder: { codec: "lz4" }, save: { precopy: false } },
    );
    const bytes = new Uint8Array(Buffer.concat(parts));
    const dsts = srcs.map(dstFor);
    let end: StreamEnd | undefined;
    const r = await restoreDevices(
      dsts.map((d) => ({ device: new InProcessRegion(d) })),
      neverEnding([bytes], { after: false }),
      { onEnd: (e) => (end = e) },
    );
    expect(r.devices.every((d) => d.started)).toBe(true);
    dsts.forEach((d, i) => {
      expect(d.digest()).toBe(srcs[i].digest());
    });
    expect(end).toEqual({ streamBytes: bytes.length, trailingBytes: 0 });
    const cut = srcs.map(dstFor);
    const e = await restoreDevices(
      cut.map((d) => ({ device: new InProcessRegion(d) })),
      [bytes.subarray(0, bytes.length - 10)],
    ).catch((x: unknown) => x);
    expect(isMigstreamError(e, "TRUNCATED")).toBe(true);
    for (const d of cut) expect(d.state & 7).not.toBe(STATE_RUNNING);
  });
});
