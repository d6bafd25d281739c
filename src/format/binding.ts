// Binding a keyed stream to one connection (FORMAT.md §7.1): a network
// destination sends a fresh challenge, the source derives its stream's keys
// with it and sets the header's BOUND flag. This module holds the reader's
// rules (which streams a reader with or without a challenge accepts) and the
// binding bytes the key derivations append to the header.
import { MigstreamError } from "../errors.js";
import { CHALLENGE_SIZE, FLAG_BOUND, MAC_AES_256_GCM, MAC_NONE } from "./constants.js";
import type { StreamHeader } from "./header.js";

/** What a reader accepts (decoder options). */
export interface BindingPolicy {
  /** This connection's challenge (a network destination), or null (a file, verify). */
  challenge: Uint8Array | null;
  /** With a challenge: also accept a keyed stream bound to no connection (a saved stream replayed on purpose). */
  allowUnbound: boolean;
  /** Accept only sealed streams (mac_alg 2). */
  requireSealed: boolean;
}

const NONE: BindingPolicy = { challenge: null, allowUnbound: false, requireSealed: false };

/** A challenge option, checked (USAGE unless CHALLENGE_SIZE bytes). */
export function checkChallenge(c: unknown, field = "challenge"): Uint8Array {
  if (!(c instanceof Uint8Array) || c.length !== CHALLENGE_SIZE) {
    throw new MigstreamError("USAGE", `${field} must be ${CHALLENGE_SIZE} bytes (a destination's challenge)`, {
      field,
    });
  }
  return c.slice();
}

/** The policy from decoder options. */
export function bindingPolicy(o: {
  challenge?: Uint8Array;
  allowUnbound?: boolean;
  requireEncryption?: boolean;
}): BindingPolicy {
  if (o.challenge === undefined && !o.allowUnbound && !o.requireEncryption) return NONE;
  return {
    challenge: o.challenge === undefined ? null : checkChallenge(o.challenge),
    allowUnbound: o.allowUnbound === true,
    requireSealed: o.requireEncryption === true,
  };
}

/**
 * Applies the policy to a parsed header; returns the binding the stream's
 * keys are derived with (the challenge for a bound stream, else null). MAC
 * for a stream this reader must not authenticate.
 */
export function bindingFor(h: StreamHeader, p: BindingPolicy): Uint8Array | null {
  const at = { offset: 12, field: "flags" };
  if (p.requireSealed && h.macAlg !== MAC_AES_256_GCM) {
    throw new MigstreamError(
      "MAC",
      "only an encrypted stream is taken here, and this one is not (the source needs --encrypt)",
      { offset: 11, field: "mac_alg" },
    );
  }
  if ((h.flags & FLAG_BOUND) !== 0) {
    if (p.challenge === null) {
      throw new MigstreamError(
        "MAC",
        "the stream is bound to a network connection's challenge: it authenticates only on that connection, not from a file or on another connection",
        at,
      );
    }
    return p.challenge;
  }
  if (h.macAlg !== MAC_NONE && p.challenge !== null && !p.allowUnbound) {
    throw new MigstreamError(
      "MAC",
      "the stream is keyed but not bound to this connection: a stream saved or captured earlier (a replay) is refused; restore it from its file, or accept it here with --allow-replay",
      at,
    );
  }
  return null;
}
