// The README's Deno section, run as written: the packed package installed into
// a fresh project, the TypeScript example run with no permissions, each CLI
// line run with exactly the permissions it gives — and the encode shown to
// fail without its write permission, so the permissions are really the least.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..");
const denoBin = createRequire(import.meta.url).resolve("deno/bin.cjs");
const readme = readFileSync(join(root, "README.md"), "utf8");
const section = readme.slice(readme.indexOf("\n## Deno"), readme.indexOf("\n## ", readme.indexOf("\n## Deno") + 1));
const block = (lang: string) =>
  [...section.matchAll(new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``, "g"))].map((m) => m[1]);
let project: string;
/** A user's environment: TERM set, NO_COLOR not (the CLI must not need --allow-env for either). */
const userEnv: NodeJS.ProcessEnv = { ...process.env, TERM: "xterm" };
delete userEnv.NO_COLOR;

/** Runs a README `deno ...` line in the project (no stdin: Deno never prompts). */
function deno(line: string) {
  const args = line.trim().split(/\s+/);
  expect(args[0]).toBe("deno");
  return spawnSync(process.execPath, [denoBin, ...args.slice(1)], {
    cwd: project,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 60_000,
    env: userEnv,
  });
}

beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), "deno-readme-"));
  const [pack] = JSON.parse(
    execFileSync("npm", ["pack", "--json", "--pack-destination", project], { cwd: root, encoding: "utf8" }),
  );
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "deno-user", private: true }));
  execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund", `./${pack.filename}`], {
    cwd: project,
    stdio: "ignore",
  });
  const raw = new Uint8Array(3 << 20);
  for (let i = 0; i < raw.length; i++) raw[i] = i % 8192 < 4096 ? 0 : (i * 31) & 0xff;
  writeFileSync(join(project, "state.raw"), raw);
}, 120_000);

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

describe("README: Deno", () => {
  it("the library example runs with no permissions", () => {
    const [ts] = block("ts");
    const file = /\/\/ (\S+\.ts) — run with: (deno run \S+)/.exec(ts);
    expect(file).not.toBeNull();
    writeFileSync(join(project, file![1]), ts);
    const r = deno(file![2]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^1048576 bytes -> \d+ on the wire, restored: 1 transaction\n$/);
  }, 60_000);

  it("the CLI lines run with the permissions they give, in order", () => {
    const lines = block("sh")[0].trim().split("\n");
    expect(lines.length).toBe(3);
    for (const line of lines) {
      const r = deno(line);
      expect({ line, status: r.status, error: /migstream:|error/i.test(r.stderr) ? r.stderr : "" }).toEqual({
        line,
        status: 0,
        error: "",
      });
    }
    const inspect = deno(lines[2]);
    expect(JSON.parse(inspect.stdout)).toMatchObject({ rawBytes: 3 << 20, complete: true });
  }, 120_000);

  it("the encode fails without its write permission, naming it", () => {
    const line = block("sh")[0]
      .trim()
      .split("\n")[0]
      .replace("--allow-write=. ", "")
      .replace("state.mig", "denied.mig");
    const r = deno(line);
    expect(r.error).toBeUndefined(); // ended by itself (the spawn would time out on a hang)
    expect(r.status).toBe(4);
    expect(r.stderr).toMatch(/^migstream: IO: cannot create denied\.mig: .*write access/);
  }, 60_000);
});
