// `migstream inspect --html`: the page holds what --json says (one phase bar per
// PHASE, one codec bar per codec), escapes what the stream names, has no
// script and fetches nothing; a damaged stream still gets its page, with the
// damage named, and exit 2. (The browser suite draws and screenshots it.)
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeStreamAsync } from "../../src/format/index.js";
import { ensureCli, releaseCli, run, tempDir } from "./helpers.js";

let tmp: ReturnType<typeof tempDir>;
const file = (name: string) => join(tmp.dir, name);

beforeAll(async () => {
  ensureCli();
  tmp = tempDir();
  const data = new Uint8Array(1 << 20).map((_, i) => (i % 8192 < 4096 ? 0 : (i * 7) & 0x3f));
  const txn = (k: number) => ({ kind: "transaction" as const, data: data.subarray(k << 18, (k + 1) << 18) });
  const stream = await encodeStreamAsync(
    [
      {
        id: 1,
        name: '<script>alert("x")</script>&',
        items: [
          { kind: "phase", phase: "precopy", iteration: 0 },
          txn(0),
          txn(1),
          { kind: "phase", phase: "precopy", iteration: 1 },
          txn(2),
          { kind: "phase", phase: "stopcopy", iteration: 0 },
          txn(3),
        ],
      },
    ],
    { codec: "lz4" },
  );
  writeFileSync(file("s.mig"), stream);
  const bad = stream.slice();
  bad[bad.length >> 1] ^= 1;
  writeFileSync(file("bad.mig"), bad);
});

afterAll(() => {
  tmp?.cleanup();
  releaseCli();
});

describe("inspect --html", () => {
  it("draws every phase and codec of the stream, escaped, with no script or outside reference", async () => {
    const r = await run(["inspect", file("s.mig"), "--html", file("s.html"), "--json"]);
    expect(r.code).toBe(0);
    const stats = JSON.parse(r.stdout);
    const page = readFileSync(file("s.html"), "utf8");
    expect(page).not.toMatch(/<script|src=|href=|url\(|@import/i);
    expect(page).toContain("&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;&#38;");
    expect(page.match(/class="phase precopy"/g)).toHaveLength(2);
    expect(page.match(/class="phase stopcopy"/g)).toHaveLength(1);
    expect(page.match(/class="total coded /g)).toHaveLength(Object.keys(stats.codecs).length);
    expect(page).toContain("every checksum, sequence number and trailer");
  });

  it("a damaged stream still gets its page, naming the damage; exit 2", async () => {
    const r = await run(["inspect", file("bad.mig"), "--html", file("bad.html"), "-q"]);
    expect(r.code).toBe(2);
    const page = readFileSync(file("bad.html"), "utf8");
    expect(page).toMatch(/The stream is damaged: .*(CHECKSUM|checksum|mismatch)/);
    expect(page).toContain('class="phase precopy"');
  });

  it("--html - writes the page to stdout alone", async () => {
    const r = await run(["inspect", file("s.mig"), "--html", "-"]);
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith("<!doctype html>")).toBe(true);
    expect(r.stdout.trimEnd().endsWith("</html>")).toBe(true);
  });
});
