// A server (Python, SCM_RIGHTS) that attaches an fd to the region-info reply of
// an mmap-able migration region, as the reference server library does: the
// client's plain socket drops the fd and the byte stream stays in sync.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, expect, it } from "vitest";
import { connectVfioUser } from "../../src/transport/vfio-user/client.js";
import { REGION_FLAG_MMAP } from "../../src/transport/vfio-user/constants.js";
import { tempSocket } from "./helpers.js";

const script = fileURLToPath(new URL("./fixtures/fd-passing-server.py", import.meta.url));
const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

it("keeps the byte stream in sync when a reply carries an fd", async () => {
  const sock = tempSocket();
  const child = spawn("python3", [script, sock.path], { stdio: ["ignore", "pipe", "inherit"] });
  cleanups.push(sock.cleanup, () => child.kill());
  await new Promise<void>((resolve, reject) => {
    child.stdout.once("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`python server exited ${code}`)));
  });
  const c = await connectVfioUser(sock.path, { timeoutMs: 5000 });
  try {
    expect(c.index).toBe(9);
    expect(c.info.region.flags & REGION_FLAG_MMAP).toBeTruthy(); // offered, never used
    expect(c.info.region.sparseAreas).toEqual([{ offset: 0x1000, size: 0x1000 }]);
    // The server really attached an fd (its counter), and the messages after it still parse.
    const fds = await c.session.regionRead(0, 0, 4);
    expect(new DataView(fds.buffer, fds.byteOffset).getUint32(0, true)).toBe(1);
    const data = await c.read(0x1000, 64);
    expect([...data]).toEqual(Array.from({ length: 64 }, (_, i) => ((0x1000 + i) * 7) & 0xff));
    await c.write(0x1800, new Uint8Array([1, 2, 3, 4]));
    expect([...(await c.read(0x1800, 4))]).toEqual([1, 2, 3, 4]);
  } finally {
    await c.close();
  }
});
