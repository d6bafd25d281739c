// Stop signals as operators send them (SIGHUP from a dropped ssh session,
// SIGINT, SIGTERM, and SIGKILL), against real processes and `sim serve`
// devices that keep whatever state their client leaves (--on-disconnect stay):
// the driver itself puts a source back in RUNNING, no partial output file
// survives, an interrupted network restore says what it wrote and how it left
// the device (and the source hears it), and `demo` leaves no child process
// and no file behind even when killed outright.
import { existsSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  alive,
  childrenOf,
  cliSuite,
  digest,
  listeningPort,
  proxy,
  type Sim,
  sim,
  start,
  until,
  withFlags,
} from "./helpers.js";

const suite = cliSuite();
const sims: Sim[] = [];
let n = 0;

afterAll(async () => {
  await Promise.all(sims.map((s) => s.stop()));
});

/** A device whose every data_offset read takes 5 ms: 512 buffers of 16 KiB take seconds to move. */
async function slow(name: string, extra: string[]): Promise<Sim> {
  const s = await sim(
    suite.dir(),
    `${name}${n++}`,
    withFlags(
      ["--state-size", "8MiB", "--transaction-size", "16KiB", "--variant", "slow-prepare", "--on-disconnect", "stay"],
      extra,
    ),
  );
  sims.push(s);
  return s;
}

const partialsIn = (dir: string) => readdirSync(dir).filter((f) => f.endsWith(".partial"));

describe("stop signals", () => {
  it.each(["SIGHUP", "SIGINT", "SIGTERM"] as const)(
    "%s during `save -o FILE`: the driver puts the source back in RUNNING, no partial file is left",
    async (sig) => {
      const src = await slow("src", ["--seed", "4"]);
      const out = join(suite.dir(), `saved-${sig}.mig`);
      const p = start(["save", "--device", `vfio-user:${src.socket}`, "-o", out, "--no-precopy", "--codec", "raw"]);
      // Well inside the save: a quarter of the 8 MiB written.
      const written = () =>
        partialsIn(suite.dir())
          .filter((f) => f.startsWith(`.saved-${sig}.mig.`))
          .map((f) => statSync(join(suite.dir(), f)).size)[0] ?? 0;
      expect(await until(() => written() >= 2 << 20, 20_000)).toBe(true);
      p.child.kill(sig);
      const r = await p.done;
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(new RegExp(`^migstream: ABORTED[^\\n]*interrupted \\(${sig}\\)`, "m"));
      expect(r.stderr).toMatch(/device back in RUNNING/);
      expect(existsSync(out)).toBe(false);
      expect(partialsIn(suite.dir()).filter((f) => f.startsWith(`.saved-${sig}.mig.`))).toEqual([]);
      expect(await digest(src)).toMatchObject({ digest: src.initialDigest, deviceState: "RUNNING" });
    },
  );

  it("SIGHUP on a command without clean-stop work (`encode` from a pipe): exit 129, its partial output removed", async () => {
    const out = join(suite.dir(), "enc.mig");
    const p = start(["encode", "-", "-o", out], { input: new Uint8Array(1 << 20), keepStdinOpen: true });
    expect(await until(() => partialsIn(suite.dir()).some((f) => f.startsWith(".enc.mig.")), 10_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    p.child.kill("SIGHUP");
    const r = await p.done;
    expect(r.code).toBe(129);
    expect(partialsIn(suite.dir()).filter((f) => f.startsWith(".enc.mig."))).toEqual([]);
    expect(existsSync(out)).toBe(false);
  });

  it("Ctrl-C during a network restore: it reports what was written and how the device was left, and the source hears why", async () => {
    const [src, dst] = await Promise.all([
      slow("nsrc", ["--seed", "5", "--state-size", "16MiB"]),
      slow("ndst", ["--empty", "--state-size", "16MiB"]),
    ]);
    const l = start(["restore", "--device", `vfio-user:${dst.socket}`, "--listen", "tcp://127.0.0.1:0"]);
    const port = await listeningPort(l);
    const px = await proxy(port);
    const s = start([
      "save",
      "--device",
      `vfio-user:${src.socket}`,
      "--to",
      `tcp://127.0.0.1:${px.port}`,
      "--no-precopy",
      "--codec",
      "raw",
    ]);
    // 12 of the 16 MiB went through: the slow destination has written some of its 1024 buffers (socket buffers hold a few MiB), not all.
    expect(await until(() => px.forwarded() >= 12 << 20, 60_000)).toBe(true);
    l.child.kill("SIGINT");
    const [r, sv] = await Promise.all([l.done, s.done]);
    await px.close();
    expect(r.code).toBe(3);
    const m =
      /^migstream: ABORTED[^\n]*interrupted \(SIGINT\)[^\n]*; device reset \(partial state dropped\); device left in STOP; (\d+) transactions \((\d+) bytes\) had been written to it before the failure$/m.exec(
        r.stderr,
      );
    expect(m, r.stderr).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(0);
    expect(Number(m![1])).toBeLessThan(1024);
    expect(r.stderr).not.toMatch(/not touched/);
    expect(sv.code).toBe(3);
    expect(sv.stderr).toMatch(
      /the destination failed: "[^"]*interrupted \(SIGINT\)[^"]*; device reset \(partial state dropped\); device left in STOP; \d+ transactions \(\d+ bytes\) had been written to it before the failure"; (source )?device back in RUNNING/,
    );
    expect(await digest(dst)).toMatchObject({ digest: dst.initialDigest, deviceState: "STOP" });
    expect(await digest(src)).toMatchObject({ digest: src.initialDigest, deviceState: "RUNNING" });
  });

  it.each(["SIGKILL", "SIGHUP", "SIGTERM"] as const)(
    "`demo` killed by %s leaves no child process and no file",
    async (sig) => {
      const p = start(["demo", "--state-size", "32MiB", "--dirty-rate", "0"]);
      const pid = p.child.pid!;
      const files = () => readdirSync(tmpdir()).filter((f) => f.startsWith(`migstream-demo-${pid}-`));
      // Both devices are up: two children, each with its socket.
      expect(await until(() => childrenOf(pid).length >= 2 && files().length >= 2, 30_000)).toBe(true);
      const kids = childrenOf(pid);
      p.child.kill(sig);
      const r = await p.done;
      if (sig === "SIGKILL") expect(r.signal).toBe("SIGKILL");
      else expect(r.code).not.toBe(0);
      expect(await until(() => kids.every((k) => !alive(k)), 10_000)).toBe(true);
      expect(await until(() => files().length === 0, 5_000)).toBe(true);
    },
  );
});
