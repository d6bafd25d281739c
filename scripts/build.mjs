// `npm run build`: builds what changed, and nothing else. Two steps, each
// redone only when the content of its inputs differs from the last build that
// succeeded, or its outputs are not those that build left:
//   wasm  assembly/ + asconfig.json → build/*.wasm (+ asc's declarations) → src/kernels/*.generated.ts
//   ts    src/ + the tsup and TypeScript settings → dist/ (the package)
// The lock file is an input of both (a toolchain change rebuilds). Stamps live
// in node_modules/.cache/migstream-build/ (never in dist/, which is packed).
//   node scripts/build.mjs            build what changed
//   node scripts/build.mjs --force    rebuild both steps
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const STAMPS = "node_modules/.cache/migstream-build";
const force = process.argv.includes("--force");

const STEPS = [
  {
    name: "wasm",
    script: "build:wasm",
    inputs: ["assembly", "asconfig.json", "scripts/embed-wasm.mjs", "package-lock.json"],
    outputs: [
      "build/kernels.wasm",
      "build/kernels-scalar.wasm",
      "build/kernels.d.ts",
      "src/kernels/wasm-binary.generated.ts",
      "src/kernels/kernel-exports.generated.ts",
    ],
  },
  {
    name: "ts",
    script: "build:ts",
    inputs: ["src", "tsup.config.ts", "tsconfig.json", "package.json", "package-lock.json"],
    outputs: ["dist"],
  },
];

/** Every file under `paths` (sorted, recursive). */
function files(paths) {
  const out = [];
  const walk = (p) => {
    if (!existsSync(p)) return;
    if (statSync(p).isDirectory()) for (const e of readdirSync(p).sort()) walk(join(p, e));
    else out.push(p);
  };
  for (const p of paths) walk(p);
  return out;
}

/** sha256 over the names and contents of `paths`; undefined when one is missing. */
function digest(paths) {
  if (!paths.every((p) => existsSync(p))) return undefined;
  const h = createHash("sha256");
  for (const f of files(paths)) h.update(`${f}\0`).update(readFileSync(f)).update("\0");
  return h.digest("hex");
}

function stampPath(step) {
  return join(STAMPS, `${step.name}.json`);
}

function upToDate(step) {
  if (force) return false;
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(stampPath(step), "utf8"));
  } catch {
    return false;
  }
  return stamp.inputs === digest(step.inputs) && stamp.outputs === digest(step.outputs);
}

for (const step of STEPS) {
  if (upToDate(step)) {
    console.log(`build: ${step.name} up to date`);
    continue;
  }
  rmSync(stampPath(step), { force: true });
  const inputs = digest(step.inputs); // what this build reads (a file saved meanwhile rebuilds next time)
  const t0 = performance.now();
  const r = spawnSync("npm", ["run", "--silent", step.script], { stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`build: ${step.name} failed`);
    process.exit(r.status ?? 1);
  }
  mkdirSync(STAMPS, { recursive: true });
  writeFileSync(stampPath(step), JSON.stringify({ inputs, outputs: digest(step.outputs) }));
  console.log(`build: ${step.name} built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
