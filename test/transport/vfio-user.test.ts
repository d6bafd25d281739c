// Client ↔ server over a real UNIX socket in a temp dir.
import { existsSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { isMigstreamError } from "../../src/errors.js";
import { ERRNO } from "../../src/protocol/region-io.js";
import { connectVfioUser } from "../../src/transport/vfio-user/client.js";
import { CMD, DIGEST_REGION_TYPE, REGION_FLAG_CAPS } from "../../src/transport/vfio-user/constants.js";
import { VfioUserServer, type VfioUserServerOptions } from "../../src/transport/vfio-user/server.js";
import { MemoryVendor, pattern, sameBytes, tempSocket } from "./helpers.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup(opts: VfioUserServerOptions = {}, size = 64 << 10) {
  const sock = tempSocket();
  const vendor = new MemoryVendor(size);
  const server = await VfioUserServer.listen(sock.path, vendor, opts);
  cleanups.push(sock.cleanup, () => server.close());
  const client = await connectVfioUser(sock.path, { timeoutMs: 5000 });
  cleanups.push(() => client.close());
  return { sock, vendor, server, client };
}

async function rejects(p: Promise<unknown>) {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected a rejection");
}

describe("vfio-user client ↔ server", () => {
  it("negotiates VERSION and honours the server's max_data_xfer_size", async () => {
    const { client } = await setup({ maxDataXfer: 8192 });
    expect(client.info.protocol).toEqual({ major: 0, minor: 2 });
    expect(client.info.serverCaps.max_data_xfer_size).toBe(8192);
    expect(client.maxAccess).toBe(8192);
    expect(client.info.device.numRegions).toBeGreaterThanOrEqual(10);
  });

  it("finds the migration region on a non-9 index by its type capability", async () => {
    const { client, vendor } = await setup({ regionIndex: 11 });
    expect(client.index).toBe(11);
    expect(client.size).toBe(vendor.size);
    expect(client.info.region.type).toEqual({ type: 3, subtype: 1 });
    expect(client.info.region.flags & REGION_FLAG_CAPS).toBeTruthy();
    // The caps only come with a grown argsz (the first ask is the bare 32 bytes).
    expect(client.info.region.sparseAreas).toEqual([{ offset: 4096, size: vendor.size - 4096 }]);
    // The digest region sits right after it, with its vendor type.
    expect(client.digestRegion?.index).toBe(12);
    expect(client.digestRegion?.type?.type).toBe(DIGEST_REGION_TYPE);
  });

  it("walks the capability chain in either order", async () => {
    for (const sparseFirst of [false, true]) {
      const { client, vendor } = await setup({ sparseFirst, regionIndex: 10, digestRegionIndex: 13 });
      expect(client.index).toBe(10);
      expect(client.info.region.type).toEqual({ type: 3, subtype: 1 });
      expect(client.info.region.sparseAreas).toEqual([{ offset: 4096, size: vendor.size - 4096 }]);
      await client.close();
    }
  });

  it("reads and writes, one message per access that fits, split at the limit otherwise", async () => {
    const { client, vendor } = await setup({ maxDataXfer: 4096 });
    const data = pattern(10000, 7);
    await client.write(100, data);
    expect(vendor.mem.subarray(100, 10100)).toEqual(data);
    expect(vendor.log.filter((a) => a.op === "write").map((a) => [a.offset, a.count])).toEqual([
      [100, 4096],
      [4196, 4096],
      [8292, 1808],
    ]);
    vendor.log.length = 0;
    const into = new Uint8Array(12000);
    const got = await client.read(100, 10000, into);
    expect(got.buffer).toBe(into.buffer);
    expect(got).toEqual(data);
    expect(vendor.log.map((a) => a.count)).toEqual([4096, 4096, 1808]);
    vendor.log.length = 0;
    expect(await client.read(200, 4096)).toEqual(data.subarray(100, 4196));
    expect(vendor.log).toEqual([{ op: "read", offset: 200, count: 4096 }]);
    // Register-sized accesses.
    await client.write(0, new Uint8Array([3, 0, 0, 0]));
    expect(await client.read(0, 4)).toEqual(new Uint8Array([3, 0, 0, 0]));
  });

  it("keeps pipelined large messages intact while the vendor is slow (pooled buffers)", async () => {
    const { client, vendor } = await setup({}, 4 << 20);
    const slow = vendor.write.bind(vendor);
    vendor.write = async (o, d) => {
      await new Promise((r) => setTimeout(r, 5));
      return slow(o, d);
    };
    const chunks = Array.from({ length: 12 }, (_, i) => pattern(200_000 - i * 1000, 100 + i));
    const offsets = chunks.map((_, i) => 4096 + i * 250_000);
    await Promise.all(chunks.map((c, i) => client.session.regionWrite(client.index, offsets[i], c)));
    chunks.forEach((c, i) => {
      expect(sameBytes(vendor.mem.subarray(offsets[i], offsets[i] + c.length), c)).toBe("same");
    });
    const back = await Promise.all(chunks.map((c, i) => client.session.regionRead(client.index, offsets[i], c.length)));
    back.forEach((b, i) => {
      expect(sameBytes(b, chunks[i])).toBe("same");
    });
  });

  it("refuses accesses outside the region before sending anything", async () => {
    const { client, vendor } = await setup();
    expect(isMigstreamError(await rejects(client.read(vendor.size - 4, 8)), "USAGE")).toBe(true);
    expect(isMigstreamError(await rejects(client.write(-1, new Uint8Array(1))), "USAGE")).toBe(true);
    expect(vendor.log).toEqual([]);
    // A session-level access past max_data_xfer_size is refused too.
    expect(
      isMigstreamError(await rejects(client.session.regionRead(client.index, 0, client.maxAccess + 1)), "USAGE"),
    ).toBe(true);
  });

  it("turns error replies into DEVICE errors carrying the errno and step", async () => {
    const { client, vendor } = await setup();
    vendor.failAt.set(16, ERRNO.EIO);
    vendor.failAt.set(24, ERRNO.EBUSY);
    const e1 = await rejects(client.read(16, 8));
    expect(
      isMigstreamError(e1, "DEVICE") &&
        e1.errno === "EIO" &&
        /REGION_READ/.test(e1.message) &&
        e1.step?.includes("0x10"),
    ).toBe(true);
    const e2 = await rejects(client.write(24, new Uint8Array(8)));
    expect(isMigstreamError(e2, "DEVICE") && e2.errno === "EBUSY").toBe(true);
    // The server's own checks: an access past the region end gets EINVAL.
    const e3 = await rejects(client.session.regionRead(client.index, vendor.size - 4, 8));
    expect(isMigstreamError(e3, "DEVICE") && e3.errno === "EINVAL").toBe(true);
    // A command the server does not implement: ENOTSUP.
    const e4 = await rejects(client.session.request(CMD.DIRTY_PAGES, new Uint8Array(8), "dirty pages"));
    expect(isMigstreamError(e4, "DEVICE") && e4.errno === "ENOTSUP").toBe(true);
    // The connection is still usable afterwards.
    expect((await client.read(32, 4)).length).toBe(4);
  });

  it("forwards DEVICE_RESET to the vendor", async () => {
    const { client, vendor } = await setup();
    await client.reset();
    await client.reset();
    expect(vendor.resets).toBe(2);
  });

  it("reads the state digest from the digest region", async () => {
    const { client, vendor } = await setup();
    const before = await client.stateDigest();
    expect(before).toBe(vendor.digest());
    await client.write(5000, pattern(64, 3));
    const after = await client.stateDigest();
    expect(after).toBe(vendor.digest());
    expect(after).not.toBe(before);
  });

  it("serves one client at a time", async () => {
    const { sock, client, server } = await setup();
    const e = await rejects(connectVfioUser(sock.path, { timeoutMs: 2000 }));
    expect(isMigstreamError(e, "TRANSPORT") && /another client/.test(e.message)).toBe(true);
    expect((await client.read(0, 4)).length).toBe(4);
    await client.close();
    for (let i = 0; i < 100 && server.connected; i++) await new Promise((r) => setTimeout(r, 10));
    // Once the first client left, a new one is served (and the device was reset on disconnect).
    const again = await connectVfioUser(sock.path, { timeoutMs: 2000 });
    cleanups.push(() => again.close());
    expect((await again.read(0, 4)).length).toBe(4);
  });

  it("resets the device when the client disconnects", async () => {
    const { client, vendor } = await setup();
    await client.close();
    for (let i = 0; i < 100 && vendor.resets === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(vendor.resets).toBe(1);
  });

  it("close() drops the client and removes the socket file", async () => {
    const { sock, server, client } = await setup();
    expect(existsSync(sock.path)).toBe(true);
    await server.close();
    expect(existsSync(sock.path)).toBe(false);
    const e = await rejects(client.read(0, 4));
    expect(isMigstreamError(e, "TRANSPORT")).toBe(true);
  });

  it("replaces a stale socket file but refuses a live one", async () => {
    const { sock } = await setup();
    const e = await rejects(VfioUserServer.listen(sock.path, new MemoryVendor(8192)));
    expect(isMigstreamError(e, "TRANSPORT")).toBe(true);
  });

  it("fails clearly when nothing listens", async () => {
    const sock = tempSocket();
    cleanups.push(sock.cleanup);
    const e = await rejects(connectVfioUser(sock.path, { timeoutMs: 1000 }));
    expect(isMigstreamError(e, "TRANSPORT") && e.errno === "ENOENT" && e.step === "connect").toBe(true);
  });
});
