import { initSync, simdActive } from "../../kernels/index.js";
import type { Command } from "../command.js";

export const kernelsInfo: Command = {
  name: "kernels",
  summary: "show which kernel build (SIMD or scalar) this runtime loads",
  help: "usage: migstream kernels\n\nexample:\n  migstream kernels",
  async run(_argv, io) {
    initSync();
    io.stdout.write(`kernels: ${simdActive() ? "simd" : "scalar"} build\n`);
    return 0;
  },
};
