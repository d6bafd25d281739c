// Sealed (AES-256-GCM) and bound streams from the built package under Deno's
// own WebCrypto, with no permissions: they round-trip, every tamper fails
// before its frame's data comes out, and the golden vectors (made with
// Node's WebCrypto) open here too.
import { decodeStreamAsync, encodeStreamAsync, StreamDecoder } from "../../dist/index.js";
import { assert, sample } from "./helpers.ts";

declare const Deno: { test(name: string, fn: () => Promise<void>): void };

const KEY = new TextEncoder().encode("deno sealed-stream test key 32 B");
const CHALLENGE = Uint8Array.from({ length: 16 }, (_, i) => 0x41 + i);
const data = sample(200_000, 99);
const input = [
  {
    id: 2,
    name: "secret device",
    items: [
      { kind: "phase", phase: "stopcopy", iteration: 0 },
      { kind: "transaction", data: data.subarray(0, 120_000) },
      { kind: "transaction", data: data.subarray(120_000) },
    ],
  },
];

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

async function events(s: Uint8Array, o: Record<string, unknown>) {
  const dec = new StreamDecoder({ ...o, assemble: true });
  const out: { type: string; frame?: number }[] = [];
  try {
    for await (const ev of dec.writeAsync(s)) out.push(ev);
    dec.finish();
    return { out, code: null as string | null };
  } catch (e) {
    return { out, code: (e as { code?: string }).code ?? "?" };
  }
}

Deno.test("sealed and bound streams round-trip under Deno's WebCrypto", async () => {
  for (const o of [{ encrypt: true }, { encrypt: true, challenge: CHALLENGE }, { challenge: CHALLENGE }]) {
    const s = await encodeStreamAsync(input, { codec: "lz4", chunkSize: 16384, key: KEY, ...o });
    const d = await decodeStreamAsync(s, { key: KEY, challenge: o.challenge });
    const got = d.devices[0].items
      .filter((i: { kind: string }) => i.kind === "transaction")
      .map((i: { data: Uint8Array }) => i.data);
    assert(
      same(got[0], data.subarray(0, 120_000)) && same(got[1], data.subarray(120_000)),
      `round trip ${JSON.stringify(Object.keys(o))}`,
    );
    if (o.encrypt) assert(!new TextDecoder("latin1").decode(s).includes("secret device"), "the name is sealed");
  }
});

Deno.test("every tamper of a sealed stream fails before its frame comes out", async () => {
  const s = await encodeStreamAsync(input, { codec: "lz4", chunkSize: 16384, key: KEY, encrypt: true });
  const dv = new DataView(s.buffer, s.byteOffset, s.byteLength);
  const starts: number[] = [];
  for (let at = 64; at < s.length; at += 16 + dv.getUint32(at + 8, true) + 8 + 16) starts.push(at);
  for (let i = 64; i < s.length; i += 97) {
    const bad = s.slice();
    bad[i] ^= 0x10;
    const frame = starts.filter((a) => a <= i).length - 1;
    const r = await events(bad, { key: KEY });
    assert(r.code === "MAC" || r.code === "CHECKSUM", `byte ${i}: ${r.code}`);
    assert(
      r.out.every((e) => e.frame === undefined || e.frame < frame),
      `byte ${i}: nothing from frame ${frame} on`,
    );
  }
  const wrong = await events(s, { key: new Uint8Array(32).fill(9) });
  assert(wrong.code === "MAC", "a wrong key fails");
  const bound = await encodeStreamAsync(input, { key: KEY, encrypt: true, challenge: CHALLENGE });
  assert((await events(bound, { key: KEY })).code === "MAC", "a bound stream does not open without its challenge");
  assert((await events(bound, { key: KEY, challenge: new Uint8Array(16) })).code === "MAC", "nor with another");
});
