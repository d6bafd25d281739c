// vfio-user wire layouts (wire.ts) and framer units: byte layouts against hand-built buffers,
// reassembly across arbitrary splits, bounded capability walks.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isMigstreamError } from "../../src/errors.js";
import { REGION_FLAG_CAPS } from "../../src/transport/vfio-user/constants.js";
import { Framer } from "../../src/transport/vfio-user/framer.js";
import {
  decodeRegionInfo,
  decodeSparseCap,
  decodeTypeCap,
  decodeVersion,
  encodeRegionInfoReply,
  encodeSparseCap,
  encodeTypeCap,
  encodeVersion,
  type Header,
  newMessage,
} from "../../src/transport/vfio-user/wire.js";

describe("vfio-user wire layouts", () => {
  it("lays out the header little-endian", () => {
    const m = newMessage(0x1234, 9, 0x21, 4, 22);
    expect([...m.subarray(0, 16)]).toEqual([0x34, 0x12, 9, 0, 20, 0, 0, 0, 0x21, 0, 0, 0, 22, 0, 0, 0]);
  });

  it("encodes VERSION with a NUL-terminated JSON and parses it back", () => {
    const b = encodeVersion(0, 2, { capabilities: { max_data_xfer_size: 4096 } });
    expect([...b.subarray(0, 4)]).toEqual([0, 0, 2, 0]);
    expect(b[b.length - 1]).toBe(0);
    expect(decodeVersion(b)).toEqual({ major: 0, minor: 2, caps: { max_data_xfer_size: 4096 } });
    // No JSON at all, and JSON without its NUL, both parse.
    expect(decodeVersion(new Uint8Array([0, 0, 1, 0]))).toEqual({ major: 0, minor: 1, caps: {} });
    expect(
      decodeVersion(new Uint8Array([0, 0, 2, 0, ...new TextEncoder().encode('{"capabilities":{"a":1}}')])).caps,
    ).toEqual({ a: 1 });
  });

  it("builds the reference server's migration region reply: type cap at 32, next 48, argsz 80", () => {
    const b = encodeRegionInfoReply(
      { flags: 3, index: 9, size: 0x2000 },
      [encodeTypeCap(3, 1), encodeSparseCap([{ offset: 4096, size: 4096 }])],
      80,
    );
    expect(b.length).toBe(80);
    const dv = new DataView(b.buffer);
    expect([dv.getUint32(0, true), dv.getUint32(4, true), dv.getUint32(8, true), dv.getUint32(12, true)]).toEqual([
      80,
      3 | REGION_FLAG_CAPS,
      9,
      32,
    ]);
    expect([
      dv.getUint16(32, true),
      dv.getUint16(34, true),
      dv.getUint32(36, true),
      dv.getUint32(40, true),
      dv.getUint32(44, true),
    ]).toEqual([2, 1, 48, 3, 1]);
    expect([dv.getUint16(48, true), dv.getUint16(50, true), dv.getUint32(52, true), dv.getUint32(56, true)]).toEqual([
      1, 1, 0, 1,
    ]);
    const info = decodeRegionInfo(b);
    expect(info.caps.map((c) => [c.id, c.at])).toEqual([
      [2, 32],
      [1, 48],
    ]);
    expect(decodeTypeCap(info.caps[0])).toEqual({ type: 3, subtype: 1 });
    expect(decodeSparseCap(info.caps[1])).toEqual([{ offset: 4096, size: 4096 }]);
  });

  it("answers a too-small argsz as the reference server does: the needed argsz, no CAPS flag, min(needed, argsz) bytes", () => {
    const b = encodeRegionInfoReply({ flags: 3, index: 9, size: 0x2000 }, [encodeTypeCap(3, 1)], 32);
    expect(b.length).toBe(32);
    const info = decodeRegionInfo(b, 32);
    expect(info.truncated).toBe(true);
    expect(info.argsz).toBe(48);
    expect(info.flags & REGION_FLAG_CAPS).toBe(0);
    expect(info.capOffset).toBe(0);
    expect(encodeRegionInfoReply({ flags: 3, index: 9, size: 0x2000 }, [encodeTypeCap(3, 1)], 40).length).toBe(40);
  });

  it("rejects sparse caps claiming more areas than they hold", () => {
    const cap = encodeSparseCap([{ offset: 0, size: 1 }]);
    new DataView(cap.buffer).setUint32(8, 1000, true);
    const info = decodeRegionInfo(encodeRegionInfoReply({ flags: 3, index: 0, size: 1 }, [cap], 1000));
    expect(() => decodeSparseCap(info.caps[0])).toThrow(/claims 1000 areas/);
  });

  it("never loops or reads out of bounds on arbitrary cap chains", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 200 }),
        fc.integer({ min: 0, max: 300 }),
        (raw, capOffset) => {
          const b = raw.slice();
          const dv = new DataView(b.buffer);
          dv.setUint32(0, b.length, true);
          dv.setUint32(4, REGION_FLAG_CAPS, true);
          dv.setUint32(12, capOffset, true);
          dv.setBigUint64(16, 0n, true);
          try {
            const info = decodeRegionInfo(b);
            for (const c of info.caps) expect(c.at + 8 + c.body.length).toBeLessThanOrEqual(b.length);
          } catch (e) {
            expect(isMigstreamError(e, "PROTOCOL")).toBe(true);
          }
        },
      ),
    );
  });
});

describe("vfio-user framer", () => {
  function messages(n: number): Uint8Array {
    const parts: Uint8Array[] = [];
    for (let i = 0; i < n; i++) {
      const m = newMessage(i, 9, 1, (i * 37) % 300);
      m.subarray(16).fill(i & 0xff);
      parts.push(m);
    }
    const all = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    return all;
  }

  it("reassembles any split, including single bytes", () => {
    const stream = messages(20);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 50 }), (cuts) => {
        const got: Array<[Header, Uint8Array]> = [];
        const f = new Framer((h, p) => got.push([h, p.slice()]), 1 << 20);
        let at = 0;
        for (let k = 0; at < stream.length; k++) {
          const n = cuts[k % cuts.length];
          f.push(stream.subarray(at, at + n));
          at += n;
        }
        expect(got.length).toBe(20);
        got.forEach(([h, p], i) => {
          expect(h.id).toBe(i);
          expect(p.length).toBe((i * 37) % 300);
          expect(p.every((b) => b === (i & 0xff))).toBe(true);
        });
        expect(f.pending).toBe(0);
      }),
    );
    const got: number[] = [];
    const f = new Framer((h) => got.push(h.id), 1 << 20);
    for (const b of stream) f.push(new Uint8Array([b]));
    expect(got).toEqual([...Array(20).keys()]);
  });

  it("refuses a size over the limit or under the header as soon as the header is complete", () => {
    const f = new Framer(() => {}, 1000);
    const m = newMessage(1, 9, 1, 0);
    new DataView(m.buffer).setUint32(4, 1001, true);
    f.push(m.subarray(0, 15));
    expect(() => f.push(m.subarray(15))).toThrow(/msg_size 1001 exceeds the limit of 1000/);
    const g = new Framer(() => {}, 1000);
    new DataView(m.buffer).setUint32(4, 15, true);
    expect(() => g.push(m)).toThrow(/smaller than the header/);
  });

  it("lands a body in two parts where alloc says (a Split), under any split of the input", () => {
    const stream = messages(12);
    for (const piece of [1, 3, 16, 17, 100, 5000]) {
      for (const transient of [false, true]) {
        const got: Array<{ id: number; head: number[]; tail: Uint8Array }> = [];
        const tails = new Map<number, Uint8Array>();
        const f = new Framer(
          (h, p, tail) => got.push({ id: h.id, head: [...p], tail: tail ?? new Uint8Array(0) }),
          1 << 20,
          // Bodies of odd messages go 5 bytes to a small head and the rest to their own buffer.
          (n, h) => {
            if (h.id % 2 === 0 || n < 5) return new Uint8Array(n);
            const tail = new Uint8Array(n - 5);
            tails.set(h.id, tail);
            return { head: new Uint8Array(5), tail };
          },
          transient,
        );
        for (let at = 0; at < stream.length; at += piece) f.push(stream.slice(at, at + piece));
        expect(got.map((g) => g.id)).toEqual([...Array(12).keys()]);
        for (const g of got) {
          const len = (g.id * 37) % 300;
          expect(g.head.length + g.tail.length).toBe(len);
          expect(g.head.every((b) => b === (g.id & 0xff)) && g.tail.every((b) => b === (g.id & 0xff))).toBe(true);
          // A split body is handed over in the very buffer alloc gave.
          if (g.tail.length > 0) expect(g.tail).toBe(tails.get(g.id));
        }
      }
    }
  });

  it("copies whole messages out of transient chunks (a reused read buffer), and only then", () => {
    const stream = messages(6);
    for (const transient of [true, false]) {
      const kept: Uint8Array[] = [];
      const f = new Framer(
        (_h, p) => kept.push(p),
        1 << 20,
        (n) => new Uint8Array(n),
        transient,
      );
      const chunk = stream.slice(); // every message lies whole inside it
      f.push(chunk);
      chunk.fill(0xee); // the reader reuses its buffer
      expect(kept).toHaveLength(6);
      const intact = kept.every((p, i) => p.every((b) => b === (i & 0xff)));
      expect(intact).toBe(transient); // views of the chunk see the reuse; copies do not
    }
  });
});
