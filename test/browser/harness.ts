// What the browser suite runs on: Debian's chromium driven by playwright-core
// (no browser download; a fresh profile per run), pages served over loopback
// by a small static server, and the page bundled the way a user bundles the
// library — a project whose node_modules/vfio-migstream is this repository's
// built package, bundled by esbuild or by Vite.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";

const ROOT = join(import.meta.dirname, "../..");

/** The system browser: $CHROMIUM, else Debian's chromium (`apt-get install chromium`). */
export function chromiumPath(): string {
  const p = process.env.CHROMIUM ?? "/usr/bin/chromium";
  if (!existsSync(p))
    throw new Error(`no browser at ${p}: install Debian's chromium (apt-get install chromium) or set CHROMIUM`);
  return p;
}

/** Flags that work in a container as root, with nothing fetched from outside. */
const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface Browser {
  context: BrowserContext;
  /** Requests that left the loopback origin (each was refused). */
  offsite: string[];
  /** Uncaught page errors and console errors. */
  errors: string[];
  open(url: string): Promise<Page>;
  close(): Promise<void>;
}

/** Headless chromium with a fresh profile; every request off `origin` is refused and recorded. */
export async function launch(origin: string): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), "chromium-profile-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath(),
    headless: true,
    args: FLAGS,
    viewport: { width: 1200, height: 900 },
  });
  const offsite: string[] = [];
  const errors: string[] = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(origin) || url.startsWith("data:") || url.startsWith("blob:")) return route.continue();
    offsite.push(url);
    return route.abort();
  });
  return {
    context,
    offsite,
    errors,
    async open(url) {
      const page = await context.newPage();
      page.on("pageerror", (e) => errors.push(`${url}: ${e.message}`));
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(`${url}: console: ${m.text()}`);
      });
      await page.goto(url);
      return page;
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".mjs": "text/javascript",
  ".css": "text/css",
  ".png": "image/png",
  ".svg": "image/svg+xml",
};

/** Serves `dir` on 127.0.0.1 (an ephemeral port). */
export async function serve(dir: string): Promise<{ origin: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname));
    const file = join(dir, path);
    if (!file.startsWith(dir) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, {
      "content-type": TYPES[extname(file)] ?? "application/octet-stream",
      "cache-control": "no-store",
    });
    res.end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A user's project: the page sources, and node_modules/vfio-migstream linked to this repository. */
export function userProject(): string {
  const dir = mkdtempSync(join(tmpdir(), "browser-project-"));
  mkdirSync(join(dir, "node_modules"));
  symlinkSync(ROOT, join(dir, "node_modules", "vfio-migstream"), "dir");
  for (const f of ["cases.ts", "app.ts", "app-vite.ts", "vite-env.d.ts"]) {
    writeFileSync(join(dir, f), readFileSync(join(import.meta.dirname, f)));
  }
  const html = (script: string) =>
    `<!doctype html><meta charset="utf-8"><title>loading</title><script type="module" src="${script}"></script>`;
  writeFileSync(join(dir, "vite.html"), html("./app-vite.ts"));
  return dir;
}

/**
 * esbuild, as the README says: the app and the package's worker entry as two
 * entry points in one output directory, so the library's default worker URL
 * (./worker.js next to the library's code) finds it.
 */
export async function bundleEsbuild(project: string, out: string): Promise<void> {
  const esbuild = await import("esbuild");
  await esbuild.build({
    absWorkingDir: project,
    entryPoints: { app: "./app.ts", worker: "vfio-migstream/worker" },
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    outdir: out,
    logLevel: "error",
  });
  writeFileSync(
    join(out, "index.html"),
    `<!doctype html><meta charset="utf-8"><title>loading</title><script type="module" src="./app.js"></script>`,
  );
}

/** Vite, as the README says: the worker's URL from a `?worker&url` import, passed as workerUrl. */
export async function bundleVite(project: string, out: string): Promise<void> {
  const vite = await import("vite");
  await vite.build({
    root: project,
    base: "./", // the page is served from a subdirectory
    configFile: false,
    logLevel: "error",
    build: { outDir: out, emptyOutDir: true, rollupOptions: { input: join(project, "vite.html") } },
  });
}
