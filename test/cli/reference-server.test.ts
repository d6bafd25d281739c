// `migstream save` and `migstream restore` (separate processes, through the
// CLI as users run it) against `sim serve --variant libvfio-user`: servers that
// behave as the reference server does — one client each, then they exit,
// printing the device's final state and digest; caps only when they fit; whole
// buffers only; no reset or discovery while stopped.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cliSuite, run, sim } from "./helpers.js";

const suite = cliSuite();
const EXIT = /the client left; exiting \(device (\S+), digest ([0-9a-f]{16})\)/;

describe("save and restore against the reference-like server", () => {
  it("save to a file, restore from it: the destination ends with the source's state", async () => {
    const state = ["--variant", "libvfio-user", "--state-size", "2MiB", "--transaction-size", "64KiB"];
    const [src, dst] = await Promise.all([
      sim(suite.dir(), "ref-src", [...state, "--seed", "9", "--dirty-rate", "3"]),
      sim(suite.dir(), "ref-dst", [...state, "--empty"]),
    ]);
    const stream = join(suite.dir(), "ref.mig");
    const saved = await run([
      "save",
      "--device",
      `vfio-user:${src.socket}`,
      "-o",
      stream,
      "--codec",
      "lz4",
      "--precopy-iterations",
      "3",
    ]);
    expect(saved.code, saved.stderr).toBe(0);
    const srcEnd = await src.proc.done; // it served its one client and exited
    expect(srcEnd.code).toBe(0);
    const s = EXIT.exec(srcEnd.stdout);
    expect(s, srcEnd.stdout).not.toBeNull();

    const restored = await run(["restore", "--device", `vfio-user:${dst.socket}`, stream]);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout + restored.stderr).toMatch(/device RUNNING/);
    const dstEnd = await dst.proc.done;
    expect(dstEnd.code).toBe(0);
    const d = EXIT.exec(dstEnd.stdout);
    expect(d, dstEnd.stdout).not.toBeNull();

    expect(d![2]).toBe(s![2]);
    expect([s![1], d![1]]).toEqual(["RUNNING", "RUNNING"]);
    expect(s![2]).not.toBe(src.initialDigest); // pre-copy dirtying changed the source while it was saved
  }, 120_000);
});
