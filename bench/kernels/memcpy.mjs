// The memory-bandwidth ceiling: TypedArray.set of 1 MiB and 64 MiB buffers.
import { measure, printTable } from "../lib.mjs";

export async function run() {
  const rows = [];
  for (const size of [1 << 20, 64 << 20]) {
    const src = new Uint8Array(size).fill(1);
    const dst = new Uint8Array(size);
    const r = measure(() => dst.set(src), size, { warmup: 3, reps: 9 });
    rows.push({ op: "memcpy (TypedArray.set)", size: size >> 20 ? `${size >> 20} MiB` : `${size} B`, "GB/s": r.gbps });
  }
  printTable("memory bandwidth ceiling", rows);
}
