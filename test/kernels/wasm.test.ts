// The kernel module and its memory arena: SIMD where the engine has it,
// foreign input copied in, views re-derived after growth, size classes
// recycled, failures typed MigstreamErrors like the rest of the library.
import { describe, expect, it } from "vitest";
import { isMigstreamError } from "../../src/errors.js";
import {
  allocBuffer,
  initSync,
  inKernelMemory,
  inputPtr,
  MAX_KERNEL_MEMORY,
  memU8,
  SLOT_IN,
  scratch,
  simdActive,
} from "../../src/kernels/wasm.js";

describe("kernel module and arena", () => {
  it("loads the SIMD build where the engine supports it", () => {
    initSync();
    expect(simdActive()).toBe(true);
  });

  it("copies foreign input into a scratch slot and keeps kernel-memory input in place", () => {
    const data = new Uint8Array([1, 2, 3, 4, 5]);
    expect(inKernelMemory(data)).toBe(false);
    const p = inputPtr(data, SLOT_IN);
    expect(Array.from(memU8().subarray(p, p + 5))).toEqual([1, 2, 3, 4, 5]);

    const buf = allocBuffer(16);
    const v = buf.view();
    v.set([9, 8, 7]);
    expect(inKernelMemory(v)).toBe(true);
    expect(inputPtr(v)).toBe(buf.ptr);
    buf.free();
  });

  it("re-derives views after memory growth and keeps their contents", () => {
    const buf = allocBuffer(8);
    buf.view().set([1, 2, 3, 4, 5, 6, 7, 8]);
    const before = memU8().length;
    scratch(SLOT_IN, before + 1); // forces growth
    expect(memU8().length).toBeGreaterThan(before);
    expect(Array.from(buf.view())).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    buf.free();
  });

  it("recycles freed buffers of the same size class", () => {
    const a = allocBuffer(1000);
    const p = a.ptr;
    a.free();
    const b = allocBuffer(900);
    expect(b.ptr).toBe(p);
    b.free();
    expect(() => b.view()).toThrow(
      expect.objectContaining({ code: "USAGE", message: expect.stringMatching(/after free/) }),
    );
  });

  it("fails with a typed error beyond the memory ceiling (LIMIT), allocating nothing", () => {
    const before = memU8().length;
    const big = (() => {
      try {
        allocBuffer(MAX_KERNEL_MEMORY);
      } catch (e) {
        return e;
      }
    })();
    expect(isMigstreamError(big, "LIMIT"), String(big)).toBe(true);
    expect(memU8().length).toBe(before); // nothing allocated
    const after = allocBuffer(64); // the arena still works
    after.free();
  });
});
