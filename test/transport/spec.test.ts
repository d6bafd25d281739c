// Device spec parsing and opening.
import * as fs from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isMigstreamError } from "../../src/errors.js";
import type { RegionIO } from "../../src/protocol/region-io.js";
import { FdRegion } from "../../src/transport/fd/region.js";
import { parseSize } from "../../src/transport/size.js";
import { type OpenedDevice, openDevice, parseDeviceSpec } from "../../src/transport/spec.js";
import { VfioUserServer } from "../../src/transport/vfio-user/server.js";
import { MemoryVendor, tempSocket } from "./helpers.js";

function usage(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isMigstreamError(e, "USAGE")) return e.message;
    throw e;
  }
  throw new Error("expected a USAGE error");
}

describe("device specs", () => {
  it("parses sizes with suffixes and hex", () => {
    expect(parseSize("4096")).toBe(4096);
    expect(parseSize("0x1000")).toBe(4096);
    expect(parseSize("64MiB")).toBe(64 << 20);
    expect(parseSize("1gib")).toBe(1 << 30);
    expect(parseSize("3KiB")).toBe(3072);
    expect(usage(() => parseSize("12MB", "state"))).toMatch(/state: '12MB' is not a number/);
    expect(usage(() => parseSize("-1"))).toMatch(/not a number/);
    expect(usage(() => parseSize("99999999999GiB"))).toMatch(/too large/);
  });

  it("parses every form", () => {
    expect(parseDeviceSpec("sim:state=64MiB,seed=1,txn=1MiB")).toEqual({
      kind: "sim",
      options: { state: "64MiB", seed: "1", txn: "1MiB" },
    });
    expect(parseDeviceSpec("sim:")).toEqual({ kind: "sim", options: {} });
    expect(parseDeviceSpec("vfio-user:/tmp/a.sock")).toEqual({ kind: "vfio-user", path: "/tmp/a.sock" });
    expect(parseDeviceSpec("vfio-user:/tmp/a.sock,timeout=500")).toEqual({
      kind: "vfio-user",
      path: "/tmp/a.sock",
      timeoutMs: 500,
    });
    expect(parseDeviceSpec("fd:3,offset=0x90000000000,size=0x2000")).toEqual({
      kind: "fd",
      fd: 3,
      offset: 0x90000000000,
      size: 0x2000,
    });
    expect(parseDeviceSpec("file:/proc/1/fd/7,offset=4096,size=1MiB")).toEqual({
      kind: "file",
      path: "/proc/1/fd/7",
      offset: 4096,
      size: 1 << 20,
    });
    expect(parseDeviceSpec("file:/x.bin")).toEqual({ kind: "file", path: "/x.bin", offset: 0 });
  });

  it("gives clear USAGE errors for bad specs", () => {
    expect(usage(() => parseDeviceSpec("nonsense"))).toMatch(/missing 'kind:'.*forms: sim:/);
    expect(usage(() => parseDeviceSpec("pci:0000:01:00.0"))).toMatch(/unknown kind 'pci'/);
    expect(usage(() => parseDeviceSpec("fd:x,offset=0,size=1"))).toMatch(/'x' is not an fd number/);
    expect(usage(() => parseDeviceSpec("fd:3,offset=0"))).toMatch(/needs offset= and size=/);
    expect(usage(() => parseDeviceSpec("fd:3,offset=zz,size=1"))).toMatch(/offset: 'zz' is not a number/);
    expect(usage(() => parseDeviceSpec("file:/a,offset=1,bogus=2"))).toMatch(/unknown option 'bogus'/);
    expect(usage(() => parseDeviceSpec("file:/a,offset=1,offset=2"))).toMatch(/'offset' given twice/);
    expect(usage(() => parseDeviceSpec("vfio-user:"))).toMatch(/missing socket path/);
    expect(usage(() => parseDeviceSpec("sim:state"))).toMatch(/'state' is not key=value/);
  });

  it("opens vfio-user and file specs", async () => {
    const t = tempSocket();
    try {
      const server = await VfioUserServer.listen(t.path, new MemoryVendor(16384), { regionIndex: 10 });
      const d = (await openDevice(`vfio-user:${t.path},timeout=3000`)) as OpenedDevice & RegionIO;
      expect(d.size).toBe(16384);
      expect(d.label).toBe(`vfio-user:${t.path} (region 10)`);
      expect(typeof (await d.stateDigest!())).toBe("bigint");
      await d.close();
      await server.close();
      const path = join(t.dir, "r.bin");
      fs.writeFileSync(path, new Uint8Array(8192).fill(5));
      const f = (await openDevice(`file:${path},offset=0x1000`)) as OpenedDevice & RegionIO;
      expect(f).toBeInstanceOf(FdRegion);
      expect(f.size).toBe(4096);
      expect((await f.read(0, 4)).every((b) => b === 5)).toBe(true);
      await f.close();
    } finally {
      t.cleanup();
    }
  });
});
