// How numbers read in reports and the progress line.

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** 1536 → "1.5 KiB"; exact below 1 KiB. */
export function bytes(n: number): string {
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${UNITS[u]}`;
}

/** Bytes per ms → "512 MiB/s". */
export function rate(n: number, ms: number): string {
  if (!(ms > 0)) return "-";
  return `${bytes(Math.round((n * 1000) / ms))}/s`;
}

/** Milliseconds → "850 ms" / "2.35 s". */
export function duration(ms: number): string {
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/** a / b → "3.42x" ("-" when b is 0). */
export function ratio(a: number, b: number): string {
  return b > 0 ? `${(a / b).toFixed(2)}x` : "-";
}

/** part of whole → "41.0%". */
export function percent(part: number, whole: number): string {
  return whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : "-";
}

/** Left-aligned table rows (first column) with right-aligned numbers. */
export function table(rows: string[][], indent = "  "): string {
  const widths: number[] = [];
  for (const r of rows)
    r.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, c.length);
    });
  return rows
    .map(
      (r) =>
        indent +
        r
          .map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
          .join("  ")
          .trimEnd(),
    )
    .join("\n");
}

/** A u64 digest as exactly 16 hex digits (leading zeros kept). */
export function hex64(v: bigint): string {
  return BigInt.asUintN(64, v).toString(16).padStart(16, "0");
}
