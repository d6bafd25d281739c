// How a keyed stream's frames are protected, in one place for the encoder and
// the decoders: mac_alg 1 appends an HMAC-SHA-256/128 tag (mac.ts, FORMAT.md
// §7), mac_alg 2 seals each frame with AES-256-GCM (aead.ts, §7.2); either
// way the per-stream keys come from the shared key, the header and, for a
// bound stream, the connection's challenge (binding.ts, §7.1).
import { MigstreamError } from "../errors.js";
import { aeadKeys, openFrames, sealSlots } from "./aead.js";
import { MAC_AES_256_GCM, MAC_HMAC_SHA256_128 } from "./constants.js";
import { checkPayload, type Frame, type TagSlot } from "./frames.js";
import type { StreamHeader } from "./header.js";
import { fillTags, frameKey, verifyTags } from "./mac.js";

/** A keyed stream's per-stream keys, ready to protect or check frames. */
export interface Protection {
  /** Encoder: fills in (mac_alg 1) or seals (mac_alg 2) the frames at these slots. */
  seal(slots: readonly TagSlot[]): Promise<void>;
  /**
   * Decoder: checks a batch of frames (MAC at the first, in order, that fails;
   * CHECKSUM for a sealed frame whose decrypted payload check is wrong); a
   * sealed frame's `payload` and `check` are then its plaintext.
   */
  open(frames: readonly Frame[]): Promise<void>;
}

/** The protection of a stream with this header (its 64 `headerBytes`), keyed with `key`, bound to `binding` (or null). */
export async function protectionFor(
  key: Uint8Array,
  header: StreamHeader,
  headerBytes: Uint8Array,
  binding: Uint8Array | null,
): Promise<Protection> {
  if (header.macAlg === MAC_HMAC_SHA256_128) {
    const k = await frameKey(key, headerBytes, binding);
    return { seal: (slots) => fillTags(k, slots), open: (frames) => verifyTags(k, frames) };
  }
  if (header.macAlg === MAC_AES_256_GCM) {
    const k = await aeadKeys(key, headerBytes, binding);
    return {
      seal: (slots) => sealSlots(k, slots),
      open: async (frames) => {
        await openFrames(k, frames);
        for (const f of frames) checkPayload(f, header);
      },
    };
  }
  throw new MigstreamError("INTERNAL", `no protection for mac_alg ${header.macAlg}`);
}
