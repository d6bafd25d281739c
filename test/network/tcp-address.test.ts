// tcp:// addresses (src/network/tcp.ts): what a --to or --listen URL may be,
// and which hosts count as loopback (the key-off-loopback rule).
import { describe, expect, it } from "vitest";
import { isMigstreamError } from "../../src/errors.js";
import { formatTcpUrl, isLoopback, parseTcpUrl } from "../../src/network/tcp.js";

describe("tcp addresses", () => {
  it("parses tcp://HOST:PORT, [v6] and an empty host as loopback", () => {
    expect(parseTcpUrl("tcp://10.0.0.2:7000")).toEqual({ host: "10.0.0.2", port: 7000 });
    expect(parseTcpUrl("tcp://:7000")).toEqual({ host: "127.0.0.1", port: 7000 });
    expect(parseTcpUrl("tcp://[::1]:0")).toEqual({ host: "::1", port: 0 });
    expect(formatTcpUrl({ host: "::1", port: 5 })).toBe("tcp://[::1]:5");
    for (const bad of ["10.0.0.2:7000", "tcp://host", "tcp://h:70000", "udp://h:1", "tcp://h:1/x/y"]) {
      let e: unknown;
      try {
        parseTcpUrl(bad);
      } catch (x) {
        e = x;
      }
      expect(isMigstreamError(e, "USAGE"), bad).toBe(true);
    }
  });

  it("tells loopback from other addresses", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "::1", "localhost", "::ffff:127.0.0.1"])
      expect(isLoopback(h), h).toBe(true);
    for (const h of ["0.0.0.0", "10.0.0.1", "::", "example.org", "128.0.0.1", "::ffff:10.0.0.1"])
      expect(isLoopback(h), h).toBe(false);
  });
});
