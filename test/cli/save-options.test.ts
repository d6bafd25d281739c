// In-process checks of the options `save` and `demo` share: the pre-copy
// policy (defaults, bounds, messages), its help lines, and the Command that
// savingCommand builds (flags, positional arguments, signals).
import { describe, expect, it } from "vitest";
import type { CliIO } from "../../src/cli/command.js";
import { demo } from "../../src/cli/commands/demo.js";
import { save } from "../../src/cli/commands/save.js";
import { MAX_PRECOPY_ITERATIONS, precopyHelp, precopyPolicy, savingCommand } from "../../src/cli/save-options.js";
import { isMigstreamError, type MigstreamError } from "../../src/errors.js";

function usageError(f: () => unknown): MigstreamError {
  try {
    f();
  } catch (e) {
    if (isMigstreamError(e)) return e;
    throw e;
  }
  throw new Error("expected a USAGE error");
}

const D = { iterations: 8, threshold: "256KiB" };

describe("precopyPolicy", () => {
  it("takes the command's defaults when the flags are absent", () => {
    expect(precopyPolicy("demo", {}, D)).toEqual({ maxIterations: 8, pendingThreshold: 256 * 1024 });
    expect(precopyPolicy("save", {}, { iterations: 16, threshold: "0" })).toEqual({
      maxIterations: 16,
      pendingThreshold: 0,
    });
  });

  it("reads the flags: whole numbers and sizes", () => {
    expect(precopyPolicy("save", { "precopy-iterations": "0x10", "precopy-threshold": "1MiB" }, D)).toEqual({
      maxIterations: 16,
      pendingThreshold: 1 << 20,
    });
    expect(precopyPolicy("save", { "precopy-iterations": String(MAX_PRECOPY_ITERATIONS) }, D).maxIterations).toBe(
      MAX_PRECOPY_ITERATIONS,
    );
  });

  it("bad values are USAGE errors naming the command and the flag", () => {
    const cases: [Record<string, string>, string][] = [
      [
        { "precopy-iterations": "abc" },
        "demo: --precopy-iterations 'abc' is not a whole number (see migstream demo --help)",
      ],
      [
        { "precopy-iterations": String(MAX_PRECOPY_ITERATIONS + 1) },
        `demo: --precopy-iterations ${MAX_PRECOPY_ITERATIONS + 1} is outside 0..${MAX_PRECOPY_ITERATIONS}`,
      ],
      [{ "precopy-threshold": "1QiB" }, "demo: --precopy-threshold: '1QiB' is not a number"],
    ];
    for (const [v, message] of cases) {
      const e = usageError(() => precopyPolicy("demo", v, D));
      expect(e.code).toBe("USAGE");
      expect(e.message).toContain(message);
    }
  });
});

describe("precopyHelp", () => {
  it("gives both flags' lines with the command's defaults, in the help of save and demo", () => {
    const lines = precopyHelp(D).split("\n");
    expect(lines).toEqual([
      "  --precopy-iterations N     most pre-copy iterations (default 8)",
      "  --precopy-threshold BYTES  stop-and-copy once pending_bytes is at most this (default 256KiB)",
    ]);
    expect(demo.help).toContain(precopyHelp(D));
    expect(save.help).toContain(precopyHelp({ iterations: 16, threshold: "0" }));
  });
});

describe("savingCommand", () => {
  const io = {} as CliIO;
  let got: Record<string, unknown> | null = null;
  const cmd = savingCommand({
    name: "probe",
    summary: "s",
    help: "h",
    options: { device: { type: "string" } },
    async run(v) {
      got = v;
      return 7;
    },
  });

  it("stops cleanly on signals and passes the parsed flags to run", async () => {
    expect(cmd.signals).toBe(true);
    expect(save.signals && demo.signals).toBe(true);
    const argv = ["--device", "sim:", "--codec", "lz4", "--dedup", "--precopy-iterations", "3", "-q"];
    expect(await cmd.run(argv, io)).toBe(7);
    expect(got).toEqual({ device: "sim:", codec: "lz4", dedup: true, "precopy-iterations": "3", quiet: true });
  });

  it("refuses unknown flags and positional arguments with USAGE", async () => {
    for (const [argv, message] of [
      [["--nope"], "probe: Unknown option '--nope'"],
      [["extra"], "probe: unexpected argument 'extra' (see migstream probe --help)"],
    ] as const) {
      const e = await cmd.run([...argv], io).then(
        () => null,
        (x: unknown) => x,
      );
      expect(isMigstreamError(e)).toBe(true);
      expect((e as MigstreamError).code).toBe("USAGE");
      expect((e as MigstreamError).message).toContain(message);
    }
  });
});
