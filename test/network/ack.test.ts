// The destination's ack line (src/network/ack.ts): it round-trips, a long
// message is cut to its bound, and anything that is no ack is a TRANSPORT error.
import { describe, expect, it } from "vitest";
import { isMigstreamError } from "../../src/errors.js";
import { encodeAck, MAX_ACK_MESSAGE, parseAck } from "../../src/network/ack.js";

describe("ack lines", () => {
  it("round-trip, and anything else is a TRANSPORT error", () => {
    const ok = { ok: true as const, started: true, transactions: 3, bytes: 99 };
    expect(parseAck(new TextDecoder().decode(encodeAck(ok)).trim())).toEqual(ok);
    const fail = parseAck(
      new TextDecoder()
        .decode(encodeAck({ ok: false, code: "CHECKSUM", message: "x".repeat(5000), offset: 12, frame: 3 }))
        .trim(),
    );
    expect(fail).toMatchObject({ ok: false, code: "CHECKSUM", offset: 12, frame: 3 });
    expect((fail as { message: string }).message.length).toBe(MAX_ACK_MESSAGE);
    expect(parseAck('{"migstream":"ack","ok":false,"code":"EVIL"}')).toMatchObject({
      code: "INTERNAL",
      message: "no reason given",
    });
    for (const bad of ["", "{}", "[1]", "null", '{"migstream":"ack"}', "HTTP/1.1 200 OK"]) {
      let e: unknown;
      try {
        parseAck(bad);
      } catch (x) {
        e = x;
      }
      expect(isMigstreamError(e, "TRANSPORT"), bad).toBe(true);
    }
  });
});
