// Types shared by the protocol driver and the stream format: how saved
// transactions leave the driver and how verified ones come back for resume.

/**
 * Which VFIO migration protocol produced a device's data, and what a
 * destination needs to know to replay it (recorded in the stream per device;
 * docs/FORMAT.md §5.8). v1: transactions are data-section buffers, replayed
 * one per data_size write. v2: the transactions concatenated are the device's
 * data stream, in any split; with `restartsAtStopCopy` only the stop-copy
 * phase's bytes form the state.
 */
export type MigrationProtocol = { generation: 1 } | { generation: 2; restartsAtStopCopy: boolean };

/** Phases of one device's migration, as recorded in the stream. */
export type Phase = "setup" | "precopy" | "stopcopy" | "config" | "end";

/**
 * Where the save path puts what it reads from the device. The driver calls
 * `phase` when it enters a phase (pre-copy iterations numbered from 0), then
 * `transaction` once per data-section buffer, in order.
 *
 * `data` may be a view into a buffer the driver reuses (zero-copy from the
 * region): the sink must be done with it (or have copied it) when the returned
 * promise settles. A rejection fails the save (the device returns to RUNNING).
 */
export interface SaveSink {
  /**
   * Optional: what produced the data, called once before the first phase.
   * A stream encoder records it (generation 2 only: a device without the
   * record is v1); sinks that do not care leave it out.
   */
  protocol?(p: MigrationProtocol): void | Promise<void>;
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
 * What the resume path consumes, in stream order. A `protocol` item, when
 * present, comes first (none: generation 1); a driver refuses a generation
 * it does not speak before it touches the device. `transaction` items must
 * already have passed their integrity checks; `verified` comes only after the
 * whole stream for this device (trailer, digest, MAC if keyed) verified. The
 * driver writes RUNNING only after `verified`.
 */
export type ResumeItem =
  | { kind: "protocol"; protocol: MigrationProtocol }
  | { kind: "phase"; phase: Phase; iteration: number }
  | { kind: "transaction"; data: Uint8Array }
  | { kind: "verified" };
