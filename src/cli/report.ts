// The migration report (save, demo) and the stream summary (inspect, verify,
// restore): one data shape each, printed as text or as JSON.

import type { SaveDevicesResult } from "../migrate/save-devices.js";
import type { SaveDeviceResult, SaveStep } from "../migrate/save-to.js";
import { QEMU_BUFFER_OVERHEAD, type StreamStats } from "../migrate/stats.js";
import type { AckDevice } from "../network/ack.js";
import { paint } from "./style.js";
import { bytes, duration, percent, rate, ratio, table } from "./units.js";

export interface PhaseRow {
  /** setup, pre-copy #N, stop-and-copy. */
  phase: string;
  transactions: number;
  rawBytes: number;
  wireBytes: number;
  ms: number;
}

export interface MigrationReport {
  source: string;
  destination: string;
  phases: PhaseRow[];
  iterations: number;
  /** Why pre-copy ended: converged, iterations, time, stop-signal, none. */
  precopyEnd: string;
  transactions: number;
  rawBytes: number;
  wireBytes: number;
  /** The same buffers in QEMU's raw layout (raw + 24 B per buffer). */
  qemuBytes: number;
  zeroBytes: number;
  dedupBytes: number;
  chunksByCodec: Record<string, number>;
  /** Stop-and-copy start to `downtimeEnd`. */
  downtimeMs: number;
  /** What ends the downtime: the destination RUNNING (network, demo) or the stream written (file). */
  downtimeEnd: "destination RUNNING" | "destination confirmed" | "stream written";
  /** Stop-and-copy start to the source device's STOP. */
  deviceStopMs: number;
  totalMs: number;
  /** Set when a destination confirmed (network) or was restored in the same run (demo). */
  restored?: { started: boolean; transactions: number; bytes: number };
  digests?: { source: string; destination: string; match: boolean };
  /**
   * Devices that migrated together (more than one): each on its own. Then
   * `phases` is empty (each device has its own), `downtimeMs` runs from the
   * first device stopped to the last one's end, and `deviceStopMs` from the
   * first device stopped to the last one STOP.
   */
  devices?: DeviceRow[];
}

/** One device of a migration of several, as the report shows it. */
export interface DeviceRow {
  /** Its id and name in the stream. */
  id: number;
  name: string;
  /** What was given for it (the device spec). */
  source: string;
  protocol: "v1" | "v2";
  iterations: number;
  /** Phases of this device (raw bytes; the wire is shared: wireBytes 0). */
  phases: PhaseRow[];
  precopyBytes: number;
  stopcopyBytes: number;
  transactions: number;
  rawBytes: number;
  /** Its chunks' coded bytes in the stream (its DEVICE_END). */
  codedBytes: number;
  /** From the first device stopped to this one stopping. */
  stoppedAfterMs: number;
  /** Its stop-and-copy start to its STOP. */
  deviceStopMs: number;
  /** Its stop-and-copy start to `downtimeEnd` for it (RUNNING on the destination, or the stream written). */
  downtimeMs: number;
  restored?: { started: boolean; transactions: number; bytes: number };
  digests?: { source: string; destination: string; match: boolean };
}

/** The report of one saveDevice run. */
export function saveReport(r: SaveDeviceResult, source: string, destination: string): MigrationReport {
  const s = r.summary;
  const phases = phaseRows(r.steps);
  return {
    source,
    destination,
    phases,
    iterations: s.iterations,
    precopyEnd: s.precopyEnd,
    transactions: s.transactions,
    rawBytes: s.bytes,
    wireBytes: r.wireBytes,
    qemuBytes: s.bytes + QEMU_BUFFER_OVERHEAD * s.transactions,
    zeroBytes: r.stats.zeroBytes,
    dedupBytes: r.stats.dedupBytes,
    chunksByCodec: { ...r.stats.chunksByCodec },
    downtimeMs: r.doneAt - r.stopcopyAt,
    downtimeEnd: "stream written",
    deviceStopMs: s.downtimeMs,
    totalMs: s.times.total,
  };
}

function phaseRows(steps: SaveStep[]): PhaseRow[] {
  return steps.map((st) => ({
    phase: st.phase === "precopy" ? `pre-copy #${st.iteration}` : st.phase === "stopcopy" ? "stop-and-copy" : st.phase,
    transactions: st.transactions,
    rawBytes: st.rawBytes,
    wireBytes: st.wireBytes,
    ms: st.ms,
  }));
}

/**
 * When each device's downtime ended: the destination's ack arrival minus how
 * long before the ack that device entered RUNNING (one-way latency makes it
 * an upper bound), or `doneAt` (the ack's arrival, or the stream written).
 */
export interface DevicesEnd {
  end: MigrationReport["downtimeEnd"];
  doneAt: number;
  /** From the ack, in the devices' order. */
  devices?: AckDevice[];
}

/** The report of one saveDevices run (several devices). */
export function devicesReport(
  r: SaveDevicesResult,
  given: { source: string; name: string }[],
  destination: string,
  end: DevicesEnd,
): MigrationReport {
  const first = Math.min(...r.devices.map((d) => d.stopcopyAt));
  const ends = r.devices.map((_, i) => {
    const ms = end.devices?.[i]?.runningMs;
    return ms === undefined ? end.doneAt : end.doneAt - ms;
  });
  const devices: DeviceRow[] = r.devices.map((d, i) => {
    const s = d.summary;
    const ack = end.devices?.[i];
    return {
      id: i,
      name: given[i].name,
      source: given[i].source,
      protocol: d.protocol.generation === 2 ? "v2" : "v1",
      iterations: s.iterations,
      phases: phaseRows(d.steps).map((p) => ({ ...p, wireBytes: 0 })),
      precopyBytes: s.precopy.bytes,
      stopcopyBytes: s.stopcopy.bytes,
      transactions: s.transactions,
      rawBytes: s.bytes,
      codedBytes: d.trailer.codedBytes,
      stoppedAfterMs: d.stopcopyAt - first,
      deviceStopMs: s.downtimeMs,
      downtimeMs: ends[i] - d.stopcopyAt,
      ...(ack ? { restored: { started: ack.started, transactions: ack.transactions, bytes: ack.bytes } } : {}),
    };
  });
  const sum = (f: (d: SaveDevicesResult["devices"][number]) => number) => r.devices.reduce((a, d) => a + f(d), 0);
  const transactions = sum((d) => d.summary.transactions);
  const raw = sum((d) => d.summary.bytes);
  return {
    source: `${given.length} devices`,
    destination,
    phases: [],
    iterations: Math.max(...r.devices.map((d) => d.summary.iterations)),
    precopyEnd: r.precopyEnd,
    transactions,
    rawBytes: raw,
    wireBytes: r.wireBytes,
    qemuBytes: raw + QEMU_BUFFER_OVERHEAD * transactions,
    zeroBytes: r.stats.zeroBytes,
    dedupBytes: r.stats.dedupBytes,
    chunksByCodec: { ...r.stats.chunksByCodec },
    downtimeMs: Math.max(...ends) - first,
    downtimeEnd: end.end,
    deviceStopMs: Math.max(...r.devices.map((d) => d.stopcopyAt + d.summary.downtimeMs)) - first,
    totalMs: Math.max(...r.devices.map((d) => d.summary.times.total)),
    devices,
  };
}

const END_REASONS: Record<string, string> = {
  converged: "pending state reached the threshold",
  iterations: "iteration limit",
  time: "time budget",
  "stop-signal": "stopped from outside",
  none: "no pre-copy",
};

export function renderReport(rep: MigrationReport, color: boolean): string {
  if (rep.devices) return renderDevicesReport(rep, rep.devices, color);
  const h = (t: string) => paint(color, "bold", t);
  const rows = [["phase", "buffers", "raw", "wire", "ratio", "time", "rate"]];
  for (const p of rep.phases) {
    rows.push([
      p.phase,
      String(p.transactions),
      bytes(p.rawBytes),
      bytes(p.wireBytes),
      p.rawBytes ? ratio(p.rawBytes, p.wireBytes) : "",
      duration(p.ms),
      p.rawBytes ? rate(p.rawBytes, p.ms) : "",
    ]);
  }
  const codecs = Object.entries(rep.chunksByCodec)
    .filter(([, n]) => n > 0)
    .map(([c, n]) => `${c} ${n}`)
    .join(", ");
  const lines = [
    `${h("migration")} ${rep.source} → ${rep.destination}`,
    table(rows),
    `${h("bytes")}     raw ${bytes(rep.rawBytes)} in ${rep.transactions} buffers; on the wire ${bytes(rep.wireBytes)} (${ratio(rep.rawBytes, rep.wireBytes)}); ` +
      `QEMU raw layout ${bytes(rep.qemuBytes)} (ours is ${percent(rep.wireBytes, rep.qemuBytes)} of it)`,
    `${h("savings")}   zero chunks ${bytes(rep.zeroBytes)} (${percent(rep.zeroBytes, rep.rawBytes)}), dedup ${bytes(rep.dedupBytes)} (${percent(rep.dedupBytes, rep.rawBytes)}); chunks: ${codecs || "none"}`,
    `${h("pre-copy")}  ${rep.iterations} iteration${rep.iterations === 1 ? "" : "s"}, ended by ${END_REASONS[rep.precopyEnd] ?? rep.precopyEnd}`,
    `${h("downtime")}  ${duration(rep.downtimeMs)} (stop-and-copy → ${rep.downtimeEnd}; source device stopped ${duration(rep.deviceStopMs)} into it), total ${duration(rep.totalMs)}`,
  ];
  if (rep.restored) {
    lines.push(
      `${h("restored")}  ${rep.restored.transactions} buffers, ${bytes(rep.restored.bytes)}; device ${rep.restored.started ? "RUNNING" : "left for the VMM (--no-start)"}`,
    );
  }
  if (rep.digests) {
    const d = rep.digests;
    const verdict = d.match ? paint(color, "green", "match") : paint(color, "red", "DIFFER");
    lines.push(`${h("digests")}   source ${d.source}, destination ${d.destination}: ${verdict}`);
  }
  return `${lines.join("\n")}\n`;
}

/** The report of devices that migrated together: one row per device, then the set's totals and its one downtime. */
function renderDevicesReport(rep: MigrationReport, devices: DeviceRow[], color: boolean): string {
  const h = (t: string) => paint(color, "bold", t);
  const rows = [
    ["device", "protocol", "iterations", "pre-copy", "stop-and-copy", "coded", "stopped at", "source stop", "downtime"],
  ];
  for (const d of devices) {
    rows.push([
      `${d.id} ${d.source}`,
      d.protocol,
      String(d.iterations),
      bytes(d.precopyBytes),
      bytes(d.stopcopyBytes),
      bytes(d.codedBytes),
      `+${duration(d.stoppedAfterMs)}`,
      duration(d.deviceStopMs),
      duration(d.downtimeMs),
    ]);
  }
  const codecs = Object.entries(rep.chunksByCodec)
    .filter(([, n]) => n > 0)
    .map(([c, n]) => `${c} ${n}`)
    .join(", ");
  const lines = [
    `${h("migration")} ${devices.length} devices together → ${rep.destination}`,
    table(rows),
    `${h("bytes")}     raw ${bytes(rep.rawBytes)} in ${rep.transactions} buffers; on the wire ${bytes(rep.wireBytes)} (${ratio(rep.rawBytes, rep.wireBytes)}); ` +
      `QEMU raw layout ${bytes(rep.qemuBytes)} (ours is ${percent(rep.wireBytes, rep.qemuBytes)} of it)`,
    `${h("savings")}   zero chunks ${bytes(rep.zeroBytes)} (${percent(rep.zeroBytes, rep.rawBytes)}), dedup ${bytes(rep.dedupBytes)} (${percent(rep.dedupBytes, rep.rawBytes)}); chunks: ${codecs || "none"}`,
    `${h("pre-copy")}  all devices at once, ended by ${END_REASONS[rep.precopyEnd] ?? rep.precopyEnd}${rep.precopyEnd === "converged" ? " (the total of all devices)" : ""}`,
    `${h("downtime")}  ${duration(rep.downtimeMs)} for the set (first device stopped → last ${rep.downtimeEnd === "stream written" ? "device's stream written" : `device ${rep.downtimeEnd === "destination RUNNING" ? "RUNNING on the destination" : "confirmed"}`}; every source stopped within ${duration(rep.deviceStopMs)}), total ${duration(rep.totalMs)}`,
  ];
  if (devices.some((d) => d.restored)) {
    const started = devices.filter((d) => d.restored?.started).length;
    lines.push(
      `${h("restored")}  ${devices.map((d) => `${d.id}: ${d.restored ? `${d.restored.transactions} buffers, ${bytes(d.restored.bytes)}` : "?"}`).join("; ")}; ${started === devices.length ? "every device RUNNING" : started === 0 ? "devices left for the VMM (--no-start)" : `${started} of ${devices.length} RUNNING`}`,
    );
  }
  for (const d of devices) {
    if (!d.digests) continue;
    const verdict = d.digests.match ? paint(color, "green", "match") : paint(color, "red", "DIFFER");
    lines.push(
      `${h("digests")}   device ${d.id}: source ${d.digests.source}, destination ${d.digests.destination}: ${verdict}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/** Stream summary for inspect / verify / restore. */
export function renderStats(st: StreamStats, color: boolean, detail: boolean): string {
  const h = (t: string) => paint(color, "bold", t);
  const lines: string[] = [];
  if (st.header && detail) {
    const x = st.header;
    const protection = x.encrypted
      ? "encrypted and authenticated (AES-256-GCM)"
      : x.mac
        ? "authenticated (HMAC-SHA-256)"
        : "not authenticated";
    lines.push(
      `${h("stream")}    format ${x.version}, ${protection}${x.bound ? ", bound to a connection" : ""}, id ${x.streamId}`,
    );
    lines.push(
      `${h("limits")}    frame ${bytes(x.maxFrame)}, chunk ${bytes(x.maxChunk)}, transaction ${bytes(x.maxTransaction)}, dedup window ${bytes(x.dedupWindow)}, devices ${x.maxDevices}`,
    );
  }
  if (detail) {
    for (const d of st.devices) {
      const proto =
        d.protocol === "v2"
          ? `VFIO migration v2${d.restartsAtStopCopy ? " (restarts at STOP_COPY: only stop-copy bytes restore)" : ""}`
          : "VFIO migration v1";
      lines.push(
        `${h(`device ${d.id}`)}  ${d.name ? `"${d.name}"` : "(no name)"}, ${proto}, metadata ${bytes(d.metadataBytes)}, ${d.transactions} transactions, ${d.chunks} chunks`,
      );
      const rows = [["phase", "buffers", "raw", "coded"]];
      for (const p of d.phases) {
        const name =
          p.phase === "precopy" ? `pre-copy #${p.iteration}` : p.phase === "stopcopy" ? "stop-and-copy" : p.phase;
        rows.push([name, String(p.transactions), bytes(p.rawBytes), bytes(p.codedBytes)]);
      }
      if (d.phases.length) lines.push(table(rows));
    }
    const rows = [["codec", "chunks", "raw", "coded"]];
    for (const [c, u] of Object.entries(st.codecs))
      rows.push([c, String(u.chunks), bytes(u.rawBytes), bytes(u.codedBytes)]);
    if (rows.length > 1) lines.push(`${h("codecs")}`, table(rows));
  }
  lines.push(
    `${h("size")}      raw ${bytes(st.rawBytes)} in ${st.transactions} transactions; stream ${bytes(st.wireBytes)} (${ratio(st.rawBytes, st.wireBytes)}); QEMU raw layout ${bytes(st.qemuBytes)} (${ratio(st.qemuBytes, st.wireBytes)})`,
    `${h("savings")}   zero chunks ${bytes(st.zeroBytes)} (${percent(st.zeroBytes, st.rawBytes)}), dedup ${bytes(st.dedupBytes)} (${percent(st.dedupBytes, st.rawBytes)})`,
  );
  return `${lines.join("\n")}\n`;
}
