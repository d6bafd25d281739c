// Exhaustive damage to small streams of every feature: every bit flip, every
// truncation, and every swap, drop and duplication of frames is detected with
// a typed error — never a crash, never wrong output.
import { beforeAll, describe, expect, it } from "vitest";
import { isMigstreamError } from "../../src/errors.js";
import { type DecodedStream, decodeStream, decodeStreamAsync, verifyStream } from "../../src/format/index.js";
import { ALL_CODES, errorOf, errorOfAsync, expectSameDevices, KEY, reframe, same, splitFrames } from "./helpers.js";
import { type SmallStream, smallStreams } from "./small-streams.js";

type Stream = SmallStream & { bytes: Uint8Array };
let streams: Stream[] = [];
beforeAll(async () => {
  streams = await smallStreams();
});

const keyOf = (s: Stream) => s.options.key;

/** Decodes with the API the stream needs; returns the result or the typed error. */
async function attempt(s: Stream, bytes: Uint8Array): Promise<DecodedStream | { code: string }> {
  try {
    return keyOf(s) ? await decodeStreamAsync(bytes, { key: KEY }) : decodeStream(bytes);
  } catch (e) {
    if (!isMigstreamError(e)) throw e;
    return e;
  }
}

function isError(r: DecodedStream | { code: string }): r is { code: string } {
  return "code" in r;
}

describe("every bit flip is detected", () => {
  for (const name of ["raw", "lz4", "zstd", "multi", "dedup", "mac"]) {
    it(`${name}: by decode and by verify-only`, async () => {
      const s = streams.find((x) => x.name === name)!;
      const codes = new Map<string, number>();
      const b = s.bytes.slice();
      for (let i = 0; i < b.length; i++) {
        for (let bit = 0; bit < 8; bit++) {
          b[i] ^= 1 << bit;
          const r = await attempt(s, b);
          if (!isError(r)) throw new Error(`${s.name}: flip of byte ${i} bit ${bit} went undetected`);
          if (!ALL_CODES.includes(r.code as never)) throw new Error(`flip of byte ${i} bit ${bit}: ${r.code}`);
          codes.set(r.code, (codes.get(r.code) ?? 0) + 1);
          if (!keyOf(s)) {
            const v = errorOf(() => verifyStream(b)).code;
            if (!ALL_CODES.includes(v)) throw new Error(`verify, flip of byte ${i} bit ${bit}: ${v}`);
          }
          b[i] ^= 1 << bit;
        }
      }
      // Most flips land in payloads and their checks.
      expect(codes.get("CHECKSUM") ?? 0).toBeGreaterThan(b.length * 4);
      if (keyOf(s)) expect(codes.get("MAC") ?? 0).toBeGreaterThanOrEqual(s.bytes.length - 64);
    });
  }
});

describe("every truncation is detected", () => {
  it("as TRUNCATED, at every offset", async () => {
    for (const s of streams) {
      for (let n = 0; n < s.bytes.length; n++) {
        const r = await attempt(s, s.bytes.subarray(0, n));
        if (!isError(r)) throw new Error(`${s.name}: truncation to ${n} bytes went undetected`);
        expect(r.code, `${s.name} cut at ${n}`).toBe("TRUNCATED");
      }
      // Anything after STREAM_END is refused too.
      const extra = Buffer.concat([s.bytes, Uint8Array.of(0)]);
      expect(((await attempt(s, extra)) as { code: string }).code).toBe("FORMAT");
    }
  });
});

/** Frame byte ranges of a stream. */
function frameBytes(s: Uint8Array): Uint8Array[] {
  return splitFrames(s).frames.map((f) => s.subarray(f.offset, f.offset + f.size));
}

describe("moved frames are detected", () => {
  it("swapping, dropping or duplicating raw frames: SEQUENCE (or TRUNCATED at the end)", async () => {
    for (const s of streams) {
      const head = s.bytes.subarray(0, 64);
      const fr = frameBytes(s.bytes);
      const n = fr.length;
      const tryIt = async (list: Uint8Array[], what: string) => {
        const r = await attempt(s, Buffer.concat([head, ...list]));
        if (!isError(r)) throw new Error(`${s.name}: ${what} went undetected`);
        // Duplicating STREAM_END puts data after the end: FORMAT.
        expect(["SEQUENCE", "TRUNCATED", "FORMAT"], `${s.name}: ${what}`).toContain(r.code);
        if (r.code === "FORMAT") expect(what).toBe(`duplicating frame ${n - 1}`);
      };
      for (let i = 0; i < n; i++) {
        await tryIt([...fr.slice(0, i), ...fr.slice(i + 1)], `dropping frame ${i}`);
        await tryIt([...fr.slice(0, i + 1), fr[i], ...fr.slice(i + 1)], `duplicating frame ${i}`);
        for (let j = i + 1; j < n; j++) {
          const l = fr.slice();
          [l[i], l[j]] = [l[j], l[i]];
          await tryIt(l, `swapping frames ${i} and ${j}`);
        }
      }
    }
  });

  it("re-sealed with fresh sequence numbers (no key): structure, counts or digests catch it", async () => {
    let detected = 0;
    let harmless = 0;
    for (const s of streams.filter((x) => !keyOf(x))) {
      const { header, frames } = splitFrames(s.bytes);
      const n = frames.length;
      const variants: [string, typeof frames][] = [];
      for (let i = 0; i < n; i++) {
        variants.push([`drop ${i}`, [...frames.slice(0, i), ...frames.slice(i + 1)]]);
        variants.push([`duplicate ${i}`, [...frames.slice(0, i + 1), frames[i], ...frames.slice(i + 1)]]);
        for (let j = i + 1; j < n; j++) {
          const l = frames.slice();
          [l[i], l[j]] = [l[j], l[i]];
          variants.push([`swap ${i} ${j}`, l]);
        }
      }
      for (const [what, list] of variants) {
        // Both with the stream trailer left alone and with its frame count and digest recomputed.
        for (const fixTrailer of [false, true]) {
          const bytes = await reframe(header, list, { fixTrailer });
          if (same(bytes, s.bytes)) continue; // two identical frames traded places
          const r = await attempt(s, bytes);
          if (isError(r)) {
            expect(ALL_CODES).toContain(r.code);
            detected++;
          } else {
            // Only a reordering that changes nothing a reader sees may pass:
            // frames of different devices trading places.
            expect(fixTrailer, `${s.name}: ${what}`).toBe(true);
            expectSameDevices(r, s.input, true);
            harmless++;
          }
        }
      }
    }
    expect(detected).toBeGreaterThan(500);
    expect(harmless).toBeLessThan(detected / 20);
  });
});

describe("keys", () => {
  it("a wrong or missing key is a MAC error before any data", async () => {
    const s = streams.find((x) => x.name === "mac")!;
    for (let i = 0; i < KEY.length; i += 7) {
      const k = KEY.slice();
      k[i] ^= 0x80;
      const e = await errorOfAsync(() => decodeStreamAsync(s.bytes, { key: k }));
      expect(e.code).toBe("MAC");
      expect(e.frame).toBe(0);
    }
    expect((await errorOfAsync(() => decodeStreamAsync(s.bytes))).code).toBe("MAC");
    expect((await errorOfAsync(() => decodeStreamAsync(s.bytes, { key: KEY.subarray(0, 31) }))).code).toBe("MAC");
  });
});
