// CI's package checks, on the tarball `npm pack` makes from the built tree:
// it holds only what users need (package.json, README, LICENSE,
// THIRD_PARTY_NOTICES and dist's JavaScript and type declarations, no source
// maps), the notices cover every embedded WebAssembly module (check-notices),
// publint and @arethetypeswrong/cli find nothing, and every export loads from
// ESM and from CommonJS (require of an ES module, Node >= 20.19). Prints the
// tarball's file list and size. Run after `npm run build`.
//
// attw runs with the esm-only profile: the package is ESM only by design, and
// the CommonJS case attw would warn about is tested here with a real require().
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkNotices } from "./check-notices.mjs";

/** What users need; anything else in the tarball is a mistake. */
const REQUIRED = ["package.json", "README.md", "LICENSE", "THIRD_PARTY_NOTICES"];
const ALLOWED = /^dist\/[\w.-]+\.(js|d\.ts)$/;

const problems = [];
const fail = (msg) => problems.push(msg);
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;

if (!existsSync("dist/index.js")) {
  console.error("package: dist/ is not built (npm run build)");
  process.exit(1);
}

const work = mkdtempSync(join(tmpdir(), "migstream-pack-"));
try {
  const [pack] = JSON.parse(execFileSync("npm", ["pack", "--json", "--pack-destination", work], { encoding: "utf8" }));
  const tarball = join(work, pack.filename);
  const files = pack.files.map((f) => f.path).sort();

  console.log(
    `package: ${pack.filename}: ${files.length} files, ${kib(pack.size)} packed, ${kib(pack.unpackedSize)} unpacked`,
  );
  for (const f of pack.files.sort((a, b) => b.size - a.size)) console.log(`  ${kib(f.size).padStart(10)}  ${f.path}`);

  for (const r of REQUIRED) if (!files.includes(r)) fail(`the tarball has no ${r}`);
  for (const f of files)
    if (!REQUIRED.includes(f) && !ALLOWED.test(f)) fail(`the tarball holds ${f}, which users do not need`);

  // The tarball as a user gets it: unpacked into node_modules of an empty project.
  const project = join(work, "project");
  mkdirSync(join(project, "node_modules"), { recursive: true });
  execFileSync("tar", ["-xzf", tarball, "-C", work]);
  const pkgDir = join(project, "node_modules", pack.name);
  renameSync(join(work, "package"), pkgDir);
  for (const f of files.filter((f) => f.endsWith(".js"))) {
    if (/^\/\/# sourceMappingURL=/m.test(readFileSync(join(pkgDir, f), "utf8")))
      fail(`${f} points at a source map the package does not ship`);
  }

  const root = process.cwd();
  for (const p of checkNotices({
    root,
    notices: readFileSync(join(pkgDir, "THIRD_PARTY_NOTICES"), "utf8"),
    dist: join(pkgDir, "dist"),
  }))
    fail(`notices: ${p}`);

  // Every export subpath from ESM and from CommonJS, but package.json and the
  // worker entry (it runs only inside a worker; the browser suite loads it there).
  const manifest = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
  const specs = Object.keys(manifest.exports)
    .filter((k) => !k.endsWith(".json") && k !== "./worker")
    .map((k) => (k === "." ? pack.name : `${pack.name}/${k.slice(2)}`));
  writeFileSync(
    join(project, "esm.mjs"),
    specs
      .map(
        (s, i) =>
          `import * as m${i} from ${JSON.stringify(s)}; if (!Object.keys(m${i}).length) throw new Error("${s}: no exports");`,
      )
      .join("\n"),
  );
  writeFileSync(
    join(project, "cjs.cjs"),
    specs
      .map((s) => `if (!Object.keys(require(${JSON.stringify(s)})).length) throw new Error("${s}: no exports");`)
      .join("\n"),
  );
  for (const f of ["esm.mjs", "cjs.cjs"]) {
    const r = spawnSync(process.execPath, ["--disable-warning=ExperimentalWarning", f], {
      cwd: project,
      encoding: "utf8",
    });
    if (r.status !== 0) fail(`${f} (${specs.join(", ")}): ${r.stderr.trim().split("\n").slice(0, 4).join(" | ")}`);
  }

  const bin = (name) => join(root, "node_modules", ".bin", name);
  for (const [name, args] of [
    ["publint", ["run", tarball, "--strict"]],
    ["attw", [tarball, "--profile", "esm-only", "--no-color", "--no-emoji"]],
  ]) {
    const r = spawnSync(bin(name), args, { encoding: "utf8" });
    for (const line of r.stdout.trimEnd().split("\n")) console.log(`  ${name}: ${line}`.trimEnd());
    if (r.status !== 0) fail(`${name} failed (exit ${r.status}): ${r.stderr.trim()}`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

for (const p of problems) console.error(`package: ${p}`);
console.log(`package: ${problems.length === 0 ? "ok" : `${problems.length} problem(s)`}`);
process.exit(problems.length ? 1 : 0);
