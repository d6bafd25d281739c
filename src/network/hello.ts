// The destination's hello (TRANSPORTS.md "The network leg"): the first bytes
// a listening destination sends on a connection it will serve, before the
// source sends anything. It says "ready" (a busy destination answers with a
// failure ack line instead), what the destination requires (a key,
// encryption), and carries the connection's challenge: 16 fresh random bytes a
// keyed source binds its stream to (FORMAT.md §7.1), so that a stream made for
// one connection authenticates on no other. 40 bytes:
//
//   0  u8[8]   magic 89 4D 47 48 0D 0A 1A 0A ("\x89MGH\r\n^Z\n")
//   8  u8      version (1)
//   9  u8      flags: bit 0 keyed, bit 1 encrypted; others 0
//  10  u8[6]   reserved, 0
//  16  u8[16]  challenge
//  32  u64     check = XXH3-64(hello[0..32])
//
// The hello is not authenticated: a changed challenge only makes the bound
// stream fail its MACs at the destination, and changed flags only make a
// source refuse, or a destination refuse what the source then sends.
import { MigstreamError } from "../errors.js";
import { CHALLENGE_SIZE } from "../format/constants.js";
import { xxh3_64 } from "../kernels/xxh3.js";

export const HELLO_MAGIC: Uint8Array = Uint8Array.of(0x89, 0x4d, 0x47, 0x48, 0x0d, 0x0a, 0x1a, 0x0a);
export const HELLO_VERSION = 1;
export const HELLO_SIZE = 40;
export { CHALLENGE_SIZE };
/** The destination holds a key: only an authenticated stream is taken. */
export const HELLO_KEYED = 0x01;
/** The destination takes only encrypted streams. */
export const HELLO_ENCRYPTED = 0x02;
const KNOWN_FLAGS = HELLO_KEYED | HELLO_ENCRYPTED;

export interface Hello {
  keyed: boolean;
  encrypted: boolean;
  challenge: Uint8Array;
}

/** A fresh challenge (crypto.getRandomValues). */
export function newChallenge(): Uint8Array {
  const c = new Uint8Array(CHALLENGE_SIZE);
  const crypto = globalThis.crypto;
  if (crypto?.getRandomValues === undefined)
    throw new MigstreamError("INTERNAL", "crypto.getRandomValues is unavailable: no challenge can be made");
  crypto.getRandomValues(c);
  return c;
}

export function encodeHello(h: Hello): Uint8Array {
  if (h.challenge.length !== CHALLENGE_SIZE)
    throw new MigstreamError("USAGE", `a challenge has ${CHALLENGE_SIZE} bytes`);
  const b = new Uint8Array(HELLO_SIZE);
  b.set(HELLO_MAGIC, 0);
  b[8] = HELLO_VERSION;
  b[9] = (h.keyed ? HELLO_KEYED : 0) | (h.encrypted ? HELLO_ENCRYPTED : 0);
  b.set(h.challenge, 16);
  new DataView(b.buffer).setBigUint64(32, xxh3_64(b.subarray(0, 32)), true);
  return b;
}

/** True while `b` (the first bytes received) may still be a hello. */
export function mayBeHello(b: Uint8Array): boolean {
  for (let i = 0; i < Math.min(b.length, HELLO_MAGIC.length); i++) if (b[i] !== HELLO_MAGIC[i]) return false;
  return true;
}

/** Parses a whole hello (`b` holds HELLO_SIZE bytes); `from` names the peer in errors. */
export function parseHello(b: Uint8Array, from: string): Hello {
  const bad = (code: "VERSION" | "CHECKSUM" | "FORMAT" | "TRANSPORT", what: string, offset: number, field: string) =>
    new MigstreamError(code, `${from}: ${what}`, { offset, field });
  if (!mayBeHello(b)) throw bad("TRANSPORT", "not a migstream destination (no hello)", 0, "magic");
  if (b[8] !== HELLO_VERSION)
    throw bad("VERSION", `hello version ${b[8]} is not supported (this source: ${HELLO_VERSION})`, 8, "version");
  const dv = new DataView(b.buffer, b.byteOffset, HELLO_SIZE);
  if (xxh3_64(b.subarray(0, 32)) !== dv.getBigUint64(32, true))
    throw bad("CHECKSUM", "hello check mismatch", 32, "check");
  const flags = b[9];
  if ((flags & ~KNOWN_FLAGS) !== 0)
    throw bad(
      "VERSION",
      `the destination requires features this source does not know (hello flags 0x${flags.toString(16)})`,
      9,
      "flags",
    );
  for (let i = 10; i < 16; i++) if (b[i] !== 0) throw bad("FORMAT", "reserved hello bytes are not zero", i, "reserved");
  return { keyed: (flags & HELLO_KEYED) !== 0, encrypted: (flags & HELLO_ENCRYPTED) !== 0, challenge: b.slice(16, 32) };
}
