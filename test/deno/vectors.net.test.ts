// The golden vectors (test/vectors, made in Node) decoded under Deno, whose
// WebCrypto is its own implementation: the sealed ones open, the bound ones
// authenticate only with their challenge. Needs --allow-read.
import { decodeStreamAsync } from "../../dist/index.js";
// @ts-expect-error plain JS module
import { CHALLENGE, KEY, vectorCases } from "../vectors/cases.mjs";

declare const Deno: { test(name: string, fn: () => Promise<void>): void; readFile(p: URL): Promise<Uint8Array> };

function assert(cond: unknown, msg: string): void {
  if (!cond) throw new Error(msg);
}

Deno.test("the golden vectors decode under Deno, sealed and bound ones included", async () => {
  let sealed = 0;
  for (const c of vectorCases()) {
    const bytes = await Deno.readFile(new URL(`../vectors/${c.name}.mstream`, import.meta.url));
    const d = await decodeStreamAsync(bytes, c.decode ?? (c.options.key ? { key: c.options.key } : {}));
    const want = c.input.map((dev: { items: { kind: string; data?: Uint8Array }[] }) =>
      dev.items.filter((i) => i.kind === "transaction").map((i) => i.data!),
    );
    const got = d.devices.map((dev: { items: { kind: string; data?: Uint8Array }[] }) =>
      dev.items.filter((i) => i.kind === "transaction").map((i) => i.data!),
    );
    assert(
      JSON.stringify(got.map((g: Uint8Array[]) => g.map((x) => Array.from(x)))) ===
        JSON.stringify(want.map((g: Uint8Array[]) => g.map((x) => Array.from(x)))),
      `${c.name} decodes to its input`,
    );
    if (bytes[11] === 2) sealed++;
    if ((bytes[12] & 1) === 1) {
      let code = "";
      try {
        await decodeStreamAsync(bytes, { key: KEY, challenge: CHALLENGE.map((x: number) => x ^ 1) });
      } catch (e) {
        code = (e as { code?: string }).code ?? "";
      }
      assert(code === "MAC", `${c.name}: another challenge fails`);
    }
  }
  assert(sealed === 2, "both sealed vectors were opened");
});
