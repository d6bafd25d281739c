// Buffer ownership across threads. A view can travel without a copy only when
// it spans its whole ArrayBuffer (transferring moves the whole buffer, so a view
// into a larger one would take its neighbours along). SharedArrayBuffer views
// are shared as they are. Everything else is copied once into a fresh buffer.

import { inKernelMemory } from "../kernels/wasm.js";

/** A copy in a fresh ArrayBuffer (Node's Buffer#slice would alias the input instead). */
function copyOf(view: Uint8Array): Uint8Array {
  return Uint8Array.prototype.slice.call(view);
}

export function isShared(view: Uint8Array): boolean {
  return typeof SharedArrayBuffer !== "undefined" && view.buffer instanceof SharedArrayBuffer;
}

/** True when `view` covers all of its (non-shared, non-kernel) ArrayBuffer. */
function spansBuffer(view: Uint8Array): boolean {
  return (
    !isShared(view) && !inKernelMemory(view) && view.byteOffset === 0 && view.byteLength === view.buffer.byteLength
  );
}

/**
 * Takes ownership of a job input at submission: a view spanning its buffer is
 * moved (the caller's ArrayBuffer is detached, no copy); a view into a larger
 * buffer, into kernel memory, or any view when `copy` is set, is copied; a
 * SharedArrayBuffer view is used in place (the caller must leave it unchanged
 * until the job settles).
 */
export function own(view: Uint8Array, copy: boolean, whole = false): Uint8Array {
  if (isShared(view) && !copy) return view;
  if (copy || !(spansBuffer(view) || (whole && movable(view)))) return copyOf(view);
  try {
    return structuredClone(view, { transfer: [view.buffer as ArrayBuffer] });
  } catch {
    return copyOf(view); // a buffer that cannot be transferred (e.g. marked untransferable)
  }
}

/** True when `view` starts its (non-shared, non-kernel) ArrayBuffer, which can move whole with it. */
function movable(view: Uint8Array): boolean {
  return !isShared(view) && !inKernelMemory(view) && view.byteOffset === 0;
}

/**
 * The view to post and the buffers to transfer with it (copying only if it
 * must). With `whole`, a view at the start of a larger buffer moves that
 * whole buffer (for buffers the sender owns outright).
 */
export function postable(view: Uint8Array, whole = false): { view: Uint8Array; transfer: ArrayBuffer[] } {
  if (isShared(view)) return { view, transfer: [] };
  const out = spansBuffer(view) || (whole && movable(view)) ? view : copyOf(view);
  return { view: out, transfer: [out.buffer as ArrayBuffer] };
}

/** A view the receiver may keep: copies out of kernel memory (reused scratch). */
export function detachFromKernel(view: Uint8Array): Uint8Array {
  return inKernelMemory(view) ? copyOf(view) : view;
}
