// migstream CLI entry (placeholder until the CLI issue lands its commands).
import { initSync, simdActive } from "../kernels/index.js";

initSync();
console.log(`migstream: kernels loaded (simd: ${simdActive()})`);
