// Checks that THIRD_PARTY_NOTICES covers everything the package embeds from
// others. The build scripts name what they embed: every script that writes a
// src/**/*.generated.ts module gives it a `//! third-party:` line, listing
// `NAME VERSION` or `NAME VERSION (part, part...)` items separated by "; ".
// Each item needs a `## NAME VERSION` entry in the notices that names each of
// its parts. With a dist directory, every WebAssembly module embedded there
// (base64 text starting "AGFzbQ", the wasm magic) must be one of those
// generated modules, and its file must carry the module's third-party line.
//
//   node scripts/check-notices.mjs [--dist DIR] [--notices FILE]
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const WASM_BASE64 = /"(AGFzbQ[A-Za-z0-9+/=]{64,})"/g;
const THIRD_PARTY = /^\/\/! third-party: (.*)$/m;

/** Files under `dir` (recursively) whose names pass `keep`. */
function walk(dir, keep) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p, keep));
    else if (keep(e.name)) out.push(p);
  }
  return out.sort();
}

/** Splits a third-party line into items at top-level "; ". */
export function parseThirdParty(line) {
  const items = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < line.length; i++) {
    if (line[i] === "(") depth++;
    else if (line[i] === ")") depth--;
    else if (depth === 0 && line.startsWith("; ", i)) {
      items.push(line.slice(start, i));
      start = i + 2;
    }
  }
  items.push(line.slice(start));
  return items.map((item) => {
    const m = /^(.+?) (\S+?)(?: \((.*)\))?$/.exec(item.trim());
    if (!m) return { heading: item.trim(), parts: [], bad: true };
    // "libc.a: a.o, b.o" names the archive first; the parts are its members.
    const parts = (m[3] ?? "")
      .replace(/^[^:,]+: /, "")
      .split(", ")
      .filter(Boolean);
    return { heading: `${m[1]} ${m[2]}`, parts };
  });
}

/** `## heading` sections of the notices text. */
export function noticeSections(text) {
  const sections = new Map();
  const heads = [...text.matchAll(/^## (.+)$/gm)];
  for (const [i, h] of heads.entries())
    sections.set(h[1].trim(), text.slice(h.index, heads[i + 1]?.index ?? text.length));
  return sections;
}

/**
 * Problems found (empty when the notices cover everything). `root` is the
 * repository; `notices` the notices text; `dist` an optional built or packed
 * dist directory to scan for embedded modules.
 */
export function checkNotices({ root, notices, dist }) {
  const problems = [];
  const sections = noticeSections(notices);
  const scripts = walk(join(root, "scripts"), (n) => n.endsWith(".mjs"));
  for (const s of scripts) {
    const text = readFileSync(s, "utf8");
    if (/\.generated\.ts/.test(text) && /writeFileSync/.test(text) && !text.includes("//! third-party:")) {
      problems.push(`${relative(root, s)} writes a generated module without a "//! third-party:" line`);
    }
  }
  const modules = [];
  for (const g of walk(join(root, "src"), (n) => n.endsWith(".generated.ts"))) {
    const text = readFileSync(g, "utf8");
    const line = THIRD_PARTY.exec(text)?.[1];
    const name = relative(root, g);
    if (line === undefined) {
      problems.push(`${name}: no "//! third-party:" line (run its build script)`);
      continue;
    }
    modules.push({ name, line, blobs: [...text.matchAll(WASM_BASE64)].map((m) => m[1]) });
    for (const item of parseThirdParty(line)) {
      if (item.bad) {
        problems.push(`${name}: cannot read third-party item "${item.heading}" (want NAME VERSION [(parts)])`);
        continue;
      }
      const body = sections.get(item.heading);
      if (body === undefined) {
        problems.push(`${name}: THIRD_PARTY_NOTICES has no "## ${item.heading}" entry`);
        continue;
      }
      for (const part of item.parts)
        if (!body.includes(part)) problems.push(`${name}: the "## ${item.heading}" entry does not name ${part}`);
    }
  }
  if (dist !== undefined) {
    for (const f of walk(dist, (n) => n.endsWith(".js"))) {
      const text = readFileSync(f, "utf8");
      for (const m of text.matchAll(WASM_BASE64)) {
        const from = modules.find((mod) => mod.blobs.includes(m[1]));
        if (!from)
          problems.push(
            `${relative(dist, f)} embeds a WebAssembly module at offset ${m.index} that no generated module with a third-party line produced`,
          );
        else if (!text.includes(`third-party: ${from.line}`))
          problems.push(`${relative(dist, f)} embeds ${from.name} without its third-party comment`);
      }
    }
  }
  return problems;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
  const root = fileURLToPath(new URL("..", import.meta.url));
  const notices = readFileSync(opt("--notices") ?? join(root, "THIRD_PARTY_NOTICES"), "utf8");
  const problems = checkNotices({ root, notices, dist: opt("--dist") });
  for (const p of problems) console.error(`notices: ${p}`);
  if (problems.length) process.exit(1);
  console.log(
    `notices: every embedded third-party part has an entry (${[...noticeSections(notices).keys()].join("; ")})`,
  );
}
