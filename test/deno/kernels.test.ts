// Runs under `deno test` with no permissions against the built package.
import { allocBuffer, initSync, simdActive } from "../../dist/kernels.js";

function assert(cond: unknown, msg: string): void {
  if (!cond) throw new Error(msg);
}

Deno.test("kernels load from dist with no permissions", () => {
  initSync();
  assert(simdActive(), "SIMD build expected under Deno");
  const b = allocBuffer(32);
  b.view().fill(7);
  assert(b.view()[31] === 7, "buffer view writable");
  b.free();
});
