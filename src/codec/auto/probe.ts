// The probes `auto` runs on one chunk before it decides (decide.ts asks for
// each, and only while its codec could still win): the zero-page map, then
// LZ4 on a few sampled live pages (which also tells flat pages apart), then
// zstd level 1 on the compressible ones. Probes sample about
// 1/AUTO_PROBE_SHARE of a chunk's live pages (1..PROBE_PAGES pages), so they
// cost a few percent of coding it. The coder (coder.ts) codes the chunk as
// the decision says.
//
// Kernel memory: probes write into a reused buffer (reserveProbes) and read
// the chunk where it is, so after reserveProbes(n) a chunk in kernel memory
// is probed without allocating there (its views stay attached).

import { MigstreamError } from "../../errors.js";
import { lz4CompressInto } from "../../kernels/lz4.js";
import { allocBuffer, type KernelBuffer, SLOT_OUT, scratch } from "../../kernels/wasm.js";
import { zeroPageMap } from "../../kernels/zero.js";
import { LZ4_DEFAULT_ACCELERATION } from "../lz4.js";
import { encodeZstd, ZSTD_MIN_LEVEL, zstdAvailable, zstdLevelFor } from "../zstd.js";
import { AUTO_FLAT_RATIO, type AutoContext, type AutoProbe, autoDecide } from "./decide.js";

/** Page granularity of the auto probe. */
const PROBE_PAGE = 4096;
/** Most pages the auto probe samples from one chunk. */
const PROBE_PAGES = 4;
/** Most bytes the auto probe samples. */
const PROBE_BYTES = PROBE_PAGE * PROBE_PAGES;
/** The auto probe samples one live page in this many (at least one). */
const AUTO_PROBE_SHARE = 16;

/** What auto codes a chunk with. */
export type AutoChoice = { codec: "zero" | "raw" | "lz4" } | { codec: "zstd"; level: number };

// Reused buffer holding the sampled compressible pages for the zstd probe.
const sample = new Uint8Array(PROBE_BYTES);
// Kernel memory the LZ4 probe writes into (its output is only counted).
let probeOut: KernelBuffer | null = null;

/** Allocates what probing a chunk of up to n bytes needs in kernel memory, so that probing itself does not. */
export function reserveProbes(n: number): void {
  probeOut ??= allocBuffer(PROBE_PAGE);
  scratch(SLOT_OUT, Math.ceil(n / PROBE_PAGE)); // the zero-page map's output
}

/** LZ4 size of one sampled page, or 0 when it does not shrink below AUTO_FLAT_RATIO (flat). */
function probeLz4(page: Uint8Array): number {
  return lz4CompressInto(page, probeOut!.view(0, Math.floor(page.length * AUTO_FLAT_RATIO)), LZ4_DEFAULT_ACCELERATION);
}

/**
 * The codec auto picks for `chunk` (not all zero) under `ctx`, zstd at most
 * at `maxLevel`: decide.ts's rule, fed with the probes it asks for.
 */
export function autoChoose(chunk: Uint8Array, maxLevel: number, ctx: AutoContext | undefined): AutoChoice {
  const n = chunk.length;
  const limits = { maxLevel: zstdAvailable() ? zstdLevelFor(n, maxLevel) : 0 };
  // Whether anything could beat RAW does not depend on the content: ask before looking at it.
  let d = autoDecide({ n, live: n }, limits, ctx);
  if (!("probe" in d)) return d;
  probeOut ??= allocBuffer(PROBE_PAGE);
  const map = zeroPageMap(chunk, PROBE_PAGE);
  const live: number[] = [];
  for (let i = 0; i < map.length; i++) if (map[i] === 0) live.push(i);
  const page = (i: number) => chunk.subarray(i * PROBE_PAGE, Math.min(n, (i + 1) * PROBE_PAGE));
  let liveBytes = 0;
  for (const i of live) liveBytes += Math.min(n, (i + 1) * PROBE_PAGE) - i * PROBE_PAGE;
  const p: AutoProbe = { n, live: liveBytes };
  d = autoDecide(p, limits, ctx);
  const compressible: number[] = [];
  if ("probe" in d) {
    // LZ4 on sampled live pages spread over the chunk, one at a time.
    const take = Math.min(PROBE_PAGES, Math.max(1, Math.round(live.length / AUTO_PROBE_SHARE)));
    p.sampled = p.flat = p.lz4 = 0;
    for (let k = 0; k < take; k++) {
      const i = live[Math.floor(((k + 0.5) * live.length) / take)];
      const part = page(i);
      const coded = probeLz4(part);
      p.sampled += part.length;
      if (coded === 0) {
        p.flat += part.length;
        p.lz4 += part.length;
      } else {
        p.lz4 += coded;
        compressible.push(i);
      }
    }
    d = autoDecide(p, limits, ctx);
  }
  if ("probe" in d) {
    let len = 0;
    for (const i of compressible) {
      const part = page(i);
      sample.set(part, len);
      len += part.length;
    }
    try {
      p.zstd = p.flat! + encodeZstd(sample.subarray(0, len), ZSTD_MIN_LEVEL).length;
      d = autoDecide(p, limits, ctx);
    } catch (e) {
      // zstd is restarting after an abort: decide without it.
      if (!(e instanceof MigstreamError && e.code === "CODEC")) throw e;
      d = autoDecide(p, { maxLevel: 0 }, ctx);
    }
  }
  if ("probe" in d) throw new MigstreamError("INTERNAL", `auto asked for a second ${d.probe} probe`);
  return d;
}
