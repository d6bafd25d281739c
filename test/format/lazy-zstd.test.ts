// StreamDecoder.writeAsync loads zstd (a ~0.5 MB module and its wasm) only
// once a zstd chunk comes: an LZ4 or RAW stream decodes without ever parsing
// it (start-up of a decode, e.g. as a QEMU exec: filter), a zstd stream loads
// it on its first zstd chunk and decodes as before.
import { describe, expect, it, vi } from "vitest";
import { makeImage } from "../../src/device/pages.js";
import { type DeviceInput, encodeStreamAsync } from "../../src/format/index.js";
import { same } from "./helpers.js";

const data = makeImage(600_000, 4);
const input: DeviceInput[] = [
  {
    id: 0,
    items: [
      { kind: "phase", phase: "stopcopy", iteration: 0 },
      { kind: "transaction", data },
    ],
  },
];

describe("zstd is loaded on first need", () => {
  it("an LZ4 stream decodes without zstd; a zstd stream loads it", async () => {
    const streams = {
      lz4: await encodeStreamAsync(input, { codec: "lz4" }),
      raw: await encodeStreamAsync(input, { codec: "raw" }),
      zstd: await encodeStreamAsync(input, { codec: "zstd", level: 1 }),
    };
    // A fresh copy of the library: nothing loaded yet.
    vi.resetModules();
    const { zstdAvailable } = await import("../../src/codec/zstd.js");
    const { StreamDecoder } = await import("../../src/format/index.js");
    const decode = async (s: Uint8Array) => {
      const dec = new StreamDecoder();
      const parts: Uint8Array[] = [];
      for (let at = 0; at < s.length; at += 100_000)
        for await (const ev of dec.writeAsync(s.subarray(at, at + 100_000)))
          if (ev.type === "chunk") parts.push(ev.data!);
      dec.finish();
      return Buffer.concat(parts);
    };
    expect(zstdAvailable()).toBe(false);
    expect(same(await decode(streams.lz4), data)).toBe(true);
    expect(same(await decode(streams.raw), data)).toBe(true);
    expect(zstdAvailable()).toBe(false);
    expect(same(await decode(streams.zstd), data)).toBe(true);
    expect(zstdAvailable()).toBe(true);
  });
});
