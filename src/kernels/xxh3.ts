// XXH3-64: one-shot and streaming bindings of assembly/xxh3.ts
// (XXH3_64bits_withSeed; seed 0 is plain XXH3_64bits).
// Results and seeds are unsigned 64-bit bigints.

import {
  allocState,
  checkBytes,
  checkSeed,
  feed,
  releaseState,
  type StateBlock,
  u64,
  usedAfterFree,
  wholeInputPtr,
} from "./hashing.js";
import { kernels } from "./wasm.js";

/** XXH3-64 of `data` (in place when `data` lies in kernel memory). */
export function xxh3_64(data: Uint8Array, seed: bigint = 0n): bigint {
  checkBytes(data, "xxh3_64");
  checkSeed(seed, "xxh3_64");
  const k = kernels();
  const ptr = wholeInputPtr(data);
  if (ptr >= 0) return u64(k.xxh3_oneshot(ptr, data.length, seed));
  const h = new Xxh3(seed);
  try {
    return h.update(data).digest();
  } finally {
    h.free();
  }
}

/** Streaming XXH3-64; same result as `xxh3_64` for any split of the input. */
export class Xxh3 {
  readonly #seed: bigint;
  #state: StateBlock | null;

  constructor(seed: bigint = 0n) {
    this.#seed = checkSeed(seed, "Xxh3");
    const k = kernels();
    this.#state = allocState(this, k.xxh3_state_size());
    k.xxh3_init(this.#state.ptr, this.#seed);
  }

  #ptr(): number {
    if (this.#state === null) throw usedAfterFree("Xxh3");
    return this.#state.ptr;
  }

  update(data: Uint8Array): this {
    checkBytes(data, "Xxh3.update");
    const state = this.#ptr();
    const k = kernels();
    feed(data, (ptr, len) => k.xxh3_update(state, ptr, len));
    return this;
  }

  /** Digest of everything so far; the hasher can keep going. */
  digest(): bigint {
    return u64(kernels().xxh3_digest(this.#ptr()));
  }

  reset(): this {
    kernels().xxh3_init(this.#ptr(), this.#seed);
    return this;
  }

  /** Returns the state to the arena; the hasher is unusable afterwards. */
  free(): void {
    if (this.#state === null) return;
    releaseState(this, this.#state);
    this.#state = null;
  }
}
