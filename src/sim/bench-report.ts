// Reports of the scheduler benchmark: per scenario, each scheduler at its best setting (the tuning
// sweep's winner), SLOs-Serve's ratio to the strongest tuned baseline (fcfs, fcfs+sd, sarathi, edf)
// and to the better paper-faithful baseline (vllm-v0, sarathi-paper), the geometric means, the
// admitted-miss and decline rates at SLOs-Serve's capacity; SLOs-Serve's ablations; the full sweep;
// and an SVG of attainment against rate (plain SVG, no library).

import { PAPER_BASELINES, TUNED_BASELINES, type SchedulerName } from '../scheduler/registry.js';
import type { CapacityResult } from './bench-sched.js';

export interface BestRow {
  scenario: string;
  scheduler: SchedulerName;
  label: string;
  capacityRps: number;
  attainment: number;
  admittedMissRate: number;
  declineRate: number;
  result: CapacityResult;
}

/** The best variant of each (scenario, scheduler): highest capacity. Ablations are not candidates. */
export function bestRows(results: readonly CapacityResult[]): BestRow[] {
  const best = new Map<string, BestRow>();
  for (const r of results) {
    if (r.variant.ablation) continue;
    const key = `${r.scenario}\u0000${r.variant.scheduler}`;
    const cur = best.get(key);
    if (!cur || r.capacityRps > cur.capacityRps)
      best.set(key, {
        scenario: r.scenario,
        scheduler: r.variant.scheduler,
        label: r.variant.label,
        capacityRps: r.capacityRps,
        attainment: r.attainment,
        admittedMissRate: r.admittedMissRate,
        declineRate: r.declineRate,
        result: r,
      });
  }
  return [...best.values()];
}

const fmt = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 0.1 ? x.toFixed(2) : x.toFixed(3));
const ratio = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(2)}x` : a > 0 ? 'inf' : '-');
const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

export function geomean(xs: readonly number[]): number {
  const ok = xs.filter((x) => x > 0 && Number.isFinite(x));
  return ok.length === 0 ? NaN : Math.exp(ok.reduce((a, x) => a + Math.log(x), 0) / ok.length);
}

/** SLOs-Serve's capacity over the best of `baselines` per scenario (undefined where either is missing). */
export function ratiosVs(rows: readonly BestRow[], baselines: readonly SchedulerName[]): Map<string, { ratio: number; against: string }> {
  const out = new Map<string, { ratio: number; against: string }>();
  for (const sc of new Set(rows.map((r) => r.scenario))) {
    const slos = rows.find((r) => r.scenario === sc && r.scheduler === 'slos');
    const base = rows.filter((r) => r.scenario === sc && baselines.includes(r.scheduler)).sort((a, b) => b.capacityRps - a.capacityRps)[0];
    if (slos && base && base.capacityRps > 0) out.set(sc, { ratio: slos.capacityRps / base.capacityRps, against: base.label });
  }
  return out;
}

export function markdownReport(results: readonly CapacityResult[], title: string): string {
  const rows = bestRows(results);
  const scenarios = [...new Set(rows.map((r) => r.scenario))];
  const schedulers = [...new Set(rows.map((r) => r.scheduler))];
  const row = (sc: string, s: SchedulerName): BestRow | undefined => rows.find((r) => r.scenario === sc && r.scheduler === s);
  const tuned = ratiosVs(rows, TUNED_BASELINES);
  const paper = ratiosVs(rows, PAPER_BASELINES);
  const out: string[] = [
    `## ${title}`,
    '',
    "Capacity (req/s at >= 90% SLO attainment), each scheduler at its best setting; SLOs-Serve against the strongest tuned baseline (fcfs, fcfs+sd, sarathi, edf, each swept) and the better paper-faithful one (vllm-v0, sarathi-paper); admitted misses and declines at SLOs-Serve's capacity (the model is the clock):",
    '',
  ];
  out.push(`| scenario | ${schedulers.join(' | ')} | slos vs strongest tuned | slos vs paper baselines | slos admitted misses (strict) | slos declined |`);
  out.push(`|---|${schedulers.map(() => '---:').join('|')}|---:|---:|---:|---:|`);
  for (const sc of scenarios) {
    const s = row(sc, 'slos');
    const t = tuned.get(sc);
    const p = paper.get(sc);
    out.push(
      `| ${sc} | ${schedulers.map((x) => (row(sc, x) ? fmt(row(sc, x)!.capacityRps) : '-')).join(' | ')} | ${t ? `${t.ratio.toFixed(2)}x (${t.against})` : '-'} | ${p ? `${p.ratio.toFixed(2)}x (${p.against})` : '-'} | ${s ? pct(s.admittedMissRate) : '-'} | ${s ? pct(s.declineRate) : '-'} |`,
    );
  }
  if (scenarios.length > 1) {
    const g = (m: Map<string, { ratio: number }>): string => {
      const v = geomean([...m.values()].map((x) => x.ratio));
      return Number.isNaN(v) ? '-' : `**${v.toFixed(2)}x**`;
    };
    out.push(`| **geometric mean** | ${schedulers.map(() => '').join(' | ')} | ${g(tuned)} | ${g(paper)} | | |`);
  }
  const abl = results.filter((r) => r.variant.ablation);
  if (abl.length > 0) {
    const labels = [...new Set(abl.map((r) => r.variant.label))];
    out.push(
      '',
      'SLOs-Serve ablations (capacity req/s; ratio to SLOs-Serve as shipped; edf above is admission off):',
      '',
      `| scenario | slos | ${labels.join(' | ')} |`,
      `|---|---:|${labels.map(() => '---:').join('|')}|`,
    );
    for (const sc of scenarios) {
      const s = row(sc, 'slos')?.capacityRps;
      const cells = labels.map((l) => {
        const r = abl.find((x) => x.scenario === sc && x.variant.label === l);
        return r ? `${fmt(r.capacityRps)}${s ? ` (${ratio(r.capacityRps, s)})` : ''}` : '-';
      });
      out.push(`| ${sc} | ${s !== undefined ? fmt(s) : '-'} | ${cells.join(' | ')} |`);
    }
  }
  out.push(
    '',
    'Tuning sweep (every variant; the best per scheduler is bold):',
    '',
    '| scenario | variant | capacity req/s | attainment there | admitted misses | declined |',
    '|---|---|---:|---:|---:|---:|',
  );
  for (const r of results) {
    const isBest = rows.some((b) => b.result === r);
    const label = isBest ? `**${r.variant.label}**` : r.variant.label;
    out.push(`| ${r.scenario} | ${label} | ${fmt(r.capacityRps)} | ${r.attainment.toFixed(3)} | ${pct(r.admittedMissRate)} | ${pct(r.declineRate)} |`);
  }
  return `${out.join('\n')}\n`;
}

const COLORS: Record<string, string> = { slos: '#d62728', fcfs: '#1f77b4', 'fcfs+sd': '#17becf', sarathi: '#2ca02c', edf: '#9467bd', 'vllm-v0': '#8c564b', 'sarathi-paper': '#bcbd22' };

/** Small multiples: one panel per scenario, attainment vs rate (log x) for each scheduler's best. */
export function svgPlot(results: readonly CapacityResult[], title: string): string {
  const rows = bestRows(results);
  const scenarios = [...new Set(rows.map((r) => r.scenario))];
  const cols = Math.min(3, scenarios.length);
  const pw = 300;
  const ph = 200;
  const m = { l: 44, r: 10, t: 26, b: 34 };
  const W = cols * pw;
  const H = Math.ceil(scenarios.length / cols) * ph + 40;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="10">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="8" y="16" font-size="13">${escape(title)}</text>`,
  ];
  scenarios.forEach((sc, i) => {
    const ox = (i % cols) * pw;
    const oy = 24 + Math.floor(i / cols) * ph;
    const mine = rows.filter((r) => r.scenario === sc);
    const rates = mine.flatMap((r) => r.result.points.map((p) => p.rate)).filter((x) => x > 0);
    const lo = Math.log10(Math.min(...rates));
    const hi = Math.max(lo + 0.1, Math.log10(Math.max(...rates)));
    const x = (rate: number): number => ox + m.l + ((Math.log10(rate) - lo) / (hi - lo)) * (pw - m.l - m.r);
    const y = (a: number): number => oy + m.t + (1 - a) * (ph - m.t - m.b);
    parts.push(`<text x="${ox + m.l}" y="${oy + 14}" font-size="11">${escape(sc)}</text>`);
    parts.push(`<line x1="${ox + m.l}" y1="${y(0)}" x2="${ox + pw - m.r}" y2="${y(0)}" stroke="#999"/><line x1="${ox + m.l}" y1="${y(0)}" x2="${ox + m.l}" y2="${y(1)}" stroke="#999"/>`);
    parts.push(
      `<line x1="${ox + m.l}" y1="${y(0.9)}" x2="${ox + pw - m.r}" y2="${y(0.9)}" stroke="#999" stroke-dasharray="3,3"/><text x="${ox + 4}" y="${y(0.9) + 3}">90%</text><text x="${ox + 4}" y="${y(0) + 3}">0</text><text x="${ox + 4}" y="${y(1) + 3}">100%</text>`,
    );
    for (const t of [Math.pow(10, lo), Math.pow(10, hi)]) parts.push(`<text x="${x(t) - 10}" y="${y(0) + 14}">${fmt(t)}</text>`);
    parts.push(`<text x="${ox + pw / 2 - 20}" y="${y(0) + 26}">req/s (log)</text>`);
    for (const r of mine) {
      const pts = r.result.points.filter((p) => p.rate > 0);
      const color = COLORS[r.scheduler] ?? '#333';
      parts.push(`<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${pts.map((p) => `${x(p.rate).toFixed(1)},${y(p.attainment).toFixed(1)}`).join(' ')}"/>`);
    }
  });
  let lx = 8;
  const ly = H - 10;
  for (const s of [...new Set(rows.map((r) => r.scheduler))]) {
    parts.push(`<rect x="${lx}" y="${ly - 8}" width="10" height="10" fill="${COLORS[s] ?? '#333'}"/><text x="${lx + 14}" y="${ly}">${escape(s)}</text>`);
    lx += 90;
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

function escape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
