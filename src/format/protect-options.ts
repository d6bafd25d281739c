// An encoder's protection options, checked once (USAGE): `key` alone
// authenticates (mac_alg 1), `encrypt` seals every frame (mac_alg 2),
// `challenge` binds the stream to a destination's connection (flag BOUND).
// A sealed stream's nonces never repeat only if its stream id is fresh, so
// an encrypting encoder always draws the id itself (from `random`, which only
// test vectors replace) and refuses a caller-chosen one.
import { MigstreamError } from "../errors.js";
import { checkChallenge } from "./binding.js";
import { FLAG_BOUND, MAC_AES_256_GCM, MAC_HMAC_SHA256_128, MAC_NONE, STREAM_ID_SIZE } from "./constants.js";

export interface ProtectOptions {
  key?: Uint8Array;
  /** Seal every frame with AES-256-GCM (FORMAT.md §7.2); needs `key`. */
  encrypt?: boolean;
  /** The destination's challenge (16 bytes, from its hello): bind the stream to that connection (§7.1); needs `key`. */
  challenge?: Uint8Array;
  /** 16 bytes; default random. Not with `encrypt` (its id must be fresh). Fix it for reproducible output. */
  streamId?: Uint8Array;
  /**
   * Fills a stream id with random bytes (default crypto.getRandomValues).
   * Only test vectors replace it: an encrypted stream's keys and nonces are
   * as fresh as what it returns.
   */
  random?: (bytes: Uint8Array) => void;
}

export interface Protect {
  macAlg: number;
  flags: number;
  streamId: Uint8Array;
  /** The binding the stream's keys are derived with, or null. */
  binding: Uint8Array | null;
}

function systemRandom(b: Uint8Array): void {
  const c = globalThis.crypto;
  if (c?.getRandomValues === undefined)
    throw new MigstreamError("INTERNAL", "crypto.getRandomValues is unavailable: pass streamId");
  c.getRandomValues(b as Uint8Array<ArrayBuffer>);
}

/** The header fields and binding `o` asks for (`key`: the checked key, or null). */
export function protect(o: ProtectOptions, key: Uint8Array | null): Protect {
  const encrypt = o.encrypt === true;
  if (encrypt && key === null)
    throw new MigstreamError("USAGE", "encrypt needs a key (the shared key the stream's keys come from)", {
      field: "encrypt",
    });
  if (o.challenge !== undefined && key === null)
    throw new MigstreamError("USAGE", "a challenge binds a keyed stream: give a key too", { field: "challenge" });
  const binding = o.challenge === undefined ? null : checkChallenge(o.challenge);
  if (o.random !== undefined && typeof o.random !== "function")
    throw new MigstreamError("USAGE", "random must be a function filling a Uint8Array", { field: "random" });
  let streamId: Uint8Array;
  if (o.streamId !== undefined) {
    if (encrypt)
      throw new MigstreamError(
        "USAGE",
        "an encrypted stream's id is its source's fresh value: it is always drawn at random (do not pass streamId)",
        { field: "streamId" },
      );
    if (!(o.streamId instanceof Uint8Array) || o.streamId.length !== STREAM_ID_SIZE) {
      throw new MigstreamError("USAGE", `streamId must be ${STREAM_ID_SIZE} bytes`, { field: "streamId" });
    }
    streamId = o.streamId.slice();
  } else {
    streamId = new Uint8Array(STREAM_ID_SIZE);
    (o.random ?? systemRandom)(streamId);
  }
  return {
    macAlg: key === null ? MAC_NONE : encrypt ? MAC_AES_256_GCM : MAC_HMAC_SHA256_128,
    flags: binding === null ? 0 : FLAG_BOUND,
    streamId,
    binding,
  };
}
