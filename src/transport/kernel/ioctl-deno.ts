// The kernel driver's system calls through Deno's FFI (Deno.dlopen of the C
// library): ioctl, read, write, close, and errno read on the calling thread
// right after each call (every symbol is called synchronously on the main
// thread, so errno belongs to that call). Needs `--allow-ffi`. Node has no
// built-in FFI; there this module reports that instead of loading.
import { MigstreamError } from "../../errors.js";
import type { Syscalls } from "./device.js";

/** The C library names tried in order (glibc, then musl). */
const LIBC = ["libc.so.6", "libc.musl-x86_64.so.1", "libc.so"];

type DenoFfi = {
  dlopen(
    path: string,
    symbols: Record<string, { parameters: string[]; result: string }>,
  ): { symbols: Record<string, (...a: unknown[]) => unknown>; close(): void };
  UnsafePointerView: new (p: unknown) => { getInt32(offset?: number): number };
  build: { os: string };
};

/** Deno's FFI surface, or undefined outside Deno. */
function deno(): DenoFfi | undefined {
  return (globalThis as { Deno?: DenoFfi }).Deno;
}

/** Opens the C library and returns the Syscalls over it. */
export function denoSyscalls(): Syscalls {
  const D = deno();
  if (D === undefined) {
    throw new MigstreamError(
      "TRANSPORT",
      "the kernel driver issues VFIO ioctls through Deno's FFI (Deno.dlopen); under Node hand a data fd over instead (fd:N,protocol=v2)",
    );
  }
  if (D.build.os !== "linux") throw new MigstreamError("TRANSPORT", `VFIO is Linux only (this is ${D.build.os})`);
  let lib: ReturnType<DenoFfi["dlopen"]> | undefined;
  let lastErr: unknown;
  for (const name of LIBC) {
    try {
      lib = D.dlopen(name, {
        ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
        read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
        write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
        close: { parameters: ["i32"], result: "i32" },
        __errno_location: { parameters: [], result: "pointer" },
      });
      break;
    } catch (e) {
      lastErr = e;
    }
  }
  if (lib === undefined)
    throw new MigstreamError(
      "TRANSPORT",
      `cannot open the C library (${LIBC.join(", ")}): ${lastErr instanceof Error ? lastErr.message : String(lastErr)}`,
      { cause: lastErr },
    );
  const s = lib.symbols;
  const errno = (): number => new D.UnsafePointerView(s.__errno_location()).getInt32(0);
  const call = (ret: number | bigint): number => {
    const r = Number(ret);
    return r < 0 ? -errno() : r;
  };
  return {
    ioctl: (fd, request, arg) => call(s.ioctl(fd, BigInt(request), arg) as number),
    read: (fd, into) => call(s.read(fd, into, BigInt(into.length)) as bigint),
    write: (fd, data) => call(s.write(fd, data, BigInt(data.length)) as bigint),
    close: (fd) => call(s.close(fd) as number),
  };
}
