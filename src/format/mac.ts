// Frame authentication (FORMAT.md §7) with WebCrypto HMAC-SHA-256, available in
// Node 20+, Deno and browsers. Per stream: K_s = HMAC(K, label ‖ header ‖
// binding); per frame: tag = HMAC(K_s, frame bytes)[0..16]. Tags of a batch
// of frames are computed concurrently (WebCrypto may run them in parallel).

import { MigstreamError } from "../errors.js";
import { MAC_TAG_SIZE, MAX_KEY_SIZE, MIN_KEY_SIZE } from "./constants.js";
import type { Frame, TagSlot } from "./frames.js";

/** Domain-separation label of the per-stream key (21 ASCII bytes). */
export const MAC_LABEL = "migstream/1 frame-mac";

type Bytes = Uint8Array<ArrayBuffer>;

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new MigstreamError("MAC", "WebCrypto (crypto.subtle) is unavailable in this runtime");
  return s;
}

export function checkKey(key: unknown): Uint8Array {
  if (!(key instanceof Uint8Array)) throw new MigstreamError("USAGE", "key must be a Uint8Array", { field: "key" });
  if (key.length < MIN_KEY_SIZE || key.length > MAX_KEY_SIZE) {
    throw new MigstreamError("USAGE", `key must have ${MIN_KEY_SIZE}..${MAX_KEY_SIZE} bytes, got ${key.length}`, {
      field: "key",
    });
  }
  return key;
}

export async function hmacKey(raw: Uint8Array): Promise<CryptoKey> {
  return subtle().importKey("raw", raw as Bytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

/** HMAC-SHA-256(K, label ‖ header ‖ binding): the derivation every per-stream key uses (§7, §7.2). */
export async function streamSecret(
  key: Uint8Array,
  label: string,
  header: Uint8Array,
  binding: Uint8Array | null = null,
): Promise<Uint8Array> {
  const l = new TextEncoder().encode(label);
  const msg = new Uint8Array(l.length + header.length + (binding?.length ?? 0));
  msg.set(l);
  msg.set(header, l.length);
  if (binding) msg.set(binding, l.length + header.length);
  return new Uint8Array(await subtle().sign("HMAC", await hmacKey(checkKey(key)), msg));
}

/** The per-stream frame key K_s for a stream with this 64-byte header (and, bound, this challenge). */
export async function frameKey(
  key: Uint8Array,
  header: Uint8Array,
  binding: Uint8Array | null = null,
): Promise<CryptoKey> {
  return hmacKey(await streamSecret(key, MAC_LABEL, header, binding));
}

/** WebCrypto's SubtleCrypto, or MAC when the runtime has none. */
export { subtle };

/** The 16-byte tag of `bytes`. */
export async function tagOf(k: CryptoKey, bytes: Uint8Array): Promise<Uint8Array> {
  const full = await subtle().sign("HMAC", k, bytes as Bytes);
  return new Uint8Array(full, 0, MAC_TAG_SIZE);
}

/** Computes and writes the tags of sealed frames. */
export async function fillTags(k: CryptoKey, slots: readonly TagSlot[]): Promise<void> {
  const tags = await Promise.all(slots.map((s) => tagOf(k, s.buf.subarray(s.start, s.end))));
  slots.forEach((s, i) => {
    s.buf.set(tags[i], s.end);
  });
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  let d = a.length ^ b.length;
  for (let i = 0; i < a.length && i < b.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

/** Verifies the tags of a batch of frames; throws MAC at the first (in order) that fails. */
export async function verifyTags(k: CryptoKey, frames: readonly Frame[]): Promise<void> {
  const tags = await Promise.all(frames.map((f) => tagOf(k, f.bytes)));
  frames.forEach((f, i) => {
    if (!equal(tags[i], f.tag!)) {
      throw new MigstreamError("MAC", "frame authentication failed (wrong key, or the frame was altered)", {
        offset: f.offset,
        frame: f.seq,
        device: f.device,
        field: "tag",
      });
    }
  });
}
