// Test helpers: a small VendorRegion (plain memory with a 4 KiB register page,
// scripted failures, an access log and a digest) and temp socket paths.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VendorErrno, type VendorRegion } from "../../src/device/vendor.js";

export interface Access {
  op: "read" | "write";
  offset: number;
  count: number;
}

/** Memory-backed vendor region. `failAt` maps an offset to the errno any access there gets. */
export class MemoryVendor implements VendorRegion {
  readonly mem: Uint8Array;
  readonly log: Access[] = [];
  readonly failAt = new Map<number, number>();
  resets = 0;
  readonly sparseAreas: Array<{ offset: number; size: number }>;

  constructor(
    readonly size: number,
    sparse = true,
  ) {
    this.mem = new Uint8Array(size);
    this.sparseAreas = sparse && size > 4096 ? [{ offset: 4096, size: size - 4096 }] : [];
  }

  async read(offset: number, count: number): Promise<Uint8Array> {
    this.log.push({ op: "read", offset, count });
    const e = this.failAt.get(offset);
    if (e !== undefined) throw new VendorErrno(e, `scripted failure at ${offset}`);
    return this.mem.slice(offset, offset + count);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.log.push({ op: "write", offset, count: data.length });
    const e = this.failAt.get(offset);
    if (e !== undefined) throw new VendorErrno(e, `scripted failure at ${offset}`);
    this.mem.set(data, offset);
  }

  async reset(): Promise<void> {
    this.resets++;
  }

  /** FNV-1a 64 of the memory: changes with any byte. */
  digest(): bigint {
    let h = 0xcbf29ce484222325n;
    for (const b of this.mem) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 0x100000001b3n);
    return h;
  }
}

/** A fresh temp dir; returns a socket path in it and a cleanup. */
export function tempSocket(name = "dev.sock"): { path: string; dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), "migstream-vu-"));
  return { path: join(dir, name), dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Deterministic bytes. */
export function pattern(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** Byte equality without vitest's slow element-wise diff; reports the first difference. */
export function sameBytes(a: Uint8Array, b: Uint8Array): string {
  if (a.length !== b.length) return `lengths ${a.length} vs ${b.length}`;
  if (Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length)))
    return "same";
  let i = 0;
  while (a[i] === b[i]) i++;
  return `first difference at ${i}: ${a[i]} vs ${b[i]}`;
}
