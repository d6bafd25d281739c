// The kernel v2 driver's ioctl layer under Deno's FFI, on what this machine
// has (no VFIO device): VFIO_DEVICE_FEATURE and VFIO_DEVICE_RESET on a real
// fd that is no VFIO device answer ENOTTY through the real ioctl(2), which the
// driver reports as "no v2 migration" (case 1, the kernel half) without a
// single SET; read()/write() and errno through the FFI on a real pipe.
// Runs with --allow-ffi only (scripts/deno-test.mjs: *.ffi.test.ts).
import { denoSyscalls, KernelMigration } from "../../dist/index.js";
import { v2 } from "../../dist/protocol.js";
import { assert } from "./helpers.ts";

const libc = Deno.dlopen("libc.so.6", {
  open: { parameters: ["buffer", "i32"], result: "i32" },
  pipe: { parameters: ["buffer"], result: "i32" },
});
const cstr = (s: string) => new TextEncoder().encode(`${s}\0`);

Deno.test("kernel: GET MIGRATION on a non-VFIO fd is ENOTTY; the save reports no v2 migration and SETs nothing", async () => {
  const sys = denoSyscalls();
  const fd = libc.symbols.open(cstr("/dev/null"), 2 /* O_RDWR */);
  assert(fd >= 0, `open /dev/null: ${fd}`);
  const calls: number[] = [];
  const traced = { ...sys, ioctl: (f: number, r: number, a: Uint8Array | null) => (calls.push(r), sys.ioctl(f, r, a)) };
  const dev = new KernelMigration(traced, fd, true);
  let err: { code?: string; errno?: string; message?: string } | undefined;
  try {
    await dev.migrationFlags();
  } catch (e) {
    err = e as typeof err;
  }
  assert(err?.errno === "ENOTTY", `GET MIGRATION: ${err?.message}`);
  try {
    await v2.saveV2(dev, { phase() {}, transaction() {} });
    assert(false, "the save must fail");
  } catch (e) {
    const m = (e as Error).message;
    assert(/no v2 migration \(GET MIGRATION: ENOTTY\)/.test(m), m);
  }
  assert(
    calls.every((r) => r === v2.VFIO_DEVICE_FEATURE),
    `only VFIO_DEVICE_FEATURE (0x3b75) was issued: ${calls.map((c) => c.toString(16))}`,
  );
  let reset: { errno?: string } | undefined;
  try {
    await dev.reset();
  } catch (e) {
    reset = e as typeof reset;
  }
  assert(reset?.errno === "ENOTTY", "VFIO_DEVICE_RESET (0x3b6f) on /dev/null: ENOTTY");
  await dev.close();
});

Deno.test("kernel: read()/write() and errno through the FFI on a pipe; EOF is 0", () => {
  const sys = denoSyscalls();
  const fds = new Int32Array(2);
  assert(libc.symbols.pipe(new Uint8Array(fds.buffer)) === 0, "pipe()");
  const [r, w] = fds;
  assert(sys.write(w, new TextEncoder().encode("state bytes")) === 11, "write");
  assert(sys.close(w) === 0, "close write end");
  const buf = new Uint8Array(64);
  assert(sys.read(r, buf) === 11, "read");
  assert(new TextDecoder().decode(buf.subarray(0, 11)) === "state bytes", "content");
  assert(sys.read(r, buf) === 0, "EOF: read() returns 0 (the end of a STOP_COPY stream)");
  assert(sys.close(r) === 0, "close read end");
  assert(sys.read(r, buf) === -9, "a closed fd: -EBADF");
  assert(sys.ioctl(r, v2.VFIO_DEVICE_FEATURE, new Uint8Array(16)) === -9, "ioctl on a closed fd: -EBADF");
});
