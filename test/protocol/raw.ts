// Raw region accesses straight to a simulated device (no driver), for the
// vendor-side conformance cases. Values are little-endian like the driver's.
import type { SimDevice } from "../../src/device/index.js";
import type { ResumeItem } from "../../src/protocol/types.js";

export const OFF = { state: 0, reserved: 4, pending: 8, offset: 16, size: 24 } as const;

export async function rd32(dev: SimDevice, off: number): Promise<number> {
  const b = await dev.read(off, 4);
  return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
}

export async function rd64(dev: SimDevice, off: number): Promise<number> {
  const b = await dev.read(off, 8);
  return Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true));
}

export async function wr32(dev: SimDevice, off: number, v: number): Promise<void> {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  await dev.write(off, b);
}

export async function wr64(dev: SimDevice, off: number, v: number): Promise<void> {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
  await dev.write(off, b);
}

/** Sets device_state keeping the device's reserved bits. */
export async function setState(dev: SimDevice, low: number): Promise<void> {
  await wr32(dev, OFF.state, ((dev.state & ~7) | low) >>> 0);
}

/** One saving iteration by hand (steps b–d): returns the buffer, not acknowledged. */
export async function takeBuffer(dev: SimDevice): Promise<Uint8Array> {
  const at = await rd64(dev, OFF.offset);
  const n = await rd64(dev, OFF.size);
  return dev.read(at, n);
}

/** Drains the current saving phase by hand (pending read first); returns the buffers. */
export async function drain(dev: SimDevice): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  while ((await rd64(dev, OFF.pending)) > 0) out.push(await takeBuffer(dev));
  return out;
}

/** Resuming steps a–c by hand for one buffer. */
export async function feed(dev: SimDevice, txn: Uint8Array): Promise<void> {
  const at = await rd64(dev, OFF.offset);
  await dev.write(at, txn);
  await wr64(dev, OFF.size, txn.length);
}

/** A whole suspend-path save by hand (1 → 2, drain, 2 → 0). */
export async function saveByHand(dev: SimDevice): Promise<Uint8Array[]> {
  await setState(dev, 2);
  const txns = await drain(dev);
  await setState(dev, 0);
  return txns;
}

export const txnItems = (txns: Uint8Array[]): ResumeItem[] => [
  ...txns.map((data) => ({ kind: "transaction" as const, data })),
  { kind: "verified" },
];
