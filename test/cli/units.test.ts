// In-process checks of the CLI's small parts: the throttled progress line,
// key parsing, number formatting (addresses and ack lines: test/network).
import { describe, expect, it } from "vitest";
import { keyFromFile } from "../../src/cli/key.js";
import { PROGRESS_INTERVAL_MS, ProgressLine } from "../../src/cli/progress.js";
import type { Style } from "../../src/cli/style.js";
import { styleFor } from "../../src/cli/style.js";
import { bytes, duration, ratio } from "../../src/cli/units.js";

const style = (progress: boolean, colorErr = false): Style => ({
  quiet: false,
  json: false,
  color: false,
  colorErr,
  progress,
});

describe("ProgressLine", () => {
  it("draws at most once per interval, redraws in place and erases at the end", () => {
    let t = 0;
    let out = "";
    const p = new ProgressLine({ write: (s: string) => (out += s) }, style(true), "save", () => t);
    for (let i = 0; i < 100; i++) {
      p.update({ phase: "pre-copy #0", bytes: i * 1024, wire: i * 512, pending: 4096 });
      t += 1;
    }
    expect(out.split("\r\x1b[K").length - 1).toBe(1); // 100 updates within 100 ms: one draw
    t += PROGRESS_INTERVAL_MS;
    expect(out).not.toMatch(/ratio/); // under RATIO_MIN_WIRE out: the first block's ratio says nothing
    p.update({ phase: "stop-and-copy", bytes: 4 << 20, wire: 2 << 20, pending: 0 });
    const frames = out.split("\r\x1b[K").slice(1);
    expect(frames).toHaveLength(2);
    expect(frames[1]).toMatch(/^save {2}stop-and-copy {2}4\.0 MiB {2}[\d.]+ [KM]iB\/s {2}ratio 2\.00x {2}pending 0 B$/);
    p.clear();
    expect(out.endsWith("\r\x1b[K")).toBe(true);
    const n = out.length;
    p.clear(); // nothing drawn since: nothing to erase
    expect(out.length).toBe(n);
  });

  it("draws a new phase at once, inside the interval, then throttles again", () => {
    let t = 0;
    let out = "";
    const p = new ProgressLine({ write: (s: string) => (out += s) }, style(true), "save", () => t);
    p.update({ phase: "pre-copy #0", bytes: 0 });
    t += 10;
    p.update({ phase: "pre-copy #0", bytes: 1024 }); // same phase, too soon: not drawn
    p.update({ phase: "stop-and-copy", bytes: 2048 }); // new phase: drawn although too soon
    t += 10;
    p.update({ phase: "stop-and-copy", bytes: 4096 }); // throttled again
    const frames = out.split("\r\x1b[K").slice(1);
    expect(frames.map((f) => f.split("  ")[1])).toEqual(["pre-copy #0", "stop-and-copy"]);
    expect(frames[1]).toMatch(/ 2\.0 KiB /);
  });

  it("draws nothing when stderr is not a terminal (or with --quiet)", () => {
    let out = "";
    const p = new ProgressLine({ write: (s: string) => (out += s) }, style(false), "save");
    p.update({ phase: "x", bytes: 1 });
    p.clear();
    expect(out).toBe("");
    const io = {
      stdout: process.stdout,
      stderr: process.stderr,
      stdin: process.stdin,
      isTTY: true,
      stdoutTTY: true,
      env: {},
    };
    expect(styleFor(io, { quiet: true }).progress).toBe(false);
    expect(styleFor(io, {}).progress).toBe(true);
    expect(styleFor({ ...io, env: { NO_COLOR: "1" } }, {}).color).toBe(false);
    expect(styleFor({ ...io, env: { NO_COLOR: "" } }, {}).color).toBe(true);
    expect(styleFor({ ...io, isTTY: false }, {}).progress).toBe(false);
  });
});

describe("key files", () => {
  it("reads hex text (whitespace ignored) or raw bytes", () => {
    const hex = new TextEncoder().encode("00112233445566778899aabbccddeeff\n00112233\n");
    expect(Array.from(keyFromFile(hex))).toEqual([
      0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0, 0x11, 0x22, 0x33,
    ]);
    const raw = Uint8Array.from({ length: 32 }, (_, i) => i * 7);
    expect(keyFromFile(raw)).toBe(raw);
    // Short hex text is taken as bytes (then refused by the length check).
    expect(keyFromFile(new TextEncoder().encode("abcd")).length).toBe(4);
  });
});

describe("units", () => {
  it("formats bytes, durations and ratios", () => {
    expect(bytes(512)).toBe("512 B");
    expect(bytes(1536)).toBe("1.5 KiB");
    expect(bytes(64 << 20)).toBe("64.0 MiB");
    expect(bytes(200 << 20)).toBe("200 MiB");
    expect(duration(0.5)).toBe("0.50 ms");
    expect(duration(42)).toBe("42 ms");
    expect(duration(2345)).toBe("2.35 s");
    expect(ratio(3, 1)).toBe("3.00x");
    expect(ratio(3, 0)).toBe("-");
  });
});
