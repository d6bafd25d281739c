// Seeded random-mutation fuzzing inside the suite (a fixed number of cases,
// a few seconds): every damaged stream fails with a typed stream error or
// decodes to exactly the original data. `npm run fuzz -- --seconds N` runs
// the same cases for as long as asked.
import { beforeAll, expect, it } from "vitest";
import { init } from "../../src/codec/index.js";
import { makeImage } from "../../src/device/pages.js";
import { isMigstreamError } from "../../src/errors.js";
import * as format from "../../src/format/index.js";
import { xxh3_64 } from "../../src/kernels/xxh3.js";
// @ts-expect-error plain JS module shared with scripts/fuzz.mjs
import { fuzzCase, makeCorpus, prng } from "./fuzz-core.mjs";

const api = { ...format, isMigstreamError, xxh3_64 };
/** Cases run in the suite (about two seconds on one core). */
const CASES = 1500;

let corpus: { name: string }[] = [];
beforeAll(async () => {
  await init();
  corpus = await makeCorpus(api, makeImage);
});

it(`${CASES} seeded mutations: typed errors or the original data, nothing else`, async () => {
  const codes = new Map<string, number>();
  let ok = 0;
  for (let seed = 1; seed <= CASES; seed++) {
    const rnd = prng(seed * 2654435761);
    const entry = corpus[seed % corpus.length];
    const r = await fuzzCase(api, corpus, entry, rnd);
    if (r.outcome === "ok") ok++;
    else codes.set(r.code, (codes.get(r.code) ?? 0) + 1);
  }
  // The mutations reach many different checks, and a few are harmless.
  expect(codes.size).toBeGreaterThanOrEqual(7);
  expect(ok).toBeLessThan(CASES / 4);
});
