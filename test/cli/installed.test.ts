// The package as users get it: `npm pack`, the tarball installed into an empty
// project, and the `migstream` bin run the ways users run it — `npx migstream`,
// `node_modules/.bin/migstream` (npm's link, not dist/cli.js by name), and
// Deno with only --allow-read --allow-write --allow-env --allow-net (the
// command the README shows). Installing prints no engine warning on this Node.
import { type SpawnSyncReturns, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureCli, releaseCli } from "./helpers.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { name: string; version: string };
const deno = createRequire(import.meta.url).resolve("deno/bin.cjs");
/** npm without network side trips (the tarball has no dependencies). */
const npmEnv = {
  ...process.env,
  npm_config_update_notifier: "false",
  npm_config_fund: "false",
  npm_config_audit: "false",
  NO_COLOR: "1",
};
/** Bound on each command (demo included). */
const RUN_MS = 120_000;

const work = mkdtempSync(join(tmpdir(), "migstream-installed-"));
const project = join(work, "project");
let installLog = "";

function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, {
    cwd: opts.cwd ?? project,
    env: opts.env ?? npmEnv,
    encoding: "utf8",
    timeout: RUN_MS,
    maxBuffer: 64 << 20,
  });
}

/** The README's Deno command (`deno run ... npm:<package> ...`), as an argument list after `deno`. */
function readmeDenoCommand(): string[] {
  const line = readFileSync(join(root, "README.md"), "utf8")
    .split("\n")
    .find((l) => l.startsWith("deno run ") && l.includes(`npm:${pkg.name}`));
  if (!line) throw new Error("README shows no `deno run ... npm:vfio-migstream` command");
  return line.trim().split(/\s+/).slice(1);
}

/** The three ways to run the installed bin, each as (args) → [command, argv]. */
const WAYS: Array<[name: string, (args: string[]) => [string, string[]]]> = [
  ["npx migstream", (a) => ["npx", ["--no-install", "migstream", ...a]]],
  ["node_modules/.bin/migstream", (a) => [join(project, "node_modules/.bin/migstream"), a]],
  [
    "deno (read, write, env, net)",
    (a) => {
      // The README's permissions and package; --no-prompt: a missing permission fails instead of waiting for a terminal.
      const readme = readmeDenoCommand();
      const at = readme.indexOf(`npm:${pkg.name}`);
      expect(readme[0]).toBe("run");
      return [process.execPath, [deno, "run", "--no-prompt", ...readme.slice(1, at + 1), ...a]];
    },
  ],
];

beforeAll(() => {
  ensureCli(); // dist/ up to date with src/ before it is packed
  const packed = run("npm", ["pack", "--json", "--pack-destination", work], { cwd: root });
  expect(packed.status, packed.stderr).toBe(0);
  const tarball = join(work, (JSON.parse(packed.stdout) as Array<{ filename: string }>)[0].filename);
  mkdirSync(project);
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", private: true }));
  const installed = run("npm", ["install", "--no-audit", "--no-fund", tarball]);
  installLog = installed.stdout + installed.stderr;
  expect(installed.status, installLog).toBe(0);
}, RUN_MS * 2);

afterAll(() => {
  releaseCli();
  rmSync(work, { recursive: true, force: true });
});

describe("the packed and installed package", () => {
  it("the README's Deno command asks for read, write, env and net only", () => {
    const perms = readmeDenoCommand().filter((a) => a.startsWith("--allow") || a === "-A");
    expect(perms.sort()).toEqual(["--allow-env", "--allow-net", "--allow-read", "--allow-write"]);
  });

  it("installs without an engine warning on this Node", () => {
    expect(installLog).not.toMatch(/EBADENGINE|Unsupported engine/);
  });

  describe.each(WAYS)("run as %s", (_name, how) => {
    const cli = (args: string[]) => run(...how(args));

    it(
      "--version and -V print the package version",
      () => {
        for (const flag of ["--version", "-V"]) {
          const r = cli([flag]);
          expect(r.status, r.stderr).toBe(0);
          expect(r.stdout.trim()).toBe(pkg.version);
        }
      },
      RUN_MS,
    );

    it(
      "a failing verify exits non-zero: a missing file (4), a damaged stream (2)",
      () => {
        const missing = cli(["verify", join(work, "does-not-exist.mig")]);
        expect(missing.status).toBe(4);
        expect(missing.stderr).toMatch(/IO.*does-not-exist/);
        const input = join(work, `verify-${_name.length}.bin`);
        writeFileSync(
          input,
          new Uint8Array(300_000).map((_, i) => (i * 31) & 0xff),
        );
        const stream = `${input}.mig`;
        expect(cli(["encode", input, "-o", stream]).status).toBe(0);
        const bytes = readFileSync(stream);
        bytes[Math.floor(bytes.length / 2)] ^= 0x40;
        writeFileSync(stream, bytes);
        const damaged = cli(["verify", stream]);
        expect(damaged.status, damaged.stderr).toBe(2);
        expect(damaged.stderr).toMatch(/CHECKSUM|CODEC|FORMAT|SEQUENCE/);
      },
      RUN_MS,
    );

    it(
      "encode then decode gives the input back byte for byte",
      () => {
        const input = join(work, `roundtrip-${_name.length}.bin`);
        const data = new Uint8Array(3 << 20);
        let x = 0x9e3779b9;
        for (let i = 0; i < data.length; i++) {
          // runs of zeros, repeats and noise: every codec path gets something
          if ((i >> 16) % 3 === 0) continue;
          x ^= x << 13;
          x ^= x >>> 17;
          x ^= x << 5;
          data[i] = (i >> 16) % 3 === 1 ? i & 0x3f : x & 0xff;
        }
        writeFileSync(input, data);
        for (const codec of ["auto", "zstd", "lz4"]) {
          const enc = cli(["encode", input, "-o", `${input}.${codec}.mig`, "--codec", codec]);
          expect(enc.status, enc.stderr).toBe(0);
          const dec = cli(["decode", `${input}.${codec}.mig`, "-o", `${input}.${codec}.out`]);
          expect(dec.status, dec.stderr).toBe(0);
          expect(readFileSync(`${input}.${codec}.out`).equals(Buffer.from(data))).toBe(true);
        }
      },
      RUN_MS,
    );

    it(
      "demo completes: the destination's digest matches the source's",
      () => {
        const r = cli(["demo", "--state-size", "16MiB"]);
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout).toMatch(/digests +source ([0-9a-f]{16}), destination \1: match/);
        expect(r.stdout).toMatch(/^verified: /m);
      },
      RUN_MS,
    );
  });
});
