// The kernel driver's UAPI buffers, byte for byte against the notes' tables
// (vfio-migration-v2.md §1.1–§1.6), and the driver's handling of what the
// kernel writes back (the new data_fd of a SET, errno as -errno).
import { describe, expect, it } from "vitest";
import {
  MIG_STATE,
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_RESET,
  VFIO_MIG_GET_PRECOPY_INFO,
} from "../../src/protocol/v2/constants.js";
import { KernelMigration, type Syscalls } from "../../src/transport/kernel/device.js";
import {
  dataSizeRequest,
  getMigrationRequest,
  getStateRequest,
  precopyInfoOf,
  precopyInfoRequest,
  setStateRequest,
  stateOf,
} from "../../src/transport/kernel/uapi.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("VFIO v2 UAPI buffers", () => {
  it("ioctl numbers are _IO(';', nr): FEATURE 117, PRECOPY_INFO 121, RESET 111", () => {
    expect(VFIO_DEVICE_FEATURE).toBe((0x3b << 8) | 117);
    expect(VFIO_MIG_GET_PRECOPY_INFO).toBe((0x3b << 8) | 121);
    expect(VFIO_DEVICE_RESET).toBe((0x3b << 8) | 111);
  });

  it("feature requests: argsz = 8 + data, flags = GET/SET | feature", () => {
    expect(hex(getMigrationRequest())).toBe("10000000" + "01000100" + "0000000000000000");
    expect(hex(getStateRequest())).toBe("10000000" + "02000100" + "0000000000000000");
    expect(hex(setStateRequest(MIG_STATE.STOP_COPY))).toBe("10000000" + "02000200" + "03000000" + "ffffffff");
    expect(hex(dataSizeRequest())).toBe("10000000" + "09000100" + "0000000000000000");
    expect(hex(precopyInfoRequest())).toBe(`1800000000000000${"00".repeat(16)}`);
  });

  it("reads back the state, the new data_fd, and the precopy counters", () => {
    const b = setStateRequest(MIG_STATE.PRE_COPY);
    new DataView(b.buffer).setInt32(12, 42, true);
    expect(stateOf(b)).toEqual({ state: MIG_STATE.PRE_COPY, dataFd: 42 });
    const p = precopyInfoRequest();
    new DataView(p.buffer).setBigUint64(8, 4096n, true);
    new DataView(p.buffer).setBigUint64(16, 512n, true);
    expect(precopyInfoOf(p)).toEqual({ initialBytes: 4096, dirtyBytes: 512 });
  });
});

describe("KernelMigration over a scripted kernel", () => {
  /** A kernel that answers SET with data_fd 7 and fails what it is told to. */
  function kernel(fail: Record<number, number> = {}): Syscalls & { closed: number[] } {
    const closed: number[] = [];
    return {
      closed,
      ioctl(_fd, req, arg) {
        if (fail[req]) return -fail[req];
        if (req === VFIO_DEVICE_FEATURE && arg && new DataView(arg.buffer).getUint32(4, true) & 0x20000)
          new DataView(arg.buffer).setInt32(12, 7, true);
        return 0;
      },
      read: (_fd, into) => (into.fill(1), into.length),
      write: (_fd, d) => d.length - 1,
      close: (fd) => (closed.push(fd), 0),
    };
  }

  it("a SET's data_fd becomes the channel, closed with it; a short write is reported as such", async () => {
    const k = kernel();
    const dev = new KernelMigration(k, 3);
    const ch = (await dev.setState(MIG_STATE.STOP_COPY))!;
    expect(await ch.read(new Uint8Array(8))).toBe(8);
    expect(await ch.write(new Uint8Array(8))).toBe(7);
    await ch.close();
    await ch.close();
    expect(k.closed).toEqual([7]);
    await dev.close();
    expect(k.closed).toEqual([7]); // the device fd is the VMM's unless we opened it
  });

  it("-errno becomes DEVICE with the errno name", async () => {
    const dev = new KernelMigration(kernel({ [VFIO_DEVICE_FEATURE]: 25, [VFIO_DEVICE_RESET]: 16 }), 3);
    await expect(dev.migrationFlags()).rejects.toMatchObject({ code: "DEVICE", errno: "ENOTTY" });
    await expect(dev.reset()).rejects.toMatchObject({ code: "DEVICE", errno: "EBUSY" });
  });
});
