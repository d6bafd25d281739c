// The migration report (save, demo) and the stream summary (inspect, verify,
// restore): one data shape each, printed as text or as JSON.
import { QEMU_BUFFER_OVERHEAD, type StreamStats } from "../migrate/stats.js";
import type { SaveToResult } from "../migrate/save-to.js";
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
}

/** The report of one saveTo run. */
export function saveReport(r: SaveToResult, source: string, destination: string): MigrationReport {
  const s = r.summary;
  const phases: PhaseRow[] = r.steps.map((st) => ({
    phase: st.phase === "precopy" ? `pre-copy #${st.iteration}` : st.phase === "stopcopy" ? "stop-and-copy" : st.phase,
    transactions: st.transactions,
    rawBytes: st.rawBytes,
    wireBytes: st.wireBytes,
    ms: st.ms,
  }));
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

const END_REASONS: Record<string, string> = {
  converged: "pending state reached the threshold",
  iterations: "iteration limit",
  time: "time budget",
  "stop-signal": "stopped from outside",
  none: "no pre-copy",
};

export function renderReport(rep: MigrationReport, color: boolean): string {
  const h = (t: string) => paint(color, "bold", t);
  const rows = [["phase", "buffers", "raw", "wire", "ratio", "time", "rate"]];
  for (const p of rep.phases) {
    rows.push([p.phase, String(p.transactions), bytes(p.rawBytes), bytes(p.wireBytes), p.rawBytes ? ratio(p.rawBytes, p.wireBytes) : "", duration(p.ms), p.rawBytes ? rate(p.rawBytes, p.ms) : ""]);
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
    lines.push(`${h("restored")}  ${rep.restored.transactions} buffers, ${bytes(rep.restored.bytes)}; device ${rep.restored.started ? "RUNNING" : "left for the VMM (--no-start)"}`);
  }
  if (rep.digests) {
    const d = rep.digests;
    const verdict = d.match ? paint(color, "green", "match") : paint(color, "red", "DIFFER");
    lines.push(`${h("digests")}   source ${d.source}, destination ${d.destination}: ${verdict}`);
  }
  return `${lines.join("\n")}\n`;
}

/** Stream summary for inspect / verify / restore. */
export function renderStats(st: StreamStats, color: boolean, detail: boolean): string {
  const h = (t: string) => paint(color, "bold", t);
  const lines: string[] = [];
  if (st.header && detail) {
    const x = st.header;
    const protection = x.encrypted ? "encrypted and authenticated (AES-256-GCM)" : x.mac ? "authenticated (HMAC-SHA-256)" : "not authenticated";
    lines.push(`${h("stream")}    format ${x.version}, ${protection}${x.bound ? ", bound to a connection" : ""}, id ${x.streamId}`);
    lines.push(
      `${h("limits")}    frame ${bytes(x.maxFrame)}, chunk ${bytes(x.maxChunk)}, transaction ${bytes(x.maxTransaction)}, dedup window ${bytes(x.dedupWindow)}, devices ${x.maxDevices}`,
    );
  }
  if (detail) {
    for (const d of st.devices) {
      const proto = d.protocol === "v2" ? `VFIO migration v2${d.restartsAtStopCopy ? " (restarts at STOP_COPY: only stop-copy bytes restore)" : ""}` : "VFIO migration v1";
      lines.push(`${h(`device ${d.id}`)}  ${d.name ? `"${d.name}"` : "(no name)"}, ${proto}, metadata ${bytes(d.metadataBytes)}, ${d.transactions} transactions, ${d.chunks} chunks`);
      const rows = [["phase", "buffers", "raw", "coded"]];
      for (const p of d.phases) {
        const name = p.phase === "precopy" ? `pre-copy #${p.iteration}` : p.phase === "stopcopy" ? "stop-and-copy" : p.phase;
        rows.push([name, String(p.transactions), bytes(p.rawBytes), bytes(p.codedBytes)]);
      }
      if (d.phases.length) lines.push(table(rows));
    }
    const rows = [["codec", "chunks", "raw", "coded"]];
    for (const [c, u] of Object.entries(st.codecs)) rows.push([c, String(u.chunks), bytes(u.rawBytes), bytes(u.codedBytes)]);
    if (rows.length > 1) lines.push(`${h("codecs")}`, table(rows));
  }
  lines.push(
    `${h("size")}      raw ${bytes(st.rawBytes)} in ${st.transactions} transactions; stream ${bytes(st.wireBytes)} (${ratio(st.rawBytes, st.wireBytes)}); QEMU raw layout ${bytes(st.qemuBytes)} (${ratio(st.qemuBytes, st.wireBytes)})`,
    `${h("savings")}   zero chunks ${bytes(st.zeroBytes)} (${percent(st.zeroBytes, st.rawBytes)}), dedup ${bytes(st.dedupBytes)} (${percent(st.dedupBytes, st.rawBytes)})`,
  );
  return `${lines.join("\n")}\n`;
}
