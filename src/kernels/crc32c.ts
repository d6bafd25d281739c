// CRC-32C (Castagnoli): binding of assembly/crc32c.ts. Values are finished
// CRCs (unsigned u32); passing one back continues it:
// crc32c(b, crc32c(a)) === crc32c(a ++ b).

import { checkBytes, checkU32, feed } from "./hashing.js";
import { kernels } from "./wasm.js";

/** CRC-32C of `data`, continuing `crc` (0 to start). In place when `data` lies in kernel memory. */
export function crc32c(data: Uint8Array, crc: number = 0): number {
  checkBytes(data, "crc32c");
  let c = checkU32(crc, "crc32c", "crc");
  const k = kernels();
  feed(data, (ptr, len) => {
    c = k.crc32c_update(c, ptr, len) >>> 0;
  });
  return c;
}

/** Streaming CRC-32C. The state is one number, so there is nothing to free. */
export class Crc32c {
  #crc = 0;

  update(data: Uint8Array): this {
    this.#crc = crc32c(data, this.#crc);
    return this;
  }

  digest(): number {
    return this.#crc;
  }

  reset(): this {
    this.#crc = 0;
    return this;
  }
}
