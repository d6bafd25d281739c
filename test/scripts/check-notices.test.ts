// The notices check must pass on this tree and fail when an embedded part
// loses its entry, when an entry stops naming a linked part, and when dist/
// carries a WebAssembly module that no generated module accounts for.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs script without declarations
import { checkNotices, parseThirdParty } from "../../scripts/check-notices.mjs";

const root = join(import.meta.dirname, "../..");
const notices = readFileSync(join(root, "THIRD_PARTY_NOTICES"), "utf8");
const zstdGenerated = readFileSync(join(root, "src/kernels/zstd-wasm.generated.ts"), "utf8");
const tmp = mkdtempSync(join(tmpdir(), "notices-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("check-notices", () => {
  it("passes on this tree and its built dist/", () => {
    expect(checkNotices({ root, notices, dist: join(root, "dist") })).toEqual([]);
  });

  it("reads the generated modules' third-party lines", () => {
    const line = /^\/\/! third-party: (.*)$/m.exec(zstdGenerated)?.[1] ?? "";
    const items = parseThirdParty(line);
    expect(items[0]).toEqual({ heading: "zstd 1.5.7", parts: [] });
    expect(items[1].heading).toMatch(/^wasi-libc \S+$/);
    expect(items[1].parts).toContain("dlmalloc.o");
  });

  it("fails when an embedded part has no entry", () => {
    const without = notices.replace(/^## wasi-libc .*$/m, "## something else");
    expect(checkNotices({ root, notices: without }).join("\n")).toMatch(
      /zstd-wasm\.generated\.ts: THIRD_PARTY_NOTICES has no "## wasi-libc /,
    );
  });

  it("fails when an entry does not name a linked member", () => {
    const without = notices.replaceAll("dlmalloc.o", "dlmalloc");
    expect(checkNotices({ root, notices: without })).toEqual([expect.stringMatching(/does not name dlmalloc\.o$/)]);
  });

  it("fails when an AssemblyScript library function goes unnamed", () => {
    const without = notices.replaceAll("~lib/polyfills/bswap<u64>", "bswap");
    expect(checkNotices({ root, notices: without }).join("\n")).toMatch(
      /"## AssemblyScript \S+" entry does not name ~lib\/polyfills\/bswap<u64>/,
    );
  });

  it("fails on a WebAssembly module in dist/ that no build script accounts for", () => {
    const foreign = Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, ...new Array(60).fill(7)]).toString("base64");
    writeFileSync(join(tmp, "a.js"), `export const W = "${foreign}";\n`);
    expect(checkNotices({ root, notices, dist: tmp })).toEqual([
      expect.stringMatching(/^a\.js embeds a WebAssembly module at offset 17 that no generated module/),
    ]);
  });

  it("fails on an embedded module whose file lost its third-party comment", () => {
    const blob = /ZSTD_WASM_BASE64 = "([^"]+)"/.exec(zstdGenerated)?.[1];
    writeFileSync(join(tmp, "a.js"), `export const W = "${blob}";\n`);
    expect(checkNotices({ root, notices, dist: tmp })).toEqual([
      "a.js embeds src/kernels/zstd-wasm.generated.ts without its third-party comment",
    ]);
  });
});
