// Shared pieces of the protocol tests: simulated devices behind the in-process
// transport, a sink that records a save as the ResumeItems a stream decoder
// would yield, an access trace, and the round-trip checks.
import { expect } from "vitest";
import type { Fault, FaultPoint } from "../../src/device/faults.js";
import { SimDevice, type SimDeviceOptions } from "../../src/device/index.js";
import { VendorErrno } from "../../src/device/vendor.js";
import { MigstreamError } from "../../src/errors.js";
import { FIELDS, STATE_MASK } from "../../src/protocol/constants.js";
import type { RegionIO } from "../../src/protocol/region-io.js";
import { ERRNO, errnoName } from "../../src/protocol/region-io.js";
import { type ResumeOptions, resume } from "../../src/protocol/resume.js";
import { type SaveOptions, save } from "../../src/protocol/save.js";
import type { MigrationProtocol, Phase, ResumeItem, SaveSink } from "../../src/protocol/types.js";
import { InProcessRegion } from "../../src/transport/in-process.js";

export const KiB = 1024;

/** A simulated device and an in-process region over it. */
export function sim(
  options: SimDeviceOptions = {},
  maxAccess?: number,
): { dev: SimDevice; io: RegionIO; trace: Access[] } {
  const dev = new SimDevice(options);
  const traced = new TraceRegion(new InProcessRegion(dev, { maxAccess }));
  return { dev, io: traced, trace: traced.accesses };
}

/** Options for a destination matching a source's layout and state size. */
export function destinationFor(src: SimDevice, extra: SimDeviceOptions = {}): SimDeviceOptions {
  return { stateSize: src.image.size, empty: true, dataOffset: src.dataOffset, dataSize: src.dataSize, ...extra };
}

/** Records a save as the ResumeItems of one device (transactions copied). */
export class ItemSink implements SaveSink {
  readonly items: ResumeItem[] = [];
  protocol(p: MigrationProtocol): void {
    this.items.push({ kind: "protocol", protocol: p });
  }
  phase(phase: Phase, iteration: number): void {
    this.items.push({ kind: "phase", phase, iteration });
  }
  transaction(data: Uint8Array): void {
    this.items.push({ kind: "transaction", data: data.slice() });
  }
  /** What a stream decoder yields once the whole stream verified. */
  verified(): ResumeItem[] {
    return [...this.items, { kind: "verified" }];
  }
  get transactions(): Uint8Array[] {
    return this.items.flatMap((i) => (i.kind === "transaction" ? [i.data] : []));
  }
  get phases(): string[] {
    return this.items.flatMap((i) =>
      i.kind === "phase" ? [`${i.phase}${i.phase === "precopy" ? i.iteration : ""}`] : [],
    );
  }
}

/** One access the driver made, named like the device's fault points. */
export interface Access {
  point: FaultPoint | "read reserved" | "write other";
  offset: number;
  count: number;
}

function pointOf(op: "read" | "write", offset: number): Access["point"] {
  for (const [name, f] of Object.entries(FIELDS)) {
    if (f.offset === offset) return `${op} ${name}` as Access["point"];
  }
  return op === "read" ? "read data" : "write data";
}

/** A RegionIO that records every access before passing it on. */
export class TraceRegion implements RegionIO {
  readonly accesses: Access[] = [];
  constructor(readonly inner: RegionIO) {}
  get size(): number {
    return this.inner.size;
  }
  get maxAccess(): number {
    return this.inner.maxAccess;
  }
  read(offset: number, count: number, into?: Uint8Array): Promise<Uint8Array> {
    this.accesses.push({ point: pointOf("read", offset), offset, count });
    return this.inner.read(offset, count, into);
  }
  write(offset: number, data: Uint8Array): Promise<void> {
    this.accesses.push({ point: pointOf("write", offset), offset, count: data.length });
    return this.inner.write(offset, data);
  }
  reset(): Promise<void> {
    this.accesses.push({ point: "reset", offset: 0, count: 0 });
    return this.inner.reset();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** The device's protocol-violation log must be empty after a correct run. */
export function expectClean(...devs: SimDevice[]): void {
  for (const d of devs) expect(d.violations).toEqual([]);
}

export const low = (s: number): number => s & STATE_MASK;

/** Awaits a promise that must reject with an instance of `type`, and returns the error. */
async function rejection<E>(p: Promise<unknown>, type: new (...args: never[]) => E, what: string): Promise<E> {
  let e: unknown;
  try {
    await p;
  } catch (x) {
    e = x;
  }
  if (!(e instanceof type)) throw new Error(`expected a ${what}, got ${e === undefined ? "success" : String(e)}`);
  return e;
}

/** Awaits a promise that must reject with a MigstreamError, and returns it. */
export function failure(p: Promise<unknown>): Promise<MigstreamError> {
  return rejection(p, MigstreamError, "MigstreamError");
}

/** Awaits a vendor call that must reject with `errno` (a VendorErrno). */
export async function vendorErrno(p: Promise<unknown>): Promise<number> {
  return (await rejection(p, VendorErrno, "VendorErrno")).errno;
}

export interface RoundTrip {
  src: SimDevice;
  dst: SimDevice;
  sink: ItemSink;
  summary: Awaited<ReturnType<typeof save>>;
  /** Source digest once it stopped. */
  digest: bigint;
}

/**
 * save → items → resume, then the checks every correct run must pass: equal
 * digests, the destination received exactly the source's transactions (count,
 * order, sizes), the sink got them too, empty violation logs, source STOP,
 * destination RUNNING.
 */
export async function roundTrip(
  srcOptions: SimDeviceOptions,
  dstOptions: SimDeviceOptions = {},
  saveOptions: SaveOptions = {},
  resumeOptions: ResumeOptions = {},
  maxAccess?: number,
): Promise<RoundTrip> {
  const s = sim(srcOptions, maxAccess);
  const d = sim(destinationFor(s.dev, dstOptions), maxAccess);
  const sink = new ItemSink();
  const summary = await save(s.io, sink, saveOptions);
  const digest = s.dev.digest();
  expect(low(s.dev.state)).toBe(0);
  await resume(d.io, sink.verified(), resumeOptions);
  expect(d.dev.digest()).toBe(digest);
  expect(d.dev.received).toEqual(s.dev.sent);
  expect(sink.transactions.map((t) => t.length)).toEqual(s.dev.sent.map((t) => t.size));
  expect(summary.transactions).toBe(s.dev.sent.length);
  expect(low(d.dev.state)).toBe(resumeOptions.start === false ? 4 : 1);
  expectClean(s.dev, d.dev);
  return { src: s.dev, dst: d.dev, sink, summary, digest };
}

/** The errnos fault cases cycle through. */
export const FAULT_ERRNOS = [ERRNO.EIO, ERRNO.EBUSY, ERRNO.EFAULT, ERRNO.EPERM];

/** One fault to arm, and its test name. */
export interface FaultCase {
  name: string;
  fault: Fault;
}

/**
 * One fault case per kind for every access of `trace`: an errno (a
 * device_state write that stays, or enters ERROR), and a short read for
 * every read. `nth` counts the accesses of the same point.
 */
export function faultCases(trace: Access[]): FaultCase[] {
  const out: FaultCase[] = [];
  const seen = new Map<string, number>();
  trace.forEach((a, i) => {
    const nth = (seen.get(a.point) ?? 0) + 1;
    seen.set(a.point, nth);
    if (a.point === "reset" || a.point === "read reserved" || a.point === "write other") return;
    const at = a.point as FaultPoint;
    const errno = FAULT_ERRNOS[i % FAULT_ERRNOS.length];
    const where = `#${i} ${at} (${nth})`;
    if (at === "write device_state") {
      out.push({ name: `${where}: ${errnoName(errno)}, stays`, fault: { at, nth, errno, then: "stay" } });
      out.push({ name: `${where}: ${errnoName(errno)}, enters ERROR`, fault: { at, nth, errno, then: "error" } });
    } else {
      out.push({ name: `${where}: ${errnoName(errno)}`, fault: { at, nth, errno } });
    }
    if (at.startsWith("read ")) out.push({ name: `${where}: short read`, fault: { at, nth, short: 1 } });
  });
  return out;
}
