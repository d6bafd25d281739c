// The package as users get it: `npm pack`ed and unpacked into a project's
// node_modules, each entry imported by its package name ("vfio-migstream",
// "/kernels", "/protocol", "/sim", "/pool"). The root entry is the curated
// grid (no tuning constants, test hooks or kernels), and every name any entry
// exports has a doc comment.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { entryExports } from "./docs-check.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const ENTRIES: Record<string, string> = {
  "vfio-migstream": "src/index.ts",
  "vfio-migstream/kernels": "src/kernels/entry.ts",
  "vfio-migstream/protocol": "src/protocol/index.ts",
  "vfio-migstream/sim": "src/sim.ts",
  "vfio-migstream/pool": "src/parallel/index.ts",
};

/** The root entry's values, exactly: a name added or removed here is a decision, not an accident. */
const ROOT_VALUES = [
  "CODECS",
  "ERROR_CODES",
  "FdRegion",
  "HandedOverDataFd",
  "KernelMigration",
  "MigrationDecoderStream",
  "MigrationEncoderStream",
  "MigstreamError",
  "StreamDecoder",
  "StreamDemux",
  "STREAM_ERROR_CODES",
  "StreamEncoder",
  "V2Handler",
  "VfioUserMigration",
  "VfioUserRegion",
  "VfioUserServer",
  "connectVfioUser",
  "decodeStream",
  "decodeStreamAsync",
  "denoSyscalls",
  "encodeStream",
  "encodeStreamAsync",
  "findMigrationRegion",
  "init",
  "isMigstreamError",
  "openDevice",
  "openVfioUser",
  "queryRegionInfo",
  "restoreDevice",
  "restoreDevices",
  "saveDevice",
  "saveDevices",
  "verifyStream",
  "writableSink",
];

let dir = "";
/** Each entry's runtime export names, imported from the unpacked package by its name. */
let imported: Record<string, string[]> = {};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "migstream-pack-"));
  const tgz = execFileSync("npm", ["pack", "--silent", "--pack-destination", dir], { cwd: root, encoding: "utf8" })
    .trim()
    .split("\n")
    .pop()!;
  const pkg = join(dir, "node_modules", "vfio-migstream");
  mkdirSync(pkg, { recursive: true });
  execFileSync("tar", ["-xzf", join(dir, tgz), "-C", pkg, "--strip-components=1"]);
  const probe = join(dir, "probe.mjs");
  writeFileSync(
    probe,
    `const out = {};\nfor (const name of ${JSON.stringify(Object.keys(ENTRIES))}) out[name] = Object.keys(await import(name)).sort();\nconsole.log(JSON.stringify(out));\n`,
  );
  imported = JSON.parse(execFileSync(process.execPath, [probe], { cwd: dir, encoding: "utf8" }));
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("the packed package", () => {
  it("resolves every entry by its name, and the root entry exports the curated grid only", () => {
    for (const name of Object.keys(ENTRIES)) expect(imported[name]?.length, name).toBeGreaterThan(0);
    expect(imported["vfio-migstream"]).toEqual([...ROOT_VALUES].sort());
    // Tuning constants, test hooks and the kernels stay off the root.
    for (const n of imported["vfio-migstream"])
      expect(n).not.toMatch(
        /^(SINK_|AUTO_|WORKER_|FAULT_|CODER_|BATCH_|__)|^(lz4|zstd|xxh|crc32c|allocBuffer|initSync|ready)/,
      );
    expect(imported["vfio-migstream/pool"]).toContain("WorkerPool");
    expect(imported["vfio-migstream/sim"]).toEqual(
      expect.arrayContaining(["SimDevice", "InProcessRegion", "throttle"]),
    );
    expect(imported["vfio-migstream/protocol"]).toEqual(expect.arrayContaining(["save", "resume", "startResumed"]));
    expect(imported["vfio-migstream/kernels"]).toEqual(
      expect.arrayContaining(["init", "initSync", "lz4CompressInto", "zstdCompress", "xxh3_64"]),
    );
  });

  it("every name every entry exports (types too) has a doc comment", () => {
    const entries = entryExports(Object.values(ENTRIES).map((f) => join(root, f)));
    for (const [file, e] of entries) {
      expect(e.names.length, file).toBeGreaterThan(0);
      expect(e.undocumented, `undocumented exports of ${file}`).toEqual([]);
    }
    // The source entries and the built ones agree on the values.
    for (const [name, file] of Object.entries(ENTRIES)) {
      const declared = entries.get(join(root, file))!.names;
      for (const v of imported[name]) expect(declared, `${name}: ${v}`).toContain(v);
    }
  });
});
