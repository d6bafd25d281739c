// Small streams, one per feature, for the exhaustive corruption tests and the
// golden vectors: each codec, several devices, dedup, MAC. Deterministic.
import { init } from "../../src/codec/index.js";
import { fillPage } from "../../src/device/pages.js";
import { type DeviceInput, type EncoderOptions, encodeStreamAsync } from "../../src/format/index.js";
import { KEY, SID } from "./helpers.js";

const text = new TextEncoder().encode(
  "VFIO device state: the quick brown fox jumps over the lazy dog; the quick brown fox jumps again. ".repeat(12),
);

function txn(data: Uint8Array) {
  return { kind: "transaction" as const, data };
}

export interface SmallStream {
  name: string;
  input: DeviceInput[];
  options: EncoderOptions;
}

export function smallCases(): SmallStream[] {
  const heap = new Uint8Array(1500);
  fillPage(heap, "heap", 77);
  const one: DeviceInput[] = [
    {
      id: 1,
      name: "gpu0",
      metadata: Uint8Array.of(0x10, 0xde, 0x20, 0x1b),
      items: [
        { kind: "phase", phase: "precopy", iteration: 0 },
        txn(text.subarray(0, 700)),
        { kind: "phase", phase: "stopcopy", iteration: 0 },
        txn(new Uint8Array(600)),
        txn(new Uint8Array(0)),
        txn(heap.subarray(0, 300)),
      ],
    },
  ];
  const rep = new Uint8Array(700);
  fillPage(rep, "random", 5);
  return [
    { name: "raw", input: one, options: { codec: "raw", chunkSize: 512, streamId: SID } },
    { name: "lz4", input: one, options: { codec: "lz4", chunkSize: 512, streamId: SID } },
    { name: "zstd", input: one, options: { codec: "zstd", level: 3, chunkSize: 512, streamId: SID } },
    {
      name: "multi",
      input: [
        {
          id: 2,
          name: "nic",
          items: [{ kind: "phase", phase: "setup", iteration: 0 }, txn(text.subarray(0, 200)), txn(Uint8Array.of(7))],
        },
        {
          id: 40000,
          name: "",
          metadata: Uint8Array.of(1),
          items: [{ kind: "phase", phase: "stopcopy", iteration: 2 }, txn(text.subarray(50, 300))],
        },
      ],
      options: { codec: "lz4", chunkSize: 256, streamId: SID },
    },
    {
      name: "dedup",
      input: [
        {
          id: 3,
          items: [
            { kind: "phase", phase: "precopy", iteration: 0 },
            txn(rep),
            { kind: "phase", phase: "precopy", iteration: 1 },
            txn(rep),
            { kind: "phase", phase: "stopcopy", iteration: 0 },
            txn(rep.subarray(256)),
          ],
        },
      ],
      options: { codec: "raw", dedup: true, chunkSize: 1024, dedupWindow: 4096, streamId: SID },
    },
    {
      name: "mac",
      input: [
        {
          id: 0,
          name: "keyed",
          items: [
            { kind: "phase", phase: "stopcopy", iteration: 0 },
            txn(text.subarray(0, 300)),
            txn(heap.subarray(0, 100)),
          ],
        },
      ],
      options: { codec: "lz4", chunkSize: 256, key: KEY, streamId: SID },
    },
  ];
}

export async function smallStreams(): Promise<(SmallStream & { bytes: Uint8Array })[]> {
  await init();
  const out = [];
  for (const c of smallCases()) out.push({ ...c, bytes: await encodeStreamAsync(c.input, c.options) });
  return out;
}
