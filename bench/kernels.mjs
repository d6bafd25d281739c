// npm run bench:kernels — every kernel against its peers, in this one process run.
// Each part prints its own table (GB/s, our/peer ratio, medians after warm-up).
import { initSync, simdActive } from "../dist/kernels.js";

initSync();
console.log(`# kernel benchmark (node ${process.version}, simd ${simdActive()})`);
const parts = ["memcpy", "checksums", "zero", "chunk", "lz4"];
for (const p of parts) {
  const mod = await import(`./kernels/${p}.mjs`).catch((e) => {
    console.log(`\n(${p}: not available: ${e.message})`);
    return null;
  });
  if (mod) await mod.run();
}
