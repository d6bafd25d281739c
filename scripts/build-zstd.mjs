// Builds zstd (C sources from the zstd-napi package tarball, pinned by sha256)
// plus native/zstd/glue.c into one WebAssembly module with clang, and embeds it
// as base64 in src/kernels/zstd-wasm.generated.ts. Needs clang, wasm-ld and
// wasi-libc (Debian: clang-14, lld-14, wasi-libc, libclang-rt-14-dev-wasm32).
// The generated file is committed; CI does not run this.
//
//   node scripts/build-zstd.mjs                  build and embed
//   node scripts/build-zstd.mjs --out x.wasm     build only (flag experiments)
//     [--opt -O3] [--no-simd] [--no-lto] [--src DIR]  DIR: an unpacked tarball
//
// The generated module's "third-party:" line names what it holds from others:
// zstd, and each archive member the linker took (wasi-libc's malloc, string
// functions...), found with wasm-ld --trace and named by its Debian package.
// Each has an entry in THIRD_PARTY_NOTICES (checked by scripts/check-notices.mjs).
//
// Default flags -Os -msimd128 -flto, chosen by measurement (2-core VM, 64 MiB of
// mixed pages in 256 KiB chunks, CPU time, best of 3 runs of 5): level-1
// compress ~405 MB/s and decompress ~1.33 GB/s at 386 KB, as fast as -O2/-O3
// (with or without SIMD or LTO: 390-408 MB/s, 1.26-1.30 GB/s, 460-527 KB);
// -Oz is 31% slower to compress (279 MB/s, 342 KB). binaryen's wasm-opt on top
// made decompression ~20% slower, so it is kept off (clang runs it when it is
// on PATH, hence the PATH without node_modules/.bin below).
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { basename, join } from "node:path";

const PACKAGE = "zstd-napi@0.0.13";
/** sha256 of the package tarball (carries zstd 1.5.7 under deps/zstd). */
const TARBALL_SHA256 = "5b76defc67c808989c5f3920e14f662d6318b84b8d53ac3e94b99463d8d65e76";
const ZSTD_VERSION = "1.5.7";
/** Linear memory ceiling: ZSTD_WASM_MAX_MEMORY as the binding declares it (one source of truth). */
const MAX_MEMORY = (() => {
  const m = /export const ZSTD_WASM_MAX_MEMORY = (\d+) << 20;/.exec(readFileSync("src/kernels/zstd.ts", "utf8"));
  if (!m) throw new Error("ZSTD_WASM_MAX_MEMORY not found in src/kernels/zstd.ts");
  return Number(m[1]) << 20;
})();
const CC = process.env.CC ?? "clang-14";
const GLUE = "native/zstd/glue.c";
const OUTPUT = "src/kernels/zstd-wasm.generated.ts";
/** Library parts left out: threads, legacy formats, dictionary builder, debug and trace. */
const SKIP = new Set(["pool.c", "threading.c", "debug.c", "zstdmt_compress.c"]);

const args = process.argv.slice(2);
const arg = (name) => {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
};
const opt = arg("--opt") ?? "-Os";
const simd = !args.includes("--no-simd");
const lto = !args.includes("--no-lto");
/** PATH without node_modules/.bin: keeps clang from running the wasm-opt found there. */
const env = {
  ...process.env,
  PATH: (process.env.PATH ?? "")
    .split(":")
    .filter((d) => !d.includes("node_modules"))
    .join(":"),
};
const out = arg("--out");

const cflags = [
  "--target=wasm32-wasi",
  "--sysroot=/",
  "-isystem",
  "/usr/include/wasm32-wasi",
  opt,
  ...(simd ? ["-msimd128"] : []),
  ...(lto ? ["-flto"] : []),
  "-DNDEBUG",
  "-DZSTD_NO_TRACE",
  "-DZSTD_DISABLE_ASM",
  "-DZSTD_LEGACY_SUPPORT=0",
  "-DXXH_NAMESPACE=ZSTD_",
];
const ldflags = [
  "--target=wasm32-wasi",
  "-L/usr/lib/wasm32-wasi",
  opt,
  ...(lto ? ["-flto"] : []),
  "-nostartfiles", // reactor without a start function: nothing runs at instantiation
  "-Wl,--no-entry",
  `-Wl,--max-memory=${MAX_MEMORY}`,
  "-Wl,--strip-all",
  "-Wl,--trace", // prints every input file and archive member it links (thirdPartyLine)
];

/**
 * The generated module's third-party line: zstd, then per Debian package the
 * archive members `--trace` reported (lines like `/usr/lib/x/libc.a(memcpy.o)`).
 */
function thirdPartyLine(trace) {
  const byArchive = new Map();
  for (const m of trace.matchAll(/^(\/\S+\.a)\((.+)\)$/gm)) byArchive.set(m[1], [...(byArchive.get(m[1]) ?? []), m[2]]);
  const parts = [`zstd ${ZSTD_VERSION}`];
  for (const [archive, members] of byArchive) {
    const pkg = execFileSync("dpkg-query", ["-S", archive], { encoding: "utf8" }).split(":")[0];
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format, not a template.
    const version = execFileSync("dpkg-query", ["-W", "-f", "${Version}", pkg], { encoding: "utf8" });
    parts.push(`${pkg} ${version} (${basename(archive)}: ${[...new Set(members)].sort().join(", ")})`);
  }
  return `//! third-party: ${parts.join("; ")}\n//! licences: THIRD_PARTY_NOTICES (in the package root)\n`;
}

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

/** Fetches and unpacks the pinned tarball into `dir`; returns the zstd lib directory. */
function fetchSource(dir) {
  const name = execFileSync("npm", ["pack", PACKAGE, "--silent"], { cwd: dir, encoding: "utf8" })
    .trim()
    .split("\n")
    .pop();
  const got = sha256(readFileSync(join(dir, name)));
  if (got !== TARBALL_SHA256) throw new Error(`${name}: sha256 ${got}, expected ${TARBALL_SHA256}`);
  execFileSync("tar", ["-xzf", name], { cwd: dir });
  return join(dir, "package/deps/zstd/lib");
}

function sources(lib) {
  const files = [];
  for (const part of ["common", "compress", "decompress"]) {
    for (const f of readdirSync(join(lib, part)).sort())
      if (f.endsWith(".c") && !SKIP.has(f)) files.push(join(lib, part, f));
  }
  return [...files, GLUE];
}

/** Compiles `files` into `dir` with up to one clang per core. */
async function compile(files, lib, dir) {
  const { execFile } = await import("node:child_process");
  const queue = [...files];
  const objects = [];
  const worker = async () => {
    for (let f = queue.shift(); f !== undefined; f = queue.shift()) {
      const o = join(dir, `${basename(f, ".c")}.o`);
      objects.push(o);
      await new Promise((resolve, reject) =>
        execFile(CC, [...cflags, `-I${lib}`, `-I${join(lib, "common")}`, "-c", f, "-o", o], { env }, (e, _o, err) =>
          e ? reject(new Error(`${f}: ${err}`)) : resolve(),
        ),
      );
    }
  };
  await Promise.all(Array.from({ length: availableParallelism() }, worker));
  return objects.sort();
}

function checkModule(bytes) {
  const m = new WebAssembly.Module(bytes);
  const imports = WebAssembly.Module.imports(m);
  if (imports.length > 0)
    throw new Error(`the module imports ${imports.map((i) => `${i.module}.${i.name}`).join(", ")}`);
}

const work = mkdtempSync(join(tmpdir(), "zstd-wasm-"));
try {
  const lib = arg("--src") ? join(arg("--src"), "deps/zstd/lib") : fetchSource(work);
  const objects = await compile(sources(lib), lib, work);
  const wasmPath = out ?? join(work, "zstd.wasm");
  const trace = execFileSync(CC, [...ldflags, ...objects, "-o", wasmPath], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    env,
  });
  const wasm = readFileSync(wasmPath);
  checkModule(wasm);
  const flags = [...cflags.slice(4)].join(" ");
  if (out === undefined) {
    writeFileSync(
      OUTPUT,
      `// Generated by scripts/build-zstd.mjs (npm run build:zstd) — do not edit.\n` +
        `// zstd ${ZSTD_VERSION} from ${PACKAGE} (tarball sha256 ${TARBALL_SHA256})\n` +
        `// + native/zstd/glue.c, ${CC} --target=wasm32-wasi ${flags}\n` +
        `// link: ${ldflags.slice(2, -1).join(" ")}; ${wasm.length} bytes, sha256 ${sha256(wasm)}\n` +
        thirdPartyLine(trace) +
        `export const ZSTD_WASM_BASE64 = "${wasm.toString("base64")}";\n`,
    );
  }
  console.log(`zstd wasm (${flags}): ${wasm.length} bytes${out ? ` -> ${out}` : ` -> ${OUTPUT}`}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
