// The command table (src/cli/commands/index.ts): each command is loaded by
// the name it answers to, only that command's module is needed to run it,
// and names that are not commands (inherited object keys included) load nothing.
import { describe, expect, it } from "vitest";
import { loadCommand, loadCommands } from "../../src/cli/commands/index.js";

describe("the command table", () => {
  it("loads each command by its own name, every name once", async () => {
    const all = await loadCommands();
    const names = all.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(expect.arrayContaining(["demo", "save", "restore", "encode", "decode", "kernels"]));
    for (const c of all) expect(await loadCommand(c.name)).toBe(c);
  });

  it("an unknown name, or an object's inherited key, is no command", async () => {
    for (const name of ["nosuch", "", "constructor", "__proto__", "toString", "hasOwnProperty"])
      expect(await loadCommand(name), name).toBeUndefined();
  });
});
