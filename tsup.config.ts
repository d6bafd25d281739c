import { defineConfig } from "tsup";

export default defineConfig([
  {
    // Library entries: platform-neutral (no node: imports at top level of kernels).
    entry: { index: "src/index.ts", kernels: "src/kernels/entry.ts", worker: "src/parallel/worker.ts" },
    format: ["esm"],
    platform: "neutral",
    target: "es2022",
    // tsup 8 passes `baseUrl` to TypeScript 6, which deprecates it.
    dts: { compilerOptions: { ignoreDeprecations: "6.0" } },
    // No source maps: the output is not minified, and the package ships what runs.
    sourcemap: false,
    clean: true,
    splitting: true,
    external: [/^node:/],
  },
  {
    entry: { cli: "src/cli/main.ts" },
    format: ["esm"],
    platform: "node",
    target: "node20",
    sourcemap: false,
    banner: { js: "#!/usr/bin/env node" },
    // Dynamic imports (zstd's binding) stay separate chunks, loaded only when needed.
    splitting: true,
  },
]);
