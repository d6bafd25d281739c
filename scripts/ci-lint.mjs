// CI's lint step: `biome ci` (format, lint and import order, no writes) over
// SCOPE. The tree is not formatted yet (other branches are editing it), so
// SCOPE lists the files already clean; once the whole tree has been formatted
// (`npm run format`), CI runs `npm run lint` instead and this file goes.
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";

const SCOPE = [
  "biome.jsonc",
  "scripts/ci-lint.mjs",
  "scripts/ci-package.mjs",
  "scripts/check-notices.mjs",
  "scripts/embed-wasm.mjs",
  "test/scripts/check-notices.test.ts",
  "test/browser",
  "test/readme-deno.test.ts",
  "test/cli/html-report.test.ts",
  "test/parallel/shared-input.test.ts",
  "bench/run.mjs",
  "src/cli/html-report.ts",
  "src/cli/timeline.ts",
  // devices that migrate together (issue 17)
  "src/protocol/precopy-group.ts",
  "src/protocol/group.ts",
  "src/migrate/demux.ts",
  "src/migrate/restore-devices.ts",
  "src/migrate/save-devices.ts",
  "src/cli/devices.ts",
  "src/cli/demo-devices.ts",
  "test/protocol/precopy-group.test.ts",
  "test/protocol/group.test.ts",
  "test/protocol/group-faults.test.ts",
  "test/migrate/devices.test.ts",
  "test/cli/devices.test.ts",
  "bench/multi.mjs",
  "bench/bundle.mjs",
  // a live migration against its parts (issue 22)
  "bench/live.mjs",
  "examples/devices.mjs",
];

const biome = createRequire(import.meta.url).resolve("@biomejs/biome/bin/biome");
const r = spawnSync(process.execPath, [biome, "ci", "--max-diagnostics=50", ...SCOPE], { stdio: "inherit" });
process.exit(r.status ?? 1);
