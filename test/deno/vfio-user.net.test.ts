// vfio-user under Deno, from the built dist/: a server and a client in one
// process over a real UNIX socket (node:net through Deno's Node compatibility).
import { connectVfioUser, isMigstreamError, VfioUserServer } from "../../dist/index.js";

function assert(cond: unknown, msg: string): void {
  if (!cond) throw new Error(msg);
}

class Memory {
  readonly mem: Uint8Array;
  resets = 0;
  readonly sparseAreas = [{ offset: 4096, size: 4096 }];
  constructor(readonly size: number) {
    this.mem = new Uint8Array(size);
  }
  async read(offset: number, count: number): Promise<Uint8Array> {
    return this.mem.slice(offset, offset + count);
  }
  async write(offset: number, data: Uint8Array): Promise<void> {
    this.mem.set(data, offset);
  }
  async reset(): Promise<void> {
    this.resets++;
  }
  digest(): bigint {
    let h = 0n;
    for (let i = 0; i < this.size; i += 97) h = (h * 31n + BigInt(this.mem[i])) & 0xffff_ffff_ffff_ffffn;
    return h;
  }
}

Deno.test("vfio-user client ↔ server exchange under Deno", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/dev.sock`;
  const vendor = new Memory(8192 + 300_000);
  const server = await VfioUserServer.listen(path, vendor, { regionIndex: 11, maxDataXfer: 65536 });
  try {
    const c = await connectVfioUser(path, { timeoutMs: 5000 });
    try {
      assert(c.index === 11, `migration region found at ${c.index}`);
      assert(c.maxAccess === 65536, `max access ${c.maxAccess}`);
      assert(c.info.region.sparseAreas.length === 1, "sparse cap seen");
      const data = new Uint8Array(200_000).map((_, i) => (i * 13) & 0xff);
      await c.write(4096, data);
      const back = await c.read(4096, data.length);
      assert(
        back.every((b, i) => b === data[i]),
        "read back what was written (split into 64 KiB messages)",
      );
      assert((await c.stateDigest()) === vendor.digest(), "digest region");
      await c.reset();
      assert(vendor.resets === 1, "reset forwarded");
      const e = await c.read(0, 8).then(
        () => undefined,
        (x) => x,
      );
      assert(e === undefined, "register read works");
      const bad = await c.session.regionRead(11, vendor.size - 4, 8).then(
        () => undefined,
        (x) => x,
      );
      assert(isMigstreamError(bad, "DEVICE") && bad.errno === "EINVAL", `error reply carries errno: ${bad}`);
    } finally {
      await c.close();
    }
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
