// Byte sinks: where an encoder's output goes (a file, stdout, a socket). A
// write settles once the sink is done with the bytes (copied them, or handed
// them to the system) and, when the destination's buffer is full, after it
// drained — so a slow reader slows the encoder and, through it, the device
// reads (backpressure), and the writer may reuse its buffer for the next
// write (the stream encoder's `reuseOutput`). Node-specific (node:stream).
import type { Writable } from "node:stream";
import { MigstreamError } from "../errors.js";

/** Where a stream's bytes go (a file, stdout, a socket): writes in order, each settled once the sink is done with its bytes. */
export interface ByteSink {
  /** Writes `bytes`; once the promise settles the sink no longer needs them (the caller may reuse them). */
  write(bytes: Uint8Array): Promise<void>;
  /** Flushes and closes (again: waits for the first end). */
  end(): Promise<void>;
  /** Closes at once (after a failure). Idempotent. */
  destroy(): void;
  /** Bytes written so far. */
  readonly bytes: number;
}

/**
 * Where a pipeline writes its stream: a ByteSink, or a write function (handed
 * new arrays it may keep; the pipeline waits for what it returns).
 */
export type SinkOrWrite = ByteSink | ((bytes: Uint8Array) => void | Promise<void>);

/** `sink` as a ByteSink (a write function gets nothing to end or destroy). */
export function toByteSink(sink: SinkOrWrite): ByteSink {
  if (typeof sink !== "function") return sink;
  let bytes = 0;
  return {
    async write(b) {
      await sink(b);
      bytes += b.length;
    },
    end: async () => {},
    destroy() {},
    get bytes() {
      return bytes;
    },
  };
}

/** Options of writableSink(). */
export interface WritableSinkOptions {
  /** What the sink is, for error messages ("stdout", "file out.mig", "tcp://..."). */
  label: string;
  /** Longest wait for the destination to drain, ms (0: no limit). */
  drainTimeoutMs?: number;
  /** Error code for failures of this destination (IO for files, TRANSPORT for sockets). */
  code?: "IO" | "TRANSPORT";
  /** Leave the stream open on end() (stdout). */
  keepOpen?: boolean;
  /**
   * Copy each write (default true): the write settles as soon as the stream
   * took the copy. false: the stream writes the caller's bytes and the write
   * settles once they were handed to the system (the stream's write
   * callback), which saves a copy of every byte; either way the caller may
   * reuse its buffer once the write settled.
   */
  copy?: boolean;
}

function systemError(e: unknown, code: "IO" | "TRANSPORT", label: string): MigstreamError {
  if (e instanceof MigstreamError) return e;
  const errno = typeof (e as { code?: unknown })?.code === "string" ? String((e as { code: string }).code) : undefined;
  const msg = e instanceof Error ? e.message : String(e);
  return new MigstreamError(code, `${label}: ${msg}`, { errno, cause: e });
}

/** A ByteSink over a Node Writable, honouring its backpressure. */
export function writableSink(stream: Writable, options: WritableSinkOptions): ByteSink {
  const code = options.code ?? "IO";
  const label = options.label;
  let failed: MigstreamError | null = null;
  let written = 0;
  const onError = (e: unknown) => {
    failed ??= systemError(e, code, label);
  };
  stream.on("error", onError);

  const waitDrain = () =>
    new Promise<void>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = (e?: unknown) => {
        clearTimeout(timer);
        stream.off("drain", ok);
        stream.off("error", bad);
        stream.off("close", closed);
        if (e) reject(e);
        else resolve();
      };
      const ok = () => done();
      const bad = (e: unknown) => done(systemError(e, code, label));
      const closed = () => done(failed ?? new MigstreamError(code, `${label}: closed while writing`));
      stream.on("drain", ok);
      stream.on("error", bad);
      stream.on("close", closed);
      const ms = options.drainTimeoutMs ?? 0;
      if (ms > 0) {
        timer = setTimeout(
          () => done(new MigstreamError("TIMEOUT", `${label}: the destination took no data for ${ms} ms`)),
          ms,
        );
      }
    });

  /** Settles when `stream` is done with the bytes of one write (its callback), or fails/closes/times out. */
  const flushed = (buf: Uint8Array) =>
    new Promise<void>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      let settled = false;
      const done = (e?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        stream.off("close", closed);
        if (e) reject(e);
        else resolve();
      };
      const closed = () => done(failed ?? new MigstreamError(code, `${label}: closed while writing`));
      stream.on("close", closed);
      const ms = options.drainTimeoutMs ?? 0;
      if (ms > 0) {
        timer = setTimeout(
          () => done(new MigstreamError("TIMEOUT", `${label}: the destination took no data for ${ms} ms`)),
          ms,
        );
      }
      stream.write(buf, (e) => done(e ? systemError(e, code, label) : undefined));
    });

  return {
    get bytes() {
      return written;
    },
    async write(bytes) {
      if (failed) throw failed;
      if (stream.destroyed || stream.writableEnded) throw new MigstreamError(code, `${label}: closed while writing`);
      if (bytes.length === 0) return;
      if (options.copy === false) {
        written += bytes.length;
        await flushed(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
        if (failed) throw failed;
        return;
      }
      const more = stream.write(Buffer.from(bytes));
      written += bytes.length;
      if (!more) await waitDrain();
      if (failed) throw failed;
    },
    async end() {
      if (failed) throw failed;
      if (options.keepOpen) {
        if (stream.writableNeedDrain) await waitDrain();
        return;
      }
      if (!stream.writableFinished) {
        await new Promise<void>((resolve, reject) => {
          const done = (e?: unknown) => (e ? reject(systemError(e, code, label)) : resolve());
          if (stream.writableEnded) stream.once("finish", () => done()).once("error", done);
          else stream.end(done);
        });
      }
      if (failed) throw failed;
    },
    destroy() {
      if (!options.keepOpen) stream.destroy();
    },
  };
}
