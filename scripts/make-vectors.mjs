// Writes the golden vectors test/vectors/<name>.mstream from the inputs and
// options in test/vectors/cases.mjs, with the built library (run
// `npm run build` first), and prints the annotated hex dump of the minimal
// vector that docs/FORMAT.md §13 shows.
// Usage: node scripts/make-vectors.mjs [--check]   (--check: compare, write nothing)
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dir = join(root, "test", "vectors");
const check = process.argv.includes("--check");

const lib = await import(join(root, "dist", "index.js"));
const { vectorCases } = await import(join(dir, "cases.mjs"));

let stale = 0;
for (const c of vectorCases()) {
  const bytes = await lib.encodeStreamAsync(c.input, c.options);
  const file = join(dir, `${c.name}.mstream`);
  let old = null;
  try {
    old = readFileSync(file);
  } catch {}
  const same = old !== null && Buffer.compare(old, bytes) === 0;
  if (!same) stale++;
  if (!check && !same) writeFileSync(file, bytes);
  console.log(
    `${c.name.padEnd(8)} ${String(bytes.length).padStart(6)} B  ${same ? "unchanged" : check ? "DIFFERS" : "written"}  ${c.note}`,
  );
}

/** The hex dump of FORMAT.md §13: one line per structure, with its name. */
export function annotate(s) {
  const hex = (a, b) => Buffer.from(s.subarray(a, b)).toString("hex").replace(/(..)/g, "$1 ").trim();
  const lines = [];
  const row = (a, b, what) => {
    for (let at = a; at < b; at += 16)
      lines.push(
        `${at.toString(16).padStart(4, "0")}  ${hex(at, Math.min(b, at + 16)).padEnd(47)}  ${at === a ? what : ""}`.trimEnd(),
      );
  };
  const names = { 1: "DEVICE_BEGIN", 2: "PHASE", 3: "TRANSACTION", 4: "CHUNK", 5: "DEVICE_END", 6: "STREAM_END" };
  row(0, 8, "magic");
  row(8, 16, "version 1.0, checksum_alg 1, mac_alg 0, flags 0");
  row(16, 32, "stream_id");
  row(32, 56, "max_frame, max_chunk, max_transaction, dedup_window, max_metadata, max_devices, reserved");
  row(56, 64, "header_check");
  const tag = s[11] === 0 ? 0 : 16;
  let at = 64;
  while (at < s.length) {
    const len = s.readUInt32LE(at + 8);
    const type = s[at];
    row(
      at,
      at + 16,
      `${names[type] ?? "frame"} header: type, flags, device ${s.readUInt16LE(at + 2)}, seq ${s.readUInt32LE(at + 4)}, length ${len}, header_crc`,
    );
    if (len > 0) row(at + 16, at + 16 + len, `${names[type] ?? "frame"} payload`);
    row(at + 16 + len, at + 24 + len, "payload_check");
    if (tag) row(at + 24 + len, at + 24 + len + tag, "MAC tag");
    at += 24 + len + tag;
  }
  return lines.join("\n");
}

const minimal = readFileSync(join(dir, "minimal.mstream"));
console.log(`\nminimal.mstream (${minimal.length} bytes):\n${annotate(minimal)}`);
if (check && stale > 0) {
  console.error(`${stale} vector(s) differ from what this build encodes`);
  process.exit(1);
}
