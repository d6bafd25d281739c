// `migstream kernels`: which kernel build (SIMD or scalar) this runtime loads.
import { initSync, simdActive } from "../../kernels/index.js";
import { parseCommand } from "../args.js";
import type { Command } from "../command.js";

export const kernelsInfo: Command = {
  name: "kernels",
  summary: "show which kernel build (SIMD or scalar) this runtime loads",
  help: "usage: migstream kernels [--json]\n\nexample:\n  migstream kernels",
  async run(argv, io) {
    // No options of its own; an unknown or repeated one is a USAGE error, as in every command.
    const { values: v } = parseCommand("kernels", argv, {}, { min: 0, max: 0, names: "" });
    initSync();
    const build = simdActive() ? "simd" : "scalar";
    io.stdout.write(v.json ? `${JSON.stringify({ kernels: build })}\n` : `kernels: ${build} build\n`);
    return 0;
  },
};
