// The library in a real browser: Debian's chromium, headless, loading pages
// bundled from the built package by esbuild and by Vite and served over
// loopback. Every case (cases.ts) runs in the page and in Node and the results
// must agree: kernel outputs, one-shot and Web Streams encodings (through a
// fetch Response body), a keyed stream and tampered copies of it, and the
// worker pool on module Workers. No request may leave the loopback origin.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPeers } from "../kernels/checksum-peers.js";
import { type CaseName, cases, mixedBytes } from "./cases.js";
import { type Browser, bundleEsbuild, bundleVite, launch, serve, userProject } from "./harness.js";

let work: string;
let server: Awaited<ReturnType<typeof serve>>;
let browser: Browser;
const pages: Record<"esbuild" | "vite", Page | undefined> = { esbuild: undefined, vite: undefined };

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "browser-suite-"));
  const project = userProject();
  try {
    await bundleEsbuild(project, join(work, "esbuild"));
    await bundleVite(project, join(work, "vite"));
  } finally {
    rmSync(project, { recursive: true, force: true });
  }
  server = await serve(work);
  browser = await launch(server.origin);
  for (const [name, path] of [
    ["esbuild", "/esbuild/index.html"],
    ["vite", "/vite/vite.html"],
  ] as const) {
    const page = await browser.open(`${server.origin}${path}`);
    await page
      .waitForFunction(() => document.title === "ready", undefined, { timeout: 30_000 })
      .catch((e) => {
        throw new Error(`${path} did not load: ${browser.errors.join("; ") || e}`);
      });
    pages[name] = page;
  }
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Runs case `name` in the page built by `bundler`. */
async function inBrowser(bundler: keyof typeof pages, name: CaseName): Promise<unknown> {
  const page = pages[bundler];
  if (!page) throw new Error(`the ${bundler} page did not load`);
  return page.evaluate((n) => {
    const all = (globalThis as unknown as { migstreamCases: Record<string, () => Promise<unknown>> }).migstreamCases;
    return all[n]();
  }, name);
}

describe("browser (chromium) against Node", () => {
  it("loads with no errors and fetches nothing off loopback", () => {
    expect(browser.errors).toEqual([]);
    expect(browser.offsite).toEqual([]);
  });

  it("kernels: the same checksums, zero map, chunk boundaries, LZ4 and zstd output as Node", async () => {
    const node = await cases.kernels();
    // Node's results agree with an independent implementation (hash-wasm)...
    const data = mixedBytes((1 << 20) + 4093, 11);
    const peers = await loadPeers([0n]);
    const hex = (v: bigint) => v.toString(16).padStart(16, "0");
    expect(node.crc32c).toBe(peers.crc32c(data));
    expect(node.xxh64).toBe(hex(peers.xxh64(data, 0n)));
    expect(node.xxh3).toBe(hex(peers.xxh3(data, 0n)));
    expect(node.lz4RoundTrip && node.zstdRoundTrip).toBe(true);
    // ...and the browser's agree with Node's, on the SIMD build.
    const web = await inBrowser("esbuild", "kernels");
    expect(web).toEqual(node);
    expect((web as { simd: boolean }).simd).toBe(true);
  });

  it("one-shot encode and decode: byte-identical streams for raw, LZ4, zstd and dedup", async () => {
    const node = await cases.oneShot();
    expect(Object.entries(node).filter(([k, v]) => k.endsWith("round trip") && v !== true)).toEqual([]);
    expect(await inBrowser("esbuild", "oneShot")).toEqual(node);
  });

  it("Web Streams: encoder stream → fetch Response body → decoder stream restores the bytes", async () => {
    const node = await cases.webStreams();
    expect(node.roundTrip).toBe(true);
    expect(await inBrowser("esbuild", "webStreams")).toEqual(node);
  });

  it("keyed stream restores; a wrong key and flipped bytes are refused with the same typed errors", async () => {
    const node = await cases.keyed();
    expect(node.roundTrip).toBe(true);
    expect(node.wrongKey).toBe("MAC");
    for (const [k, v] of Object.entries(node)) {
      if (k.startsWith("flip@"))
        expect(v, k).toMatchObject({
          code: expect.stringMatching(/^(MAC|CHECKSUM|TRUNCATED)$/),
          offset: expect.any(Number),
        });
    }
    expect(await inBrowser("esbuild", "keyed")).toEqual(node);
    expect(await inBrowser("vite", "keyed")).toEqual(node);
  });

  it("worker pool on module Workers (esbuild: default worker URL) codes Node's bytes", async () => {
    const node = await cases.pool();
    expect(node).toMatchObject({ workers: 2, inline: false, sameAsInline: true, decodedOnWorkers: true });
    expect(await inBrowser("esbuild", "pool")).toEqual(node);
  });

  it("worker pool on module Workers (Vite: ?worker&url) codes Node's bytes", async () => {
    const node = await cases.pool();
    expect(await inBrowser("vite", "pool")).toEqual(node);
    expect(browser.errors).toEqual([]);
  });
});
