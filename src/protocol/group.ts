// A set of devices that migrate together (a VM's devices): each device has
// its own driver (v1 or v2, through saveAny / resumeAny) and its own
// transport, and all of them run at once under one coordinated policy.
//
// Save: every device's pre-copy runs concurrently (a slow device does not
// hold up the others' reads); the group (PrecopyGroup) ends pre-copy for all
// at once, then every device stops and its stop-and-copy data follows.
// Resume: every device loads its part of the stream concurrently and stays
// stopped; only when every device has loaded a verified state are they all
// started.
//
// Failure, on either side, is all or nothing: when one device fails the
// others are cancelled; every source ends RUNNING with its state (a failed
// save puts its device back itself; a completed one is restarted here), and
// no destination ends RUNNING (a failed resume resets its device itself; a
// loaded or started one is taken back here). The error names the device that
// failed first and says what became of every other.
import { MigstreamError } from "../errors.js";
import { restartSource, resumeAny, saveAny, startAny, stopResumedAny } from "./drive.js";
import { describe } from "./failure.js";
import type { MigratableDevice } from "./generation.js";
import { isMigrationDevice } from "./generation.js";
import type { PrecopyEnd, PrecopyPolicy, StopSignal } from "./policy.js";
import { PrecopyGroup } from "./precopy-group.js";
import type { Progress, ResumeSummary, SaveSummary } from "./progress.js";
import type { ResumeOptions } from "./resume.js";
import type { ResumeItem, SaveSink } from "./types.js";
import type { SaveV2Options } from "./v2/save.js";

/** How a member is named in errors. */
interface Named {
  /** What the device is (a device spec, a name); shown in errors. */
  label?: string;
  /** The device's id (in the stream); `MigstreamError.device` of the group's error. Default: its index. */
  id?: number;
}

/** One device of a group save. */
export interface GroupSaveMember extends Named {
  device: MigratableDevice;
  sink: SaveSink;
  /** The device's own save options (buffer size or factory, progress); the group's precopy, policy, stop signal and cancel replace theirs. */
  options?: SaveV2Options;
}

export interface GroupSaveOptions {
  /** Live migration with pre-copy (default true); false = every device stops at once. */
  precopy?: boolean;
  /** The group's policy: `pendingThreshold` bounds the total of all devices' pending estimates; `maxIterations` counts per device; `timeBudgetMs` runs from the first device entering pre-copy. */
  policy?: PrecopyPolicy;
  /** The VMM's "stop now": ends every device's pre-copy. */
  stopCopy?: StopSignal;
  /** Cancels the whole save (ABORTED); every source back in RUNNING. */
  signal?: AbortSignal;
  /** Progress of the device at `index`. */
  onProgress?: (index: number, p: Progress) => void;
  /**
   * Consulted when the group fails: a failure outside the devices that made
   * them fail (the sinks' destination, when it is one stream), reported as
   * the error instead of the first device's.
   */
  cause?: () => unknown;
}

export interface GroupSaveSummary {
  /** Per device, in the members' order. */
  devices: SaveSummary[];
  /** Why the group's pre-copy ended ("none" without pre-copy). */
  precopyEnd: PrecopyEnd;
  /** performance.now() when each device entered stop-and-copy (the stop window opens at the earliest). */
  stoppedAt: number[];
}

/** Saves every member's device into its sink, together (see the file comment). */
export async function saveGroup(members: GroupSaveMember[], options: GroupSaveOptions = {}): Promise<GroupSaveSummary> {
  checkMembers(members, "saveGroup");
  const run = new GroupRun(members, options.signal, options.cause);
  const group = new PrecopyGroup(members.length, options.policy, options.stopCopy, run.signal);
  const stoppedAt = members.map(() => 0);
  const settled = await run.all((m, i) =>
    saveAny(m.device, m.sink, {
      ...m.options,
      precopy: options.precopy,
      precopyControl: group.member(i),
      signal: run.signal,
      onProgress: (p) => {
        if (p.phase === "stopcopy" && stoppedAt[i] === 0) stoppedAt[i] = performance.now();
        m.options?.onProgress?.(p);
        options.onProgress?.(i, p);
      },
    }),
  );
  if (settled.every((r) => r.status === "fulfilled")) {
    const end = options.precopy === false ? "none" : (group.end ?? "none");
    const devices = settled.map((r) => ({ ...(r as PromiseFulfilledResult<SaveSummary>).value }));
    for (const d of devices) if (d.precopyEnd !== "none") d.precopyEnd = end;
    return { devices, precopyEnd: end, stoppedAt };
  }
  // Devices that completed are stopped: put them back (the failed ones did it themselves).
  const notes = await Promise.all(
    settled.map((r, i) => (r.status === "fulfilled" ? restartSource(members[i].device) : undefined)),
  );
  throw run.error("save", settled, notes, options.signal);
}

/** One device of a group resume. */
export interface GroupResumeMember extends Named {
  device: MigratableDevice;
  /** This device's part of the verified stream (resume items). */
  items: AsyncIterable<ResumeItem> | Iterable<ResumeItem>;
  /** The device's own progress listener. */
  onProgress?: ResumeOptions["onProgress"];
}

export interface GroupResumeOptions {
  /** Start every device once all have loaded (default true); false leaves them as `start: false` does, for the VMM. */
  start?: boolean;
  /** Cancels the whole resume (ABORTED); no device ends RUNNING. */
  signal?: AbortSignal;
  /** Progress of the device at `index`. */
  onProgress?: (index: number, p: Progress) => void;
  /**
   * Consulted when the group fails: a failure outside the devices that made
   * them fail (the stream's, when it is the items' source), reported as the
   * error instead of the first device's.
   */
  cause?: () => unknown;
}

export interface GroupResumeSummary {
  /** Per device, in the members' order. */
  devices: ResumeSummary[];
  /** performance.now() when each device was put in RUNNING (0: not started). */
  startedAt: number[];
}

/** Restores every member's device from its items, together; starts them all only once all have loaded (see the file comment). */
export async function resumeGroup(
  members: GroupResumeMember[],
  options: GroupResumeOptions = {},
): Promise<GroupResumeSummary> {
  checkMembers(members, "resumeGroup");
  const run = new GroupRun(members, options.signal, options.cause);
  const settled = await run.all((m, i) =>
    resumeAny(m.device, abortable(m.items, run.signal), {
      start: false,
      signal: run.signal,
      onProgress: (p) => {
        m.onProgress?.(p);
        options.onProgress?.(i, p);
      },
    }),
  );
  if (!settled.every((r) => r.status === "fulfilled")) {
    // Loaded devices are not started; take them back so none holds a state of a failed migration.
    const notes = await Promise.all(
      settled.map((r, i) => (r.status === "fulfilled" ? stopResumedAny(members[i].device) : undefined)),
    );
    throw run.error("resume", settled, notes, options.signal);
  }
  const devices = settled.map((r) => ({ ...(r as PromiseFulfilledResult<ResumeSummary>).value }));
  const startedAt = members.map(() => 0);
  if (options.start === false) return { devices, startedAt };
  // Every device verified and loaded: start them all (a device its VMM owns is the VMM's to start).
  const starting = new GroupRun(members, options.signal);
  const started = await starting.all(async (m, i) => {
    if (isMigrationDevice(m.device) && m.device.vmmOwnsStates) return;
    await startAny(m.device);
    startedAt[i] = performance.now();
    devices[i].started = true;
  });
  if (!started.every((r) => r.status === "fulfilled")) {
    const notes = await Promise.all(members.map((m) => stopResumedAny(m.device)));
    throw starting.error("resume: start", started, notes, options.signal);
  }
  return { devices, startedAt };
}

function checkMembers(members: unknown[], what: string): void {
  if (!Array.isArray(members) || members.length === 0)
    throw new MigstreamError("USAGE", `${what}: give at least one device`);
}

/** The name of member `i` in errors. */
function nameOf(m: Named, i: number): string {
  return `device ${m.id ?? i}${m.label ? ` (${m.label})` : ""}`;
}

/**
 * One all-or-nothing run over the members: the first failure cancels the
 * others (their drivers see the signal at their next step).
 */
class GroupRun<M extends Named> {
  readonly #ac = new AbortController();
  /** Index of the first member that failed. */
  #first: number | undefined;

  constructor(
    readonly members: M[],
    readonly outer: AbortSignal | undefined,
    readonly cause?: () => unknown,
  ) {
    if (outer?.aborted) this.#ac.abort(outer.reason);
    else outer?.addEventListener("abort", () => this.#ac.abort(outer.reason), { once: true });
  }

  get signal(): AbortSignal {
    return this.#ac.signal;
  }

  /** Runs `f` for every member at once; settles when all did. */
  all<T>(f: (m: M, i: number) => Promise<T>): Promise<PromiseSettledResult<T>[]> {
    return Promise.allSettled(
      this.members.map((m, i) =>
        f(m, i).catch((e: unknown) => {
          if (this.#first === undefined) {
            this.#first = i;
            this.#ac.abort(new MigstreamError("ABORTED", `${nameOf(m, i)} failed`, { cause: e }));
          }
          throw e;
        }),
      ),
    );
  }

  /**
   * The group's error: the first failure (or the outside cause, or the
   * cancel) with every device's fate: its own error's message for the
   * failed ones (they unwound themselves), `notes[i]` for the others.
   */
  error(
    what: string,
    settled: PromiseSettledResult<unknown>[],
    notes: (string | undefined)[],
    cancel: AbortSignal | undefined,
  ): MigstreamError {
    const first = this.#first ?? 0;
    const outside = this.cause?.();
    const lead: MigstreamError | undefined =
      outside instanceof MigstreamError
        ? outside
        : cancel?.aborted
          ? new MigstreamError("ABORTED", `${what}: cancelled`, { cause: cancel.reason })
          : undefined;
    const firstErr = asError((settled[first] as PromiseRejectedResult).reason);
    const fates = this.members.map((m, i) => {
      const r = settled[i];
      let fate = r.status === "rejected" ? asError(r.reason).message : (notes[i] ?? "completed");
      // A device that failed because of the outside cause: only what its driver did about it.
      const at = lead ? fate.indexOf(lead.message) : -1;
      if (lead && at >= 0) fate = fate.slice(at + lead.message.length).replace(/^;\s*/, "") || "(the same failure)";
      return { i, text: `${nameOf(m, i)}: ${fate}` };
    });
    if (lead) {
      return new MigstreamError(lead.code, `${lead.message}; ${fates.map((f) => f.text).join("; ")}`, {
        offset: lead.offset,
        frame: lead.frame,
        device: lead.device,
        field: lead.field,
        step: lead.step,
        errno: lead.errno,
        cause: lead,
      });
    }
    const others = fates.filter((f) => f.i !== first).map((f) => f.text);
    return new MigstreamError(
      firstErr.code,
      `${fates[first].text}${others.length ? `; the other devices: ${others.join("; ")}` : ""}`,
      {
        offset: firstErr.offset,
        frame: firstErr.frame,
        device: this.members[first].id ?? first,
        field: firstErr.field,
        step: firstErr.step,
        errno: firstErr.errno,
        cause: firstErr,
      },
    );
  }
}

function asError(e: unknown): MigstreamError {
  return e instanceof MigstreamError ? e : new MigstreamError("INTERNAL", describe(e), { cause: e });
}

/**
 * The items with every `next()` raced against `signal`: a driver waiting for
 * its next item (a stream that feeds another device now) sees the group's
 * cancel at once.
 */
function abortable(
  items: AsyncIterable<ResumeItem> | Iterable<ResumeItem>,
  signal: AbortSignal,
): AsyncIterable<ResumeItem> {
  return {
    [Symbol.asyncIterator]() {
      const it: AsyncIterator<ResumeItem> | Iterator<ResumeItem> =
        Symbol.asyncIterator in items
          ? (items as AsyncIterable<ResumeItem>)[Symbol.asyncIterator]()
          : (items as Iterable<ResumeItem>)[Symbol.iterator]();
      return {
        next: () => raced(Promise.resolve(it.next()), signal),
        async return() {
          await it.return?.();
          return { done: true, value: undefined };
        },
      };
    },
  };
}

function raced<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  const cancelled = () =>
    new MigstreamError("ABORTED", "resume: next item: resume cancelled", {
      step: "resume: next item",
      cause: signal.reason,
    });
  if (signal.aborted) {
    p.catch(() => {}); // its failure is not the one reported
    return Promise.reject(cancelled());
  }
  return new Promise<T>((resolve, reject) => {
    const stop = () => reject(cancelled());
    signal.addEventListener("abort", stop, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", stop);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", stop);
        reject(e);
      },
    );
  });
}
