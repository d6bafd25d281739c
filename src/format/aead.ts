// Sealed frames (FORMAT.md §7.2): AES-256-GCM from WebCrypto (Node 20+, Deno,
// browsers). Per stream, from the shared key, the header (the source's fresh
// stream_id) and the binding (the destination's fresh challenge):
//   K_e = HMAC(K, "migstream/1 aes-256-gcm key" ‖ header ‖ binding)
//   IV  = HMAC(K, "migstream/1 aes-256-gcm iv"  ‖ header ‖ binding)[0..12]
// Frame n: header (clear, the AAD) ‖ AES-GCM(K_e, IV ⊕ u64le(n), payload ‖ payload_check) ‖ tag.
// A batch of frames is sealed or opened concurrently.
import { MigstreamError } from "../errors.js";
import { view } from "./bytes.js";
import { FRAME_CHECK_SIZE, FRAME_HEADER_SIZE, frameName, MAC_TAG_SIZE } from "./constants.js";
import type { Frame, TagSlot } from "./frames.js";
import { streamSecret, subtle } from "./mac.js";

export const AEAD_KEY_LABEL = "migstream/1 aes-256-gcm key";
export const AEAD_IV_LABEL = "migstream/1 aes-256-gcm iv";
export const AEAD_NONCE_SIZE = 12;

type Bytes = Uint8Array<ArrayBuffer>;

/** A stream's AES-256-GCM key and nonce base. */
export interface AeadKeys {
  key: CryptoKey;
  iv: Uint8Array;
}

export async function aeadKeys(key: Uint8Array, header: Uint8Array, binding: Uint8Array | null): Promise<AeadKeys> {
  const [k, iv] = await Promise.all([
    streamSecret(key, AEAD_KEY_LABEL, header, binding),
    streamSecret(key, AEAD_IV_LABEL, header, binding),
  ]);
  const aes = await subtle().importKey("raw", k as Bytes, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
  return { key: aes, iv: iv.slice(0, AEAD_NONCE_SIZE) };
}

/** The nonce of frame `seq`: IV XOR (0^4 ‖ u64le(seq)). */
export function nonceOf(iv: Uint8Array, seq: number): Uint8Array<ArrayBuffer> {
  const n = new Uint8Array(AEAD_NONCE_SIZE);
  n.set(iv);
  view(n).setBigUint64(4, view(n).getBigUint64(4, true) ^ BigInt(seq), true);
  return n;
}

const params = (k: AeadKeys, seq: number, aad: Uint8Array): AesGcmParams => ({
  name: "AES-GCM",
  iv: nonceOf(k.iv, seq),
  additionalData: aad.slice() as Bytes,
  tagLength: MAC_TAG_SIZE * 8,
});

/**
 * Seals frames laid out with their plaintext and tag room: for each slot,
 * payload ‖ check at [start+16, end) becomes the ciphertext, the tag goes at end.
 */
export async function sealSlots(k: AeadKeys, slots: readonly TagSlot[]): Promise<void> {
  const sealed = await Promise.all(
    slots.map((s) => {
      const header = s.buf.subarray(s.start, s.start + FRAME_HEADER_SIZE);
      const seq = view(header).getUint32(4, true);
      return subtle().encrypt(
        params(k, seq, header),
        k.key,
        s.buf.subarray(s.start + FRAME_HEADER_SIZE, s.end) as Bytes,
      );
    }),
  );
  slots.forEach((s, i) => {
    s.buf.set(new Uint8Array(sealed[i]), s.start + FRAME_HEADER_SIZE);
  });
}

/**
 * Opens a batch of sealed frames (in order; MAC at the first that fails):
 * each frame's `payload` and `check` then hold the decrypted payload and
 * payload check (new memory: the input bytes are never written).
 */
export async function openFrames(k: AeadKeys, frames: readonly Frame[]): Promise<void> {
  const opened = await Promise.allSettled(
    frames.map((f) => {
      const sealed = new Uint8Array(
        f.bytes.buffer,
        f.bytes.byteOffset + FRAME_HEADER_SIZE,
        f.length + FRAME_CHECK_SIZE + MAC_TAG_SIZE,
      );
      return subtle().decrypt(params(k, f.seq, f.bytes.subarray(0, FRAME_HEADER_SIZE)), k.key, sealed as Bytes);
    }),
  );
  frames.forEach((f, i) => {
    const r = opened[i];
    if (r.status === "rejected") {
      throw new MigstreamError(
        "MAC",
        `${frameName(f.type)} frame failed to open (wrong key, a frame altered, moved, or from another stream or connection)`,
        {
          offset: f.offset,
          frame: f.seq,
          device: f.device,
          field: "tag",
        },
      );
    }
    const plain = new Uint8Array(r.value);
    f.payload = plain.subarray(0, f.length);
    f.check = view(plain).getBigUint64(f.length, true);
  });
}
