// Finding the migration region under the kernel's VFIO_DEVICE_GET_REGION_INFO
// conventions (what a VMM holding the device fd gets from the ioctl, before it
// hands `fd:N,offset=...,size=...` to migstream): a stand-in that answers
// exactly as the kernel does — VFIO_REGION_INFO_FLAG_CAPS set whenever the
// region has caps, even when they did not fit (then cap_offset 0 and argsz =
// the size needed); when they fit, argsz left as the caller's and the caps
// copied at 32; only the caller's argsz bytes exist.
import { describe, expect, it } from "vitest";
import { isMigstreamError, type MigstreamError } from "../../src/errors.js";
import { findMigrationRegion, queryRegionInfo, type RegionInfoQuery } from "../../src/transport/region-info.js";
import {
  REGION_FLAG_CAPS,
  REGION_FLAG_MMAP,
  REGION_FLAG_READ,
  REGION_FLAG_WRITE,
} from "../../src/transport/vfio-user/constants.js";
import { decodeRegionInfo, encodeSparseCap, encodeTypeCap } from "../../src/transport/vfio-user/wire.js";

interface KernelRegion {
  flags: number;
  size: number;
  offset: bigint;
  caps: Uint8Array[];
}

const RW = REGION_FLAG_READ | REGION_FLAG_WRITE;
/** vfio-pci's private encoding, which a user must never compute: index << 40. */
const indexOffset = (i: number) => BigInt(i) << 40n;

/** The kernel's answer to the ioctl for `regions`; records every (index, argsz) asked. */
function kernel(regions: KernelRegion[], asked: Array<[number, number]> = []): RegionInfoQuery {
  return (index, argsz) => {
    asked.push([index, argsz]);
    if (argsz < 32 || index >= regions.length) throw Object.assign(new Error("EINVAL"), { code: "EINVAL" });
    const r = regions[index];
    const buf = new Uint8Array(argsz); // the caller's buffer; the kernel writes at most argsz bytes
    const dv = new DataView(buf.buffer);
    const capBytes = r.caps.reduce((n, c) => n + c.length, 0);
    let flags = r.flags;
    let outArgsz = argsz;
    let capOffset = 0;
    if (r.caps.length > 0) {
      flags |= REGION_FLAG_CAPS;
      if (argsz < 32 + capBytes) outArgsz = 32 + capBytes;
      else {
        capOffset = 32;
        let at = 32;
        r.caps.forEach((c, i) => {
          buf.set(c, at);
          dv.setUint32(at + 4, i + 1 < r.caps.length ? at + c.length : 0, true);
          at += c.length;
        });
      }
    }
    dv.setUint32(0, outArgsz, true);
    dv.setUint32(4, flags, true);
    dv.setUint32(8, index, true);
    dv.setUint32(12, capOffset, true);
    dv.setBigUint64(16, BigInt(r.size), true);
    dv.setBigUint64(24, r.offset, true);
    return buf;
  };
}

/** A vfio-pci device: BARs, ROM, config, VGA (9 fixed regions), then device-specific ones. */
function pciDevice(extra: KernelRegion[]): KernelRegion[] {
  const fixed = Array.from(
    { length: 9 },
    (_, i): KernelRegion => ({ flags: i === 7 ? RW : 0, size: i === 7 ? 256 : 0, offset: indexOffset(i), caps: [] }),
  );
  return [...fixed, ...extra];
}

const migration = (caps: Uint8Array[], over: Partial<KernelRegion> = {}): KernelRegion => ({
  flags: RW | REGION_FLAG_MMAP,
  size: 0x3000,
  offset: 0x7_1234_5000n, // not 9 << 40: only the reported offset is right
  caps,
  ...over,
});

async function failure(p: Promise<unknown>): Promise<MigstreamError> {
  try {
    await p;
  } catch (e) {
    expect(isMigstreamError(e), String(e)).toBe(true);
    return e as MigstreamError;
  }
  throw new Error("expected a failure");
}

describe("fd region discovery under the kernel's conventions", () => {
  it("K1 argsz growth: asked with 32, then with the argsz the kernel returned (CAPS already set at 32)", async () => {
    const asked: Array<[number, number]> = [];
    const caps = [encodeTypeCap(3, 1), encodeSparseCap([{ offset: 0x1000, size: 0x2000 }])];
    const query = kernel(pciDevice([migration(caps)]), asked);
    const first = decodeRegionInfo(await query(9, 32), 32);
    expect([first.flags & REGION_FLAG_CAPS, first.capOffset, first.argsz, first.truncated, first.caps]).toEqual([
      REGION_FLAG_CAPS,
      0,
      80,
      true,
      [],
    ]);
    asked.length = 0;
    const r = await findMigrationRegion(query, 10);
    expect(asked.filter(([i]) => i === 9)).toEqual([
      [9, 32],
      [9, 80],
    ]);
    expect(asked.filter(([i, a]) => i !== 9 && a !== 32)).toEqual([]);
    expect(r.sparseAreas).toEqual([{ offset: 0x1000, size: 0x2000 }]);
  });

  it("K2 CAPS flag: a chain is read only when CAPS is set; CAPS with cap_offset 0 (did not fit) reads as no chain", async () => {
    // Bytes after the structure that look like a cap, without the CAPS flag: not a chain.
    const b = await kernel(pciDevice([migration([], { flags: RW })]))(9, 48);
    b.set(encodeTypeCap(3, 1), 32);
    new DataView(b.buffer).setUint32(12, 32, true); // a stray cap_offset
    expect(decodeRegionInfo(b, 48).caps).toEqual([]);
    // When the caller's argsz is already larger than needed, the kernel leaves it: the answer is complete.
    const big = decodeRegionInfo(await kernel(pciDevice([migration([encodeTypeCap(3, 1)])]))(9, 128), 128);
    expect([big.argsz, big.truncated, big.caps.map((c) => c.id)]).toEqual([128, false, [2]]);
  });

  it("K3 cap chain: offsets from the start of the structure, either order, next 0 ends it, a loop is refused", async () => {
    const sparseFirst = [encodeSparseCap([{ offset: 0x2000, size: 0x1000 }]), encodeTypeCap(3, 1)];
    const r = await findMigrationRegion(kernel(pciDevice([migration(sparseFirst)])), 10);
    expect([r.index, r.type, r.sparseAreas]).toEqual([9, { type: 3, subtype: 1 }, [{ offset: 0x2000, size: 0x1000 }]]);
    const looping = kernel(pciDevice([migration([encodeTypeCap(3, 1)])]));
    const loop: RegionInfoQuery = async (i, argsz) => {
      const b = await looping(i, argsz);
      if (i === 9 && argsz >= 48) new DataView(b.buffer).setUint32(36, 32, true); // next → itself
      return b;
    };
    expect((await failure(findMigrationRegion(loop, 10))).message).toMatch(/capability chain loops/);
  });

  it("K4 the region's offset and size are the ones reported (on any index), never index << 40", async () => {
    const other = migration([encodeTypeCap(0x8000_10de, 1)], { offset: indexOffset(9) });
    const r = await findMigrationRegion(
      kernel(
        pciDevice([other, { flags: 0, size: 0, offset: indexOffset(10), caps: [] }, migration([encodeTypeCap(3, 1)])]),
      ),
      12,
    );
    expect([r.index, r.offset, r.size]).toEqual([11, 0x7_1234_5000n, 0x3000]);
    expect(r.offset).not.toBe(indexOffset(11));
  });

  it("K5 no migration region, a zero-sized one, or one not read/write is a PROTOCOL error", async () => {
    expect((await failure(findMigrationRegion(kernel(pciDevice([])), 9))).message).toMatch(/no migration region/);
    expect(
      (await failure(findMigrationRegion(kernel(pciDevice([migration([encodeTypeCap(3, 1)], { size: 0 })])), 10)))
        .message,
    ).toMatch(/size 0/);
    expect(
      (
        await failure(
          findMigrationRegion(kernel(pciDevice([migration([encodeTypeCap(3, 1)], { flags: REGION_FLAG_READ })])), 10),
        )
      ).message,
    ).toMatch(/not readable and writable/);
  });

  it("K6 an argsz that keeps growing is bounded (PROTOCOL on argsz), and an ioctl failure fails the query", async () => {
    let grow = 48;
    const greedy: RegionInfoQuery = (i, argsz) => {
      const b = new Uint8Array(Math.max(argsz, 32));
      const dv = new DataView(b.buffer);
      dv.setUint32(0, (grow += 16), true);
      dv.setUint32(4, RW | REGION_FLAG_CAPS, true);
      dv.setUint32(8, i, true);
      return b;
    };
    const e = await failure(queryRegionInfo(greedy, 9));
    expect([e.code, e.field]).toEqual(["PROTOCOL", "argsz"]);
    await expect(findMigrationRegion(kernel(pciDevice([])), 12)).rejects.toThrow(/EINVAL/);
  });
});
