// Socket reads into one reusable buffer (node:net `onread`) instead of a new
// 64 KiB Buffer per read: a 1 MiB message then takes a few read callbacks
// (as much as the kernel's socket buffer holds) instead of sixteen, and no
// allocation. Node only: Deno's Node layer gained `onread` recently, so there
// sockets deliver "data" events as before.
import type { NetModule, NetSocket, UserBufferReads } from "./channel.js";

/** Receive buffer per socket (more than a UNIX socket's kernel buffer hands over at once). */
export const READ_BUFFER_SIZE = 256 << 10;

/** Whether this runtime's sockets can read into our buffer. */
export function userBufferReads(): boolean {
  return typeof (globalThis as { Deno?: unknown }).Deno === "undefined";
}

/**
 * The `onread` option of one socket, bound to the consumer once it exists.
 * Chunks are only valid during `feed`; any that arrive before `attach` are
 * copied and replayed.
 */
export class ReadSink {
  readonly onread: UserBufferReads;
  private feed: ((chunk: Uint8Array) => void) | undefined;
  private readonly early: Uint8Array[] = [];

  constructor(size = READ_BUFFER_SIZE) {
    this.onread = {
      buffer: new Uint8Array(size),
      callback: (n, buf) => {
        const chunk = buf.subarray(0, n);
        if (this.feed) this.feed(chunk);
        else this.early.push(chunk.slice());
      },
    };
  }

  attach(feed: (chunk: Uint8Array) => void): void {
    this.feed = feed;
    for (const c of this.early.splice(0)) feed(c);
  }
}

/** The node:net internals `adopt` relies on (present in Node's net.Socket). */
interface NodeSocketInternals {
  _handle?: unknown;
  _server?: unknown;
}

/**
 * Re-wraps a server-side socket accepted with `pauseOnConnect` so that its
 * reads land in `sink`'s buffer (net.Server offers no `onread` of its own).
 * Returns null when the runtime does not expose what this needs; the caller
 * then resumes and uses the socket as it is.
 */
export function adopt(net: NetModule, sock: NetSocket, sink: ReadSink): NetSocket | null {
  const old = sock as unknown as NodeSocketInternals;
  if (!old._handle || typeof net.Socket !== "function") return null;
  const s = new net.Socket({ handle: old._handle, onread: sink.onread });
  // The server counts its connections down when the socket wrapping the handle closes.
  (s as unknown as NodeSocketInternals)._server = old._server;
  return s;
}
