// Types shared by the protocol driver and the stream format: how saved
// transactions leave the driver and how verified ones come back for resume.

/** Phases of one device's migration, as recorded in the stream. */
export type Phase = "setup" | "precopy" | "stopcopy" | "config" | "end";

/**
 * Where the save driver puts what it reads from the device (a stream
 * encoder's device writer is one).
 *
 * - Order: `phase` when the driver enters a phase (setup, precopy with
 *   iterations numbered from 0, stopcopy), then `transaction` once per
 *   data-section buffer of that phase, in order; one call at a time, each
 *   awaited before the next.
 * - Buffers: `data` may be a view into a buffer the driver reuses (zero copy
 *   from the region): the sink must be done with it (or have copied it) when
 *   the returned promise settles. A slow sink slows the driver's reads
 *   (backpressure).
 * - Errors: a rejection (a MigstreamError) fails the save; the driver puts
 *   the device back in RUNNING. The sink is not told the end: the caller ends
 *   it (a device writer's `end()`) once save() resolved.
 */
export interface SaveSink {
  phase(phase: Phase, iteration: number): void | Promise<void>;
  transaction(data: Uint8Array): void | Promise<void>;
  /**
   * Optional, zero copy: a buffer of `size` bytes that the driver reads the
   * data section into and passes to transaction(), which takes it over (the
   * driver never touches it again). The `buffer` save option wins over it.
   */
  buffer?(size: number): Uint8Array;
}

/**
 * What the resume driver consumes, in stream order (streamItems makes them
 * from a stream's bytes). `transaction` items must already have passed their
 * integrity checks, and their data is only read until the driver asks for the
 * next item; `verified` comes only after the whole stream for this device
 * (trailer, digest, MAC if keyed) verified. The driver writes RUNNING only
 * after `verified`; items that end without it, or a source that throws, make
 * it reset the device.
 */
export type ResumeItem =
  | { kind: "phase"; phase: Phase; iteration: number }
  | { kind: "transaction"; data: Uint8Array }
  | { kind: "verified" };
