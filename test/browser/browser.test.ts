// The library in a real browser: Debian's chromium, headless, loading pages
// bundled from the built package by esbuild and by Vite and served over
// loopback. Every case (cases.ts) runs in the page and in Node and the results
// must agree: kernel outputs, one-shot and Web Streams encodings (through a
// fetch Response body), a keyed stream and tampered copies of it, and the
// worker pool on module Workers. No request may leave the loopback origin.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
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
let inspected: { devices: { phases: { phase: string }[] }[]; codecs: Record<string, unknown> };

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "browser-suite-"));
  const project = userProject();
  try {
    await bundleEsbuild(project, join(work, "esbuild"));
    await bundleVite(project, join(work, "vite"));
  } finally {
    rmSync(project, { recursive: true, force: true });
  }
  // A saved migration with pre-copy, drawn by `migstream inspect --html`.
  const cli = join(import.meta.dirname, "../../dist/cli.js");
  mkdirSync(join(work, "report"));
  const mig = join(work, "report", "sim.mig");
  execFileSync(process.execPath, [
    cli,
    "save",
    "--device",
    "sim:state=8MiB,seed=1,dirty=4",
    "--codec",
    "zstd",
    "--dedup",
    "-o",
    mig,
    "-q",
  ]);
  inspected = JSON.parse(
    execFileSync(process.execPath, [cli, "inspect", mig, "--json", "--html", join(work, "report", "report.html")], {
      encoding: "utf8",
    }),
  );
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

/** Pixels of `png` (a screenshot) within 24 of each colour, counted in a blank page's canvas. */
async function countColours(png: Buffer, colours: Record<string, string>): Promise<Record<string, number>> {
  const page = await browser.context.newPage();
  try {
    return await page.evaluate(
      async ({ data, colours }) => {
        const img = new Image();
        img.src = `data:image/png;base64,${data}`;
        await img.decode();
        const canvas = document.createElement("canvas");
        canvas.width = img.width;
        canvas.height = img.height;
        const ctx = canvas.getContext("2d");
        if (!ctx) throw new Error("no 2d context");
        ctx.drawImage(img, 0, 0);
        const px = ctx.getImageData(0, 0, img.width, img.height).data;
        const want = Object.entries(colours).map(
          ([k, hex]) => [k, [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16))] as const,
        );
        const counts: Record<string, number> = Object.fromEntries(want.map(([k]) => [k, 0]));
        for (let i = 0; i < px.length; i += 4) {
          for (const [k, [r, g, b]] of want) {
            if (Math.abs(px[i] - r) + Math.abs(px[i + 1] - g) + Math.abs(px[i + 2] - b) < 24) counts[k]++;
          }
        }
        return counts;
      },
      { data: png.toString("base64"), colours },
    );
  } finally {
    await page.close();
  }
}

describe("migstream inspect --html in the browser", () => {
  it("draws phases, codecs and convergence from the page alone (screenshot checked)", async () => {
    const page = await browser.open(`${server.origin}/report/report.html`);
    await page.waitForLoadState("load");
    const shot = await page.screenshot({ fullPage: true });
    const keep = process.env.REPORT_SCREENSHOT;
    if (keep) writeFileSync(keep, shot);
    // The page needs nothing but itself: no requests, no scripts, no errors.
    expect(browser.offsite).toEqual([]);
    expect(browser.errors).toEqual([]);
    expect(await page.evaluate(() => document.scripts.length)).toBe(0);
    // One bar per phase the stream holds, each drawn with a width.
    const phases = inspected.devices[0].phases.map((p) => p.phase);
    const count = (p: string) => phases.filter((x) => x === p).length;
    expect(count("precopy")).toBeGreaterThan(2);
    expect(await page.locator("rect.phase.precopy").count()).toBe(count("precopy"));
    expect(await page.locator("rect.phase.stopcopy").count()).toBe(1);
    const widths = await page
      .locator("rect.phase")
      .evaluateAll((rs) => rs.map((r) => (r as SVGRectElement).getBBox().width));
    expect(widths.every((w) => w >= 1)).toBe(true);
    expect(await page.locator("rect.total.coded").count()).toBe(Object.keys(inspected.codecs).length);
    expect(await page.locator("rect.conv.coded").count()).toBe(count("precopy") + 1);
    // The pixels: the phase chart shows pre-copy blue and stop-and-copy red; the
    // codec charts show zstd purple; the whole page is not blank.
    const phaseChart = await page.locator("svg").nth(0).screenshot();
    const inPhases = await countColours(phaseChart, { precopy: "#1f77b4", stopcopy: "#d62728" });
    expect(inPhases.precopy).toBeGreaterThan(2000);
    expect(inPhases.stopcopy).toBeGreaterThan(0);
    const whole = await countColours(shot, { zstd: "#6a3d9a", white: "#ffffff" });
    expect(whole.zstd).toBeGreaterThan(5000);
    const size = await page.evaluate(() => [
      document.documentElement.scrollWidth,
      document.documentElement.scrollHeight,
    ]);
    expect(whole.white).toBeLessThan(size[0] * size[1] * 0.9);
    await page.close();
  });
});
