// Runs the Deno suites in test/deno (or the directory given) against the built
// dist/ with the deno binary from the `deno` npm package. Kernel tests run with
// no permissions at all (the wasm is embedded); suites named *.net.test.ts get
// the permissions they need, *.ffi.test.ts only --allow-ffi. Ends with the total
// over every run: `deno: N passed | N failed` (a run that printed no summary
// counts as a failure).
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { denoRunCounts, denoTotalLine } from "./summary.mjs";

const require = createRequire(import.meta.url);
const denoBin = require.resolve("deno/bin.cjs");
const dir = process.argv[2] ?? "test/deno";
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".test.ts"))
  .sort();
const plain = files.filter((f) => !f.endsWith(".net.test.ts") && !f.endsWith(".ffi.test.ts")).map((f) => `${dir}/${f}`);
const net = files.filter((f) => f.endsWith(".net.test.ts")).map((f) => `${dir}/${f}`);
// The kernel driver's FFI layer: foreign calls only (it opens /dev/null and a pipe through libc itself).
const ffi = files.filter((f) => f.endsWith(".ffi.test.ts")).map((f) => `${dir}/${f}`);

let passed = 0;
let failed = 0;
let status = 0;
function run(args) {
  const r = spawnSync(process.execPath, [denoBin, "test", "--no-prompt", "--no-check", ...args], {
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
  });
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  const counts = denoRunCounts(r.stdout);
  if (counts) {
    passed += counts.passed;
    failed += counts.failed;
  } else {
    console.error(`deno-test: deno test ${args.filter((a) => !a.startsWith("--")).join(" ")} printed no summary`);
    failed += 1;
  }
  if (r.status !== 0) status = 1;
}
if (plain.length) run(plain);
if (ffi.length) run(["--allow-ffi", ...ffi]);
if (net.length)
  run(["--allow-read", "--allow-write", "--allow-net", "--allow-env", "--allow-run", "--allow-sys", ...net]);
console.log(denoTotalLine(passed, failed));
process.exit(status);
