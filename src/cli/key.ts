// --key-file: the shared key of an authenticated stream. The file holds either
// the key as hex text (e.g. `openssl rand -hex 32 > key`; whitespace ignored)
// or raw bytes (e.g. `head -c 32 /dev/urandom > key`).
import { readFile } from "node:fs/promises";
import { MigstreamError } from "../errors.js";
import { MAX_KEY_SIZE, MIN_KEY_SIZE } from "../format/constants.js";

const HEX = /^(?:[0-9a-fA-F]{2})+$/;

/** The key bytes a file holds. */
export function keyFromFile(content: Uint8Array): Uint8Array {
  const text = new TextDecoder("latin1").decode(content).replace(/\s+/g, "");
  const hex = HEX.test(text) && text.length >= 2 * MIN_KEY_SIZE;
  return hex ? Uint8Array.from(text.match(/../g)!, (h) => parseInt(h, 16)) : content;
}

export async function readKeyFile(path: string): Promise<Uint8Array> {
  let content: Uint8Array;
  try {
    content = await readFile(path);
  } catch (e) {
    const errno = (e as { code?: string }).code;
    throw new MigstreamError("IO", `cannot read key file ${path}`, { errno, cause: e });
  }
  const key = keyFromFile(content);
  if (key.length < MIN_KEY_SIZE || key.length > MAX_KEY_SIZE) {
    throw new MigstreamError(
      "USAGE",
      `key file ${path}: the key has ${key.length} bytes; it needs ${MIN_KEY_SIZE} to ${MAX_KEY_SIZE} (e.g. openssl rand -hex 32 > ${path})`,
    );
  }
  return key;
}
