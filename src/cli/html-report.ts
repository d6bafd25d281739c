// `inspect --html`: one self-contained HTML page (inline CSS and SVG, no
// scripts, nothing fetched) that draws a stream: each device's phases and
// pre-copy iterations along the stream, the bytes each codec carried along it
// and in total, and how pre-copy converged. Every text from the stream (device
// names) is escaped; the page is safe to open whatever the stream held.
import type { StreamStats } from "../migrate/stats.js";
import type { PhaseSpan, Timeline } from "./timeline.js";
import { bytes, percent, ratio } from "./units.js";

/** One colour per phase kind and per codec, used by every chart and legend. */
const PHASE_COLOURS: Record<string, string> = {
  setup: "#9e9e9e",
  precopy: "#1f77b4",
  stopcopy: "#d62728",
  config: "#9467bd",
  end: "#616161",
};
const CODEC_COLOURS: Record<string, string> = {
  raw: "#8c8c8c",
  zero: "#c7c7c7",
  lz4: "#2ca02c",
  zstd: "#6a3d9a",
  "dedup-ref": "#ff7f0e",
};
const WIDTH = 960;
const LEFT = 150;
const PLOT = WIDTH - LEFT - 20;

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const label = (s: PhaseSpan) =>
  s.phase === "precopy" ? `pre-copy #${s.iteration}` : s.phase === "stopcopy" ? "stop-and-copy" : s.phase;
const codecColour = (c: string) => CODEC_COLOURS[c] ?? "#17becf";

/** Pre-copy iterations shade from dark to light so that neighbours differ. */
function phaseColour(s: PhaseSpan): string {
  if (s.phase !== "precopy") return PHASE_COLOURS[s.phase] ?? "#17becf";
  return ["#1f77b4", "#4a98c9", "#2b5d8a", "#6baed6"][s.iteration % 4];
}

/** Ticks of a stream-position axis (bytes), at x = LEFT + PLOT * pos / length. */
function positionAxis(length: number, y: number): string {
  const out = [`<line x1="${LEFT}" y1="${y}" x2="${LEFT + PLOT}" y2="${y}" class="axis"/>`];
  for (let i = 0; i <= 4; i++) {
    const x = LEFT + (PLOT * i) / 4;
    out.push(
      `<line x1="${x}" y1="${y}" x2="${x}" y2="${y + 4}" class="axis"/><text x="${x}" y="${y + 16}" class="tick" text-anchor="middle">${bytes(Math.round((length * i) / 4))}</text>`,
    );
  }
  return out.join("");
}

/** Each device's phases as bars along the stream. */
function phaseChart(t: Timeline): string {
  const rowH = 34;
  const h = 30 + rowH * Math.max(1, t.devices.length) + 24;
  const x = (pos: number) => LEFT + (PLOT * pos) / Math.max(1, t.length);
  const rows = t.devices.map((d, i) => {
    const y = 20 + i * rowH;
    const bars = t.spans
      .filter((s) => s.device === d.id && s.end > s.start)
      .map((s) => {
        const w = Math.max(1, x(s.end) - x(s.start));
        const text =
          w > 28
            ? `<text x="${x(s.start) + w / 2}" y="${y + 18}" class="in" text-anchor="middle">${s.phase === "precopy" ? `#${s.iteration}` : s.phase === "stopcopy" ? "stop" : ""}</text>`
            : "";
        return (
          `<rect class="phase ${s.phase}" x="${x(s.start).toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="26" fill="${phaseColour(s)}">` +
          `<title>${esc(label(s))}: ${s.transactions} transactions, ${bytes(s.rawBytes)} raw, ${bytes(s.codedBytes)} coded, stream bytes ${s.start}–${s.end}</title></rect>${text}`
        );
      });
    const name = d.name || `device ${d.id}`;
    const short = name.length > 20 ? `${name.slice(0, 19)}…` : name;
    return `<text x="${LEFT - 8}" y="${y + 18}" text-anchor="end" class="name">${esc(short)}<title>${esc(name)}</title></text>${bars.join("")}`;
  });
  return svg(h, `${rows.join("")}${positionAxis(t.length, h - 24)}`, "phases along the stream");
}

/** Raw bytes per codec in equal slices of the stream, stacked. */
function codecFlowChart(t: Timeline): string {
  const bins = 96;
  const h = 200;
  const plotH = h - 44;
  const codecs = [...new Set(t.chunks.map((c) => c.codec))];
  const sums = Array.from({ length: bins }, () => new Map<string, number>());
  for (const c of t.chunks) {
    const b = Math.min(bins - 1, Math.floor((c.offset / Math.max(1, t.length)) * bins));
    sums[b].set(c.codec, (sums[b].get(c.codec) ?? 0) + c.rawLength);
  }
  const top = Math.max(1, ...sums.map((m) => [...m.values()].reduce((a, b) => a + b, 0)));
  const bw = PLOT / bins;
  const bars = sums.flatMap((m, b) => {
    let y = 10 + plotH;
    return codecs
      .filter((c) => m.has(c))
      .map((c) => {
        const hh = (plotH * (m.get(c) ?? 0)) / top;
        y -= hh;
        return `<rect class="flow ${esc(c)}" x="${(LEFT + b * bw).toFixed(1)}" y="${y.toFixed(1)}" width="${(bw - 0.5).toFixed(1)}" height="${hh.toFixed(1)}" fill="${codecColour(c)}"><title>${esc(c)}: ${bytes(m.get(c) ?? 0)} raw</title></rect>`;
      });
  });
  const yLabel = `<text x="${LEFT - 8}" y="18" text-anchor="end" class="tick">${bytes(top)}</text><text x="${LEFT - 8}" y="${10 + plotH}" text-anchor="end" class="tick">0</text>`;
  return svg(
    h,
    `${yLabel}${bars.join("")}${positionAxis(t.length, 10 + plotH)}`,
    `raw bytes per codec in each 1/${bins} of the stream`,
  );
}

/** Per codec: raw bytes in and coded bytes out. */
function codecTotalsChart(st: StreamStats): string {
  const entries = Object.entries(st.codecs);
  const rowH = 28;
  const h = 12 + rowH * Math.max(1, entries.length);
  const top = Math.max(1, ...entries.map(([, u]) => u.rawBytes));
  const rows = entries.map(([c, u], i) => {
    const y = 8 + i * rowH;
    const wr = (PLOT * 0.6 * u.rawBytes) / top;
    const wc = (PLOT * 0.6 * u.codedBytes) / top;
    return (
      `<text x="${LEFT - 8}" y="${y + 15}" text-anchor="end" class="name">${esc(c)}</text>` +
      `<rect class="total raw-in" x="${LEFT}" y="${y}" width="${wr.toFixed(1)}" height="20" fill="${codecColour(c)}" opacity="0.35"/>` +
      `<rect class="total coded ${esc(c)}" x="${LEFT}" y="${y + 5}" width="${wc.toFixed(1)}" height="10" fill="${codecColour(c)}"/>` +
      `<text x="${LEFT + Math.max(wr, wc) + 6}" y="${y + 15}" class="tick">${u.chunks} chunks, ${bytes(u.rawBytes)} → ${bytes(u.codedBytes)}</text>`
    );
  });
  return svg(h, rows.join(""), "bytes per codec (light: raw in, dark: coded out)");
}

/** Raw and coded bytes of each pre-copy iteration and of stop-and-copy, on a log scale. */
function convergenceChart(t: Timeline): string {
  const groups = new Map<string, { label: string; raw: number; coded: number; phase: string }>();
  for (const s of t.spans) {
    if (s.phase !== "precopy" && s.phase !== "stopcopy") continue;
    const key = `${s.phase}:${s.iteration}`;
    const g = groups.get(key) ?? {
      label: s.phase === "precopy" ? `#${s.iteration}` : "stop",
      raw: 0,
      coded: 0,
      phase: s.phase,
    };
    g.raw += s.rawBytes;
    g.coded += s.codedBytes;
    groups.set(key, g);
  }
  const list = [...groups.values()];
  const h = 230;
  const plotH = h - 60;
  const top = Math.max(2, ...list.map((g) => g.raw));
  const y = (v: number) => 10 + plotH - (plotH * Math.log2(1 + v)) / Math.log2(1 + top);
  const bw = Math.min(60, PLOT / Math.max(1, list.length));
  const bars = list.map((g, i) => {
    const x = LEFT + i * bw;
    const colour = g.phase === "stopcopy" ? PHASE_COLOURS.stopcopy : PHASE_COLOURS.precopy;
    return (
      `<rect class="conv raw-in" x="${x.toFixed(1)}" y="${y(g.raw).toFixed(1)}" width="${(bw * 0.8).toFixed(1)}" height="${(10 + plotH - y(g.raw)).toFixed(1)}" fill="${colour}" opacity="0.35"><title>${esc(g.label)}: ${bytes(g.raw)} raw</title></rect>` +
      `<rect class="conv coded" x="${(x + bw * 0.2).toFixed(1)}" y="${y(g.coded).toFixed(1)}" width="${(bw * 0.4).toFixed(1)}" height="${(10 + plotH - y(g.coded)).toFixed(1)}" fill="${colour}"><title>${esc(g.label)}: ${bytes(g.coded)} coded</title></rect>` +
      `<text x="${(x + bw * 0.4).toFixed(1)}" y="${h - 32}" class="tick" text-anchor="middle">${esc(g.label)}</text>`
    );
  });
  const ticks = [1, 1 << 10, 1 << 20, 1 << 30]
    .filter((v) => v <= top)
    .map((v) => `<text x="${LEFT - 8}" y="${y(v) + 4}" text-anchor="end" class="tick">${bytes(Math.round(v))}</text>`);
  return svg(
    h,
    `${ticks.join("")}${bars.join("")}<line x1="${LEFT}" y1="${10 + plotH}" x2="${LEFT + PLOT}" y2="${10 + plotH}" class="axis"/>`,
    "pre-copy convergence: bytes per iteration (log scale; light: raw, dark: coded)",
  );
}

function svg(height: number, body: string, title: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="${esc(title)}">${body}</svg>`;
}

function legend(items: [string, string][]): string {
  return `<p class="legend">${items.map(([name, colour]) => `<span><i style="background:${colour}"></i>${esc(name)}</span>`).join("")}</p>`;
}

export interface ReportInput {
  /** What was read (a file name, or "stdin"). */
  source: string;
  stats: StreamStats;
  timeline: Timeline;
  /** The error that stopped reading, for a damaged stream. */
  error?: string;
}

/** The whole page. */
export function renderHtmlReport({ source, stats: st, timeline: t, error }: ReportInput): string {
  const iterations = new Set(t.spans.filter((s) => s.phase === "precopy").map((s) => s.iteration)).size;
  const facts: [string, string][] = [
    [
      "stream",
      st.header
        ? `format ${st.header.version}, ${st.header.mac ? "authenticated (HMAC-SHA-256)" : "not authenticated"}, id ${st.header.streamId}`
        : "no header",
    ],
    ["devices", `${st.devices.length}: ${st.devices.map((d) => d.name || `device ${d.id}`).join(", ")}`],
    [
      "size",
      `raw ${bytes(st.rawBytes)} in ${st.transactions} transactions; stream ${bytes(st.wireBytes)} (${ratio(st.rawBytes, st.wireBytes)}); QEMU raw layout ${bytes(st.qemuBytes)}`,
    ],
    [
      "savings",
      `zero chunks ${bytes(st.zeroBytes)} (${percent(st.zeroBytes, st.rawBytes)}), dedup ${bytes(st.dedupBytes)} (${percent(st.dedupBytes, st.rawBytes)})`,
    ],
    ["pre-copy", `${iterations} iteration${iterations === 1 ? "" : "s"}`],
    [
      "verified",
      error
        ? `no — ${error}`
        : st.complete
          ? "every checksum, sequence number and trailer"
          : "no: the stream ends early",
    ],
  ];
  const phaseKinds = [...new Set(t.spans.map((s) => s.phase))].map(
    (p) =>
      [p === "precopy" ? "pre-copy" : p === "stopcopy" ? "stop-and-copy" : p, PHASE_COLOURS[p] ?? "#17becf"] as [
        string,
        string,
      ],
  );
  const codecKinds = Object.keys(st.codecs).map((c) => [c, codecColour(c)] as [string, string]);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>migstream report: ${esc(source)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; background: #fff; max-width: ${WIDTH + 20}px; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin: 28px 0 6px; }
table { border-collapse: collapse; } td { padding: 2px 12px 2px 0; vertical-align: top; } td:first-child { font-weight: 600; }
.note { color: #555; font-size: 12px; } .error { color: #b00020; font-weight: 600; }
.legend span { margin-right: 14px; font-size: 12px; } .legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -1px; }
svg text { font: 11px system-ui, sans-serif; fill: #333; } svg text.in { fill: #fff; font-weight: 600; } svg text.name { font-size: 12px; }
svg .axis { stroke: #888; stroke-width: 1; } svg rect { shape-rendering: crispEdges; }
</style></head><body>
<h1>migstream report: ${esc(source)}</h1>
${error ? `<p class="error">The stream is damaged: ${esc(error)}. What was read before the damage is shown.</p>` : ""}
<table>${facts.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join("")}</table>
<h2>Phases and iterations along the stream</h2>
<p class="note">The stream carries no clock: position in the stream (bytes, in the order they were written) stands for time.</p>
${legend(phaseKinds)}
${phaseChart(t)}
<h2>Bytes per codec along the stream</h2>
<p class="note">Raw bytes carried by each codec in each 1/96 of the stream: a taller bar is more data per stream byte.</p>
${legend(codecKinds)}
${codecFlowChart(t)}
<h2>Bytes per codec</h2>
${codecTotalsChart(st)}
<h2>Pre-copy convergence</h2>
<p class="note">Each pass resends what the running device changed during the previous one; the last, stop-and-copy, is sent while the device is stopped.</p>
${convergenceChart(t)}
</body></html>
`;
}
