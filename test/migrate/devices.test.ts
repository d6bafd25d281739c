// Several devices through one stream (saveDevicesTo → bytes → restoreDevices):
// the stream announces every device at its head and interleaves their frames;
// the demux hands each device its own items exactly as the decoder reads them
// (checked on the golden vectors); the destination pairs the stream's devices
// with its own in order and checks them before touching any; a slow device
// holds back only as much as its queue; a broken stream, a failing device, a
// failing sink or a destination that refuses leave no destination RUNNING
// and every source RUNNING with its state.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { MigrationSimDevice } from "../../src/device/migration-sim.js";
import { SimDevice, type SimDeviceOptions } from "../../src/device/simulated.js";
import { MigstreamError } from "../../src/errors.js";
import { StreamEncoder } from "../../src/format/encoder.js";
import { decodeStream, decodeStreamAsync } from "../../src/format/index.js";
import { StreamDemux } from "../../src/migrate/demux.js";
import { restoreDevices } from "../../src/migrate/restore-devices.js";
import { type SaveDevicesMember, saveDevicesTo } from "../../src/migrate/save-devices.js";
import type { ByteSink } from "../../src/migrate/sink.js";
import type { MigratableDevice } from "../../src/protocol/generation.js";
import type { RegionIO } from "../../src/protocol/region-io.js";
import type { ResumeItem } from "../../src/protocol/types.js";
import { MIG_STATE } from "../../src/protocol/v2/constants.js";
import { InProcessRegion } from "../../src/transport/in-process.js";
import { InProcessMigration } from "../../src/transport/in-process-v2.js";
import { SIM_V2_VARIANTS, SIM_VARIANTS } from "../../src/transport/sim/options.js";
import { destinationFor, failure, KiB, low } from "../protocol/helpers.js";
import { destinationOf } from "../protocol/v2/helpers.js";

type Sim = SimDevice | MigrationSimDevice;
const isV2 = (d: Sim): d is MigrationSimDevice => d instanceof MigrationSimDevice;
const running = (d: Sim) => (isV2(d) ? d.state === MIG_STATE.RUNNING : low(d.state) === 1);
const io = (d: Sim): MigratableDevice => (isV2(d) ? new InProcessMigration(d) : new InProcessRegion(d));

/** The vendor behaviour each source was made with, for its destination. */
const variants = new WeakMap<Sim, SimDeviceOptions>();

function destinationOfAny(s: Sim): Sim {
  return isV2(s)
    ? new MigrationSimDevice(destinationOf(s, { writeEinval: s.writeEinval }))
    : new SimDevice(destinationFor(s, variants.get(s)));
}

function v1(o: SimDeviceOptions, variant: SimDeviceOptions = {}): SimDevice {
  const d = new SimDevice({ ...o, ...variant });
  variants.set(d, variant);
  return d;
}

/** Four devices: sizes, transaction sizes, dirty rates and vendor variants differ; v1 and v2 mixed. */
function sources(): Sim[] {
  return [
    v1({ stateSize: 256 * KiB, txnSize: 32 * KiB, dirtyPerTxn: 3, seed: 31 }),
    new MigrationSimDevice({ stateSize: 384 * KiB, dirtyPerMiB: 48, seed: 32, ...SIM_V2_VARIANTS.restarts }),
    v1({ stateSize: 96 * KiB, txnSize: [4 * KiB, 20 * KiB], dirtyPerTxn: 1, seed: 33 }, SIM_VARIANTS.mlx5),
    new MigrationSimDevice({ stateSize: 64 * KiB, seed: 34, ...SIM_V2_VARIANTS.gpio }),
  ];
}

/** A ByteSink into memory (copies each write: the encoder reuses its blocks). */
function memorySink(failAfter = Infinity): ByteSink & { parts: Uint8Array[] } {
  const parts: Uint8Array[] = [];
  let bytes = 0;
  return {
    parts,
    get bytes() {
      return bytes;
    },
    async write(b) {
      if (bytes + b.length > failAfter) throw new MigstreamError("IO", "disk full (test)");
      parts.push(b.slice());
      bytes += b.length;
    },
    async end() {},
    destroy() {},
  };
}

const members = (devs: Sim[]): SaveDevicesMember[] =>
  devs.map((d, i) => ({ device: io(d), info: { name: `dev${i}` } }));

/** Feeds `bytes` in pieces, counting what was pulled. */
function pieces(bytes: Uint8Array, size = 4096, pulled = { bytes: 0 }): AsyncIterable<Uint8Array> {
  return (async function* () {
    for (let at = 0; at < bytes.length; at += size) {
      const p = bytes.subarray(at, Math.min(bytes.length, at + size));
      pulled.bytes += p.length;
      yield p;
    }
  })();
}

describe("several devices in one stream", () => {
  for (const [label, encoder] of [
    ["lz4", { codec: "lz4" as const }],
    ["zstd with dedup", { codec: "zstd" as const, dedup: true }],
    ["authenticated raw", { codec: "raw" as const, key: new TextEncoder().encode("a key of at least sixteen bytes") }],
  ] as const) {
    it(`saves and restores v1 and v2 devices together (${label})`, async () => {
      const src = sources();
      const sink = memorySink();
      const r = await saveDevicesTo(members(src), sink, { encoder, save: { policy: { pendingThreshold: 64 * KiB } } });
      const bytes = Buffer.concat(sink.parts);
      expect(r.wireBytes).toBe(bytes.length);
      expect(r.stream.devices).toBe(4);
      expect(r.devices.map((d) => d.trailer.rawBytes)).toEqual(r.devices.map((d) => d.summary.bytes));
      const digests = src.map((d) => d.digest());
      const dst = src.map(destinationOfAny);
      const key = "key" in encoder ? encoder.key : undefined;
      const got = await restoreDevices(
        dst.map((d, i) => ({ device: io(d), label: `dst${i}` })),
        pieces(bytes),
        { key },
      );
      expect(got.devices.map((d) => [d.id, d.name, d.started])).toEqual(src.map((_, i) => [i, `dev${i}`, true]));
      expect(got.head.header.maxDevices).toBe(4);
      dst.forEach((d, i) => {
        expect(d.digest(), `device ${i}`).toBe(digests[i]);
        expect(running(d)).toBe(true);
        expect(d.violations).toEqual([]);
        expect(src[i].violations).toEqual([]);
      });
    });
  }

  it("the head announces every device (and each v2 device's protocol) before any data; then their frames interleave", async () => {
    const src = sources();
    const sink = memorySink();
    await saveDevicesTo(members(src), sink, { encoder: { codec: "raw", chunkSize: 16 * KiB } });
    const bytes = Buffer.concat(sink.parts);
    // Walk the frames: type (u8) and device (u16) of each, from the 16-byte frame headers (FORMAT.md §4.1).
    const frames: { type: number; device: number }[] = [];
    for (let at = 64; at < bytes.length; ) {
      const length = bytes.readUInt32LE(at + 8);
      frames.push({ type: bytes[at], device: bytes.readUInt16LE(at + 2) });
      at += 16 + length + 8;
    }
    const head = frames.slice(0, 6);
    expect(head).toEqual([
      { type: 0x01, device: 0 },
      { type: 0x01, device: 1 },
      { type: 0x01, device: 2 },
      { type: 0x01, device: 3 },
      { type: 0x07, device: 1 },
      { type: 0x07, device: 3 },
    ]);
    // Interleaved: some device's frames come between another's first and last data frame.
    const data = frames.slice(6).filter((f) => f.type === 0x03 || f.type === 0x04);
    const span = (d: number) => [data.findIndex((f) => f.device === d), data.findLastIndex((f) => f.device === d)];
    const [a0, a1] = span(0);
    expect(data.slice(a0, a1).some((f) => f.device !== 0)).toBe(true);
    expect(decodeStream(bytes).devices.map((d) => d.protocol.generation)).toEqual([1, 2, 1, 2]);
  });

  for (const name of ["multi", "v2"]) {
    it(`the demux gives each device of ${name}.mstream exactly the decoder's items`, async () => {
      const bytes = new Uint8Array(readFileSync(new URL(`../vectors/${name}.mstream`, import.meta.url)));
      const want = await decodeStreamAsync(bytes);
      const demux = new StreamDemux(pieces(bytes, 7));
      const head = await demux.head();
      expect(head.devices.map((d) => [d.id, d.name])).toEqual(want.devices.map((d) => [d.id, d.name]));
      const collect = async (id: number) => {
        const out: ResumeItem[] = [];
        for await (const it of demux.items(id)) out.push(it);
        return out;
      };
      const [all] = await Promise.all([Promise.all(head.devices.map((d) => collect(d.id))), demux.run()]);
      want.devices.forEach((d, i) => {
        expect(all[i]).toEqual([{ kind: "protocol", protocol: d.protocol }, ...d.items, { kind: "verified" }]);
      });
    });
  }
});

describe("pairing the stream's devices with the destination's, before touching any", () => {
  async function twoDeviceStream(): Promise<{ bytes: Uint8Array; src: Sim[] }> {
    const src = [
      new SimDevice({ stateSize: 32 * KiB, txnSize: 8 * KiB, seed: 41 }),
      new MigrationSimDevice({ stateSize: 32 * KiB, seed: 42 }),
    ];
    const sink = memorySink();
    await saveDevicesTo(members(src), sink);
    return { bytes: Buffer.concat(sink.parts), src };
  }

  it("a different number of devices: USAGE naming the stream's devices, nothing touched", async () => {
    const { bytes, src } = await twoDeviceStream();
    const dst = [new SimDevice(destinationFor(src[0] as SimDevice))];
    let touched = false;
    const e = await failure(restoreDevices([{ device: io(dst[0]) }], [bytes], { onTouch: () => (touched = true) }));
    expect(e.code).toBe("USAGE");
    expect(e.message).toMatch(/holds 2 devices \(0 "dev0", 1 "dev1"\) but 1 were given/);
    expect(touched).toBe(false);
    expect(dst[0].stateWrites).toEqual([]);
  });

  it("the generations pair up wrongly: USAGE naming the pair, no device touched", async () => {
    const { bytes, src } = await twoDeviceStream();
    const v1 = new SimDevice(destinationFor(src[0] as SimDevice));
    const v2 = new MigrationSimDevice(destinationOf(src[1] as MigrationSimDevice));
    const e = await failure(restoreDevices([{ device: io(v2) }, { device: io(v1), label: "nic" }], [bytes]));
    expect(e.code).toBe("USAGE");
    expect(e.field).toBe("generation");
    expect(e.message).toMatch(/stream device 0 "dev0" holds a v1 .* #0, speaks v2/);
    expect(v2.arcs).toEqual([]);
    expect(v1.stateWrites).toEqual([]);
  });

  it("a device that begins after other devices' data is refused, every device left not RUNNING", async () => {
    const parts: Uint8Array[] = [];
    const enc = new StreamEncoder((b) => void parts.push(b.slice()), { codec: "raw" });
    const src = new SimDevice({ stateSize: 16 * KiB, txnSize: 8 * KiB, seed: 43 });
    const w0 = enc.device(0, { name: "early" });
    await w0.phase("stopcopy", 0);
    await w0.transaction(new Uint8Array(100));
    const w1 = enc.device(1, { name: "late" });
    await w1.end();
    await w0.end();
    await enc.finish();
    const dst = new SimDevice(destinationFor(src));
    const e = await failure(restoreDevices([{ device: io(dst) }], parts));
    expect(e.code).toBe("USAGE");
    expect(e.message).toMatch(/device 1 \("late"\) begins after other devices' data/);
    expect(running(dst)).toBe(false);
  });
});

describe("failures through the stream", () => {
  async function saved(): Promise<{ bytes: Uint8Array; src: Sim[] }> {
    const src = sources();
    const sink = memorySink();
    await saveDevicesTo(members(src), sink, { encoder: { codec: "lz4" } });
    return { bytes: Buffer.concat(sink.parts), src };
  }

  it("a corrupt byte mid-stream: the stream's CHECKSUM error with every device's fate; no device RUNNING", async () => {
    const { bytes, src } = await saved();
    const bad = bytes.slice();
    bad[Math.floor(bad.length * 0.6)] ^= 0x10;
    const dst = src.map(destinationOfAny);
    const e = await failure(
      restoreDevices(
        dst.map((d) => ({ device: io(d) })),
        pieces(bad),
      ),
    );
    expect(e.code).toBe("CHECKSUM");
    expect(e.offset).toBeGreaterThan(0);
    for (const i of [0, 1, 2, 3]) expect(e.message).toContain(`device ${i}: `);
    for (const d of dst) expect(running(d)).toBe(false);
  });

  it("a truncated stream: TRUNCATED, no device RUNNING", async () => {
    const { bytes, src } = await saved();
    const dst = src.map(destinationOfAny);
    const e = await failure(
      restoreDevices(
        dst.map((d) => ({ device: io(d) })),
        [bytes.subarray(0, bytes.length - 30)],
      ),
    );
    expect(e.code).toBe("TRUNCATED");
    for (const d of dst) expect(running(d)).toBe(false);
  });

  it("a destination device that fails mid-stream stops the decoding; the error names it; none RUNNING", async () => {
    const { bytes, src } = await saved();
    const dst = src.map(destinationOfAny);
    (dst[2] as SimDevice).inject({ at: "write data_size", nth: 3, errno: 5 });
    const pulled = { bytes: 0 };
    const e = await failure(
      restoreDevices(
        dst.map((d, i) => ({ device: io(d), label: `d${i}` })),
        pieces(bytes, 4096, pulled),
      ),
    );
    expect(e.device).toBe(2);
    expect(e.message).toMatch(/^device 2 \(d2\): resume: write data_size/);
    expect(e.errno).toBe("EIO");
    for (const d of dst) expect(running(d)).toBe(false);
    expect(pulled.bytes).toBeLessThan(bytes.length);
  });

  it("a slow destination device holds back only its queue: the decoder waits for it", async () => {
    const { bytes, src } = await saved();
    const dst = src.map(destinationOfAny);
    // Device 0's data_size writes wait at a gate: it stops taking transactions.
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const inner = io(dst[0]) as RegionIO;
    let writes = 0;
    const slow: RegionIO = {
      get size() {
        return inner.size;
      },
      get maxAccess() {
        return inner.maxAccess;
      },
      read: (o, c, into) => inner.read(o, c, into),
      write: async (o, d) => {
        if (o === 24 && ++writes === 2) await gate;
        return inner.write(o, d);
      },
      reset: () => inner.reset(),
      close: () => inner.close(),
    };
    const pulled = { bytes: 0 };
    const queueBytes = 64 * KiB;
    const restoring = restoreDevices(
      [{ device: slow }, ...dst.slice(1).map((d) => ({ device: io(d) }))],
      pieces(bytes, 4096, pulled),
      { queueBytes },
    );
    let last = -1;
    for (let i = 0; i < 100 && pulled.bytes !== last; i++) {
      last = pulled.bytes;
      await new Promise((r) => setTimeout(r, 10));
    }
    // Stalled: not the whole stream read, and at most the queue plus a transaction and a piece beyond what device 0 took.
    expect(pulled.bytes).toBeLessThan(bytes.length);
    expect(running(dst[1])).toBe(false);
    open();
    const r = await restoring;
    expect(r.devices.every((d) => d.started)).toBe(true);
    for (const [i, d] of dst.entries()) expect(d.digest()).toBe(src[i].digest());
  });

  it("a sink that fails mid-stream: IO, every source back in RUNNING with its state", async () => {
    const src = [
      new SimDevice({ stateSize: 64 * KiB, txnSize: 8 * KiB, seed: 51 }),
      new MigrationSimDevice({ stateSize: 64 * KiB, seed: 52 }),
    ];
    const before = src.map((d) => d.digest());
    const e = await failure(saveDevicesTo(members(src), memorySink(40 * KiB), { encoder: { codec: "raw" } }));
    expect(e.code).toBe("IO");
    // The sink's failure is the error, then each device's fate (the one whose write met it, and the cancelled other).
    expect(e.message).toMatch(/^disk full \(test\); device 0 \(dev0\): .*; device 1 \(dev1\): /);
    src.forEach((d, i) => {
      expect(running(d)).toBe(true);
      expect(d.digest()).toBe(before[i]);
    });
  });

  it("a destination that refuses after the whole stream: every stopped source back in RUNNING, the error says so", async () => {
    const src = [
      new SimDevice({ stateSize: 64 * KiB, txnSize: 8 * KiB, seed: 53 }),
      new MigrationSimDevice({ stateSize: 64 * KiB, seed: 54 }),
    ];
    const before = src.map((d) => d.digest());
    const e = await failure(
      saveDevicesTo(members(src), memorySink(), {
        confirm: async () => {
          throw new MigstreamError("DEVICE", "the destination failed (test)");
        },
      }),
    );
    expect(e.message).toMatch(
      /device 0 \(dev0\): source device back in RUNNING; device 1 \(dev1\): source device back in RUNNING/,
    );
    src.forEach((d, i) => {
      expect(running(d)).toBe(true);
      expect(d.digest()).toBe(before[i]);
    });
  });
});

void ({} as SimDeviceOptions);
