// Command inputs and outputs: a path, or `-` for stdin/stdout. Outputs to a
// file are written to a temporary name next to it and renamed into place only
// when the command succeeded, so a failed decode leaves no partial file; a
// temporary not yet renamed or dropped when the process exits (a stop signal's
// exit) is removed by an exit hook. Binary output to a terminal is refused
// unless forced.
import { rmSync } from "node:fs";
import { type FileHandle, open, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { MigstreamError } from "../errors.js";
import { type ByteSink, writableSink } from "../migrate/sink.js";
import type { CliIO } from "./command.js";

/** Read size for input files. */
export const READ_CHUNK = 1 << 20;

function ioError(e: unknown, what: string): MigstreamError {
  const errno = (e as { code?: string }).code;
  return new MigstreamError("IO", errno ? what : `${what}: ${e instanceof Error ? e.message : String(e)}`, {
    errno,
    cause: e,
  });
}

/** The bytes of `path` (`-`: stdin), in pieces. Fails with IO if it cannot be opened. */
export async function openInput(path: string, io: CliIO): Promise<AsyncIterable<Uint8Array>> {
  const source = await openSource(path, io);
  return "pieces" in source ? source.pieces : piecesOf(source.file.fh, path);
}

/** An opened input: a regular file, or pieces of a stream. */
export type Source = { file: { fh: FileHandle; size: number } } | { pieces: AsyncIterable<Uint8Array> };

/**
 * `path` (`-`: stdin) opened once: a regular file as its handle and size (to
 * be read by position, straight into the caller's buffers: transactions.ts),
 * anything else (stdin, a pipe, a device) as pieces of a stream. A FIFO is
 * never opened twice: a writer could see no reader between the two opens.
 * Fails with IO if it cannot be opened.
 */
export async function openSource(path: string, io: CliIO): Promise<Source> {
  if (path === "-") return { pieces: mapErrors(io.stdin as AsyncIterable<Uint8Array>, "cannot read stdin") };
  let fh: FileHandle;
  try {
    fh = await open(path, "r");
  } catch (e) {
    throw ioError(e, `cannot open ${path}`);
  }
  const st = await fh.stat().catch(() => null);
  return st?.isFile() ? { file: { fh, size: st.size } } : { pieces: piecesOf(fh, path) };
}

/** The file behind `fh` from its current position, as pieces; closes it at its end. */
function piecesOf(fh: FileHandle, path: string): AsyncIterable<Uint8Array> {
  return mapErrors(
    fh.createReadStream({ highWaterMark: READ_CHUNK }) as AsyncIterable<Uint8Array>,
    `cannot read ${path}`,
  );
}

async function* mapErrors(src: AsyncIterable<Uint8Array>, what: string): AsyncGenerator<Uint8Array> {
  try {
    for await (const b of src) yield typeof b === "string" ? new TextEncoder().encode(b) : b;
  } catch (e) {
    throw ioError(e, what);
  }
}

/** Temporary outputs not yet renamed into place or dropped. */
const partials = new Set<string>();
let exitHook = false;

/** Removes `path` if the process exits before `untrack(path)` (synchronously: exit hooks cannot wait). */
function track(path: string): void {
  partials.add(path);
  if (exitHook) return;
  exitHook = true;
  process.on("exit", () => {
    for (const p of partials) {
      try {
        rmSync(p, { force: true });
      } catch {
        // nothing more can be done while exiting
      }
    }
  });
}

/** The temporaries an exit would remove now (tests). */
export function pendingPartials(): string[] {
  return [...partials];
}

export interface Output {
  sink: ByteSink;
  /** Finishes the output: flush, and for a file rename it into place. */
  commit(): Promise<void>;
  /** Drops the output (a file's temporary is removed). */
  abort(): Promise<void>;
  /** The output is stdout. */
  stdout: boolean;
}

/**
 * An output at `path` (`-`: stdout). `copy: false`: writes are not copied and
 * settle once written out (see writableSink). `binary`: stream bytes, refused
 * on a terminal unless `force`.
 */
export async function openOutput(
  path: string,
  io: CliIO,
  opts: { copy?: boolean; binary?: boolean; force?: boolean; command?: string } = {},
): Promise<Output> {
  if (path === "-") {
    if (opts.binary && io.stdoutTTY && !opts.force) {
      throw new MigstreamError(
        "USAGE",
        `${opts.command ?? "migstream"}: refusing to write binary stream data to a terminal; redirect stdout, or give -f/--force`,
      );
    }
    const sink = writableSink(io.stdout as never, { label: "stdout", keepOpen: true, copy: opts.copy });
    return { sink, stdout: true, commit: () => sink.end(), abort: async () => {} };
  }
  // A device or FIFO (e.g. /dev/null) is written in place: renaming a temporary over it would replace it.
  const special = await stat(path).then(
    (s) => !s.isFile() && !s.isDirectory(),
    () => false,
  );
  const tmp = special ? path : join(dirname(path), `.${basename(path)}.${process.pid}.partial`);
  let fh: FileHandle;
  try {
    fh = await open(tmp, "w");
  } catch (e) {
    throw ioError(e, `cannot create ${path}`);
  }
  if (!special) track(tmp);
  const stream = fh.createWriteStream();
  const sink = writableSink(stream, { label: path, copy: opts.copy });
  return {
    sink,
    stdout: false,
    async commit() {
      await sink.end();
      await new Promise<void>((r) => (stream.closed ? r() : stream.once("close", () => r())));
      try {
        if (!special) await rename(tmp, path);
      } catch (e) {
        throw ioError(e, `cannot write ${path}`);
      }
      partials.delete(tmp);
    },
    async abort() {
      sink.destroy();
      if (!special) await rm(tmp, { force: true });
      partials.delete(tmp);
    },
  };
}
