// DEVICE_PROTOCOL (FORMAT.md §5.8): written for v2 devices only (v1 streams
// keep their bytes), read back as the device's protocol, and every rule a
// reader enforces: once, before the first PHASE, generation 2, flag bit 0
// only, reserved bytes zero, a later generation VERSION.
import { describe, expect, it } from "vitest";
import { FRAME_DEVICE_PROTOCOL } from "../../src/format/constants.js";
import type { Frame } from "../../src/format/frames.js";
import { decodeStream, encodeStream, StreamEncoder } from "../../src/format/index.js";
import { readDeviceProtocol } from "../../src/format/payloads.js";
import type { DeviceInput } from "../../src/format/types.js";

const txn = (n: number, v: number) => ({ kind: "transaction" as const, data: new Uint8Array(n).fill(v) });
const phase = (p: "precopy" | "stopcopy") => ({ kind: "phase" as const, phase: p, iteration: 0 });

function frame(payload: number[]): Frame {
  const p = Uint8Array.from(payload);
  return {
    type: FRAME_DEVICE_PROTOCOL,
    device: 3,
    seq: 1,
    length: p.length,
    offset: 100,
    bytes: p,
    payload: p,
    check: 0n,
    tag: null,
  };
}

describe("DEVICE_PROTOCOL", () => {
  it("a v2 device gets the frame, a v1 device none; both read back", () => {
    const input: DeviceInput[] = [
      { id: 0, protocol: { generation: 2, restartsAtStopCopy: false }, items: [phase("stopcopy"), txn(64, 1)] },
      { id: 1, protocol: { generation: 1 }, items: [phase("stopcopy"), txn(64, 2)] },
    ];
    const bytes = encodeStream(input, { codec: "raw", streamId: new Uint8Array(16) });
    const d = decodeStream(bytes);
    expect(d.devices.map((x) => x.protocol)).toEqual([{ generation: 2, restartsAtStopCopy: false }, { generation: 1 }]);
    // The same stream without the v1 record is byte-identical: v1 is the frame's absence.
    const plain = encodeStream([input[0], { id: 1, items: input[1].items }], {
      codec: "raw",
      streamId: new Uint8Array(16),
    });
    expect(Buffer.compare(plain, bytes)).toBe(0);
  });

  it("the streaming encoder takes the record before the first phase only, and once", async () => {
    const enc = new StreamEncoder(() => {});
    const w = enc.device(0);
    await w.protocol({ generation: 2, restartsAtStopCopy: true });
    await expect(w.protocol({ generation: 2, restartsAtStopCopy: true })).rejects.toMatchObject({ code: "USAGE" });
    const w2 = enc.device(1);
    await w2.phase("stopcopy", 0);
    await expect(w2.protocol({ generation: 2, restartsAtStopCopy: false })).rejects.toMatchObject({ code: "USAGE" });
  });

  it("a reader refuses a bad record: generation, flags, reserved bytes, size", () => {
    expect(readDeviceProtocol(frame([2, 1, 0, 0, 0, 0, 0, 0]))).toEqual({ generation: 2, restartsAtStopCopy: true });
    expect(() => readDeviceProtocol(frame([3, 0, 0, 0, 0, 0, 0, 0]))).toThrow(
      expect.objectContaining({ code: "VERSION", field: "generation" }),
    );
    expect(() => readDeviceProtocol(frame([1, 0, 0, 0, 0, 0, 0, 0]))).toThrow(
      expect.objectContaining({ code: "FORMAT", field: "generation" }),
    );
    expect(() => readDeviceProtocol(frame([2, 2, 0, 0, 0, 0, 0, 0]))).toThrow(
      expect.objectContaining({ code: "FORMAT", field: "flags" }),
    );
    expect(() => readDeviceProtocol(frame([2, 0, 0, 0, 0, 9, 0, 0]))).toThrow(
      expect.objectContaining({ code: "FORMAT", field: "reserved" }),
    );
    expect(() => readDeviceProtocol(frame([2, 0, 0, 0]))).toThrow(
      expect.objectContaining({ code: "FORMAT", field: "length" }),
    );
  });
  // A record after the first PHASE, or twice: structure.test.ts (FORMAT at that frame).
});
