// The live charts: chartSeries() turns one engine.stats() snapshot into exactly the numbers the
// charts draw (pure, so a test can recompute it), and renderCharts() draws them as plain SVG
// strings, one innerHTML write per chart, each svg carrying its series in data-series.

import type { EngineStats, RouteStats } from '../index.js';
import type { DemoSlo } from './apps.js';

/** Steps shown in the step charts (the most recent). */
export const STEPS_SHOWN = 120;

export interface AppSeries {
  app: string;
  ttftP50: number | null;
  ttftP90: number | null;
  ttftSloMs: number;
  tpotP50: number | null;
  tpotP90: number | null;
  /** The tightest stage's TPOT. */
  tpotSloMs: number;
  attainment: number | null;
  prefixHitRate: number | null;
  /** Requests completed on the local engine, and on the remote replica (null: none connected). */
  completedLocal: number;
  completedRemote: number | null;
}

export interface StepSeries {
  prefill: number;
  decode: number;
  draft: number;
  ms: number;
  predictedMs: number;
}

export interface ChartSeries {
  apps: AppSeries[];
  steps: StepSeries[];
  tightestTpotMs: number | null;
  kv: { pagesUsed: number; pagesTotal: number; cachedPages: number };
  speculation: { drafted: number; accepted: number };
}

/** `routes`: the Router's per-app, per-replica routes while a remote replica is connected, else null. */
export function chartSeries(stats: EngineStats, slos: ReadonlyMap<string, DemoSlo>, routes: readonly RouteStats[] | null = null): ChartSeries {
  const apps: AppSeries[] = [];
  for (const [app, slo] of slos) {
    const a = stats.apps.find((x) => x.app === app);
    const remoteRoutes = routes === null ? null : routes.filter((r) => r.app === app && r.replica !== 'local');
    const remote = remoteRoutes === null ? null : remoteRoutes.reduce((n, r) => n + r.completed, 0);
    // A remote reply cut mid-way and continued here completes on this engine too: it counts once, as the remote's.
    const continuedHere = remoteRoutes === null ? 0 : remoteRoutes.reduce((n, r) => n + r.continuedAway, 0);
    apps.push({
      app,
      ttftP50: a?.ttftMs.p50 ?? null,
      ttftP90: a?.ttftMs.p90 ?? null,
      ttftSloMs: slo.ttftMs,
      tpotP50: a?.tpotMs.p50 ?? null,
      tpotP90: a?.tpotMs.p90 ?? null,
      tpotSloMs: Math.min(...slo.tpotMs),
      attainment: a?.attainment ?? null,
      prefixHitRate: a?.prefixHitRate ?? null,
      completedLocal: Math.max(0, (a?.completed ?? 0) - continuedHere),
      completedRemote: remote,
    });
  }
  const steps = stats.steps.slice(-STEPS_SHOWN).map((s) => ({ prefill: s.prefillTokens, decode: s.decodeRows, draft: s.draftTokens, ms: s.ms, predictedMs: s.predictedMs }));
  return {
    apps,
    steps,
    tightestTpotMs: apps.length ? Math.min(...apps.map((a) => a.tpotSloMs)) : null,
    kv: { pagesUsed: stats.kv.pagesUsed, pagesTotal: stats.kv.pagesTotal, cachedPages: stats.kv.cachedPages },
    speculation: { drafted: stats.speculation.drafted, accepted: stats.speculation.accepted },
  };
}

const W = 480;
const H = 170;
const PAD = { l: 48, r: 8, t: 10, b: 24 };
const COLORS = {
  local: '#2a9d63',
  remote: '#7c3aed',
  p50: '#3b6fd8',
  p90: '#9db7ee',
  prefill: '#3b6fd8',
  decode: '#2a9d63',
  draft: '#e08a1e',
  ms: '#c2410c',
  predicted: '#6b7280',
  slo: '#b91c1c',
  used: '#3b6fd8',
  cached: '#9db7ee',
};

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
const n = (v: number): string => (Math.round(v * 10) / 10).toString();

function svg(label: string, series: unknown, body: string, h = H): string {
  return `<svg viewBox="0 0 ${W} ${h}" role="img" aria-label="${esc(label)}" data-series="${esc(JSON.stringify(series))}">${body}</svg>`;
}

function yAxis(max: number, unit: string, h = H): string {
  const y0 = h - PAD.b;
  return `<line x1="${PAD.l}" y1="${PAD.t}" x2="${PAD.l}" y2="${y0}" class="axis"/><line x1="${PAD.l}" y1="${y0}" x2="${W - PAD.r}" y2="${y0}" class="axis"/><text x="${PAD.l - 4}" y="${PAD.t + 8}" text-anchor="end">${esc(unit === '%' ? '100%' : `${n(max)}${unit}`)}</text><text x="${PAD.l - 4}" y="${y0}" text-anchor="end">0</text>`;
}

/** Latency over SLO per app: bars of p50 and p90 as a multiple of the SLO, the SLO line at 1×. */
function latencyChart(apps: AppSeries[], kind: 'ttft' | 'tpot'): string {
  const max = 2;
  const y0 = H - PAD.b;
  const scale = (r: number): number => (Math.min(r, max) / max) * (y0 - PAD.t);
  const band = (W - PAD.l - PAD.r) / Math.max(1, apps.length);
  let body = yAxis(max, '×');
  apps.forEach((a, i) => {
    const slo = kind === 'ttft' ? a.ttftSloMs : a.tpotSloMs;
    const vals = kind === 'ttft' ? [a.ttftP50, a.ttftP90] : [a.tpotP50, a.tpotP90];
    const x = PAD.l + i * band + band * 0.15;
    const bw = band * 0.33;
    vals.forEach((v, j) => {
      if (v === null) return;
      const h = scale(v / slo);
      body += `<rect x="${n(x + j * bw)}" y="${n(y0 - h)}" width="${n(bw - 2)}" height="${n(h)}" fill="${j ? COLORS.p90 : COLORS.p50}"><title>${esc(`${a.app} ${kind.toUpperCase()} p${j ? 90 : 50}: ${n(v)} ms (SLO ${slo} ms)`)}</title></rect>`;
    });
    body += `<text x="${n(PAD.l + i * band + band / 2)}" y="${H - 8}" text-anchor="middle">${esc(a.app)}</text>`;
  });
  const ySlo = y0 - scale(1);
  body += `<line x1="${PAD.l}" x2="${W - PAD.r}" y1="${n(ySlo)}" y2="${n(ySlo)}" stroke="${COLORS.slo}" stroke-dasharray="4 3"/><text x="${W - PAD.r}" y="${n(ySlo - 3)}" text-anchor="end" fill="${COLORS.slo}">SLO</text>`;
  return body;
}

function ratioBars(apps: AppSeries[], pick: (a: AppSeries) => number | null, color: string): string {
  const y0 = H - PAD.b;
  const band = (W - PAD.l - PAD.r) / Math.max(1, apps.length);
  let body = yAxis(1, '%');
  apps.forEach((a, i) => {
    const v = pick(a);
    if (v !== null) {
      const h = v * (y0 - PAD.t);
      body += `<rect x="${n(PAD.l + i * band + band * 0.2)}" y="${n(y0 - h)}" width="${n(band * 0.6)}" height="${n(h)}" fill="${color}"><title>${esc(`${a.app}: ${Math.round(v * 100)}%`)}</title></rect>`;
    }
    body += `<text x="${n(PAD.l + i * band + band / 2)}" y="${H - 8}" text-anchor="middle">${esc(a.app)}</text>`;
  });
  return body;
}

/** Completed requests per app: on the local engine and on the remote replica, side by side. */
function placementChart(apps: AppSeries[]): string {
  const max = Math.max(1, ...apps.map((a) => Math.max(a.completedLocal, a.completedRemote ?? 0)));
  const y0 = H - PAD.b;
  const band = (W - PAD.l - PAD.r) / Math.max(1, apps.length);
  let body = yAxis(max, '');
  apps.forEach((a, i) => {
    const bw = band * 0.33;
    const x = PAD.l + i * band + band * 0.15;
    [a.completedLocal, a.completedRemote].forEach((v, j) => {
      if (v === null || v === 0) return;
      const h = (v / max) * (y0 - PAD.t);
      body += `<rect x="${n(x + j * bw)}" y="${n(y0 - h)}" width="${n(bw - 2)}" height="${n(h)}" fill="${j ? COLORS.remote : COLORS.local}"><title>${esc(`${a.app}: ${v} completed ${j ? 'on the remote replica' : 'here'}`)}</title></rect>`;
    });
    body += `<text x="${n(PAD.l + i * band + band / 2)}" y="${H - 8}" text-anchor="middle">${esc(a.app)}</text>`;
  });
  const connected = apps.some((a) => a.completedRemote !== null);
  return (
    body +
    `<text x="${W - PAD.r}" y="${PAD.t + 8}" text-anchor="end">here <tspan fill="${COLORS.local}">■</tspan> remote <tspan fill="${COLORS.remote}">■</tspan>${connected ? '' : ' (none connected)'}</text>`
  );
}

/** Tokens per step, stacked: prefill, decode rows, draft tokens. */
function batchChart(steps: StepSeries[]): string {
  const max = Math.max(1, ...steps.map((s) => s.prefill + s.decode + s.draft));
  const y0 = H - PAD.b;
  const bw = (W - PAD.l - PAD.r) / STEPS_SHOWN;
  let body = yAxis(max, ' tok');
  steps.forEach((s, i) => {
    let y = y0;
    for (const [k, v] of [
      ['prefill', s.prefill],
      ['decode', s.decode],
      ['draft', s.draft],
    ] as const) {
      if (v <= 0) continue;
      const h = (v / max) * (y0 - PAD.t);
      y -= h;
      body += `<rect x="${n(PAD.l + i * bw)}" y="${n(y)}" width="${n(Math.max(1, bw - 0.5))}" height="${n(h)}" fill="${COLORS[k]}"/>`;
    }
  });
  return (
    body +
    `<text x="${PAD.l + 4}" y="${H - 8}">prefill <tspan fill="${COLORS.prefill}">■</tspan> decode <tspan fill="${COLORS.decode}">■</tspan> draft <tspan fill="${COLORS.draft}">■</tspan> (last ${STEPS_SHOWN} steps)</text>`
  );
}

/** Step time (measured and predicted) against the tightest TPOT. */
function stepTimeChart(steps: StepSeries[], tpot: number | null): string {
  const max = Math.max(1, tpot ?? 0, ...steps.map((s) => Math.max(s.ms, s.predictedMs))) * 1.1;
  const y0 = H - PAD.b;
  const bw = (W - PAD.l - PAD.r) / STEPS_SHOWN;
  const y = (v: number): string => n(y0 - (v / max) * (y0 - PAD.t));
  const line = (pick: (s: StepSeries) => number, color: string): string =>
    steps.length ? `<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${steps.map((s, i) => `${n(PAD.l + (i + 0.5) * bw)},${y(pick(s))}`).join(' ')}"/>` : '';
  let body = yAxis(max, ' ms') + line((s) => s.predictedMs, COLORS.predicted) + line((s) => s.ms, COLORS.ms);
  if (tpot !== null)
    body += `<line x1="${PAD.l}" x2="${W - PAD.r}" y1="${y(tpot)}" y2="${y(tpot)}" stroke="${COLORS.slo}" stroke-dasharray="4 3"/><text x="${W - PAD.r}" y="${Number(y(tpot)) - 3}" text-anchor="end" fill="${COLORS.slo}">tightest TPOT ${n(tpot)} ms</text>`;
  return body + `<text x="${PAD.l + 4}" y="${H - 8}">measured <tspan fill="${COLORS.ms}">—</tspan> predicted <tspan fill="${COLORS.predicted}">—</tspan></text>`;
}

function meter(label: string, value: number, total: number, color: string, y: number): string {
  const w = W - PAD.l - PAD.r - 120;
  const f = total > 0 ? Math.min(1, value / total) : 0;
  return `<text x="${PAD.l}" y="${y + 13}">${esc(label)}</text><rect x="${PAD.l + 110}" y="${y}" width="${w}" height="16" class="track"/><rect x="${PAD.l + 110}" y="${y}" width="${n(w * f)}" height="16" fill="${color}"/><text x="${W - PAD.r}" y="${y + 13}" text-anchor="end">${value} / ${total}</text>`;
}

export interface ChartTargets {
  ttft: HTMLElement;
  tpot: HTMLElement;
  attainment: HTMLElement;
  batch: HTMLElement;
  stepTime: HTMLElement;
  kv: HTMLElement;
  prefix: HTMLElement;
  speculation: HTMLElement;
  placement: HTMLElement;
}

export function renderCharts(t: ChartTargets, s: ChartSeries): void {
  t.ttft.innerHTML = svg('TTFT p50 and p90 per app, as a multiple of its SLO', s.apps, latencyChart(s.apps, 'ttft'));
  t.tpot.innerHTML = svg('Time per output token p50 and p90 per app, as a multiple of its SLO', s.apps, latencyChart(s.apps, 'tpot'));
  t.attainment.innerHTML = svg(
    'SLO attainment per app',
    s.apps,
    ratioBars(s.apps, (a) => a.attainment, COLORS.decode),
  );
  t.batch.innerHTML = svg('Batch composition per engine step', s.steps, batchChart(s.steps));
  t.stepTime.innerHTML = svg('Step time against the tightest TPOT', { steps: s.steps, tightestTpotMs: s.tightestTpotMs }, stepTimeChart(s.steps, s.tightestTpotMs));
  t.kv.innerHTML = svg(
    'KV cache occupancy',
    s.kv,
    meter('pages used', s.kv.pagesUsed, s.kv.pagesTotal, COLORS.used, 20) + meter('cached pages', s.kv.cachedPages, s.kv.pagesTotal, COLORS.cached, 50),
    80,
  );
  t.prefix.innerHTML = svg(
    'Prefix-cache hit rate per app',
    s.apps,
    ratioBars(s.apps, (a) => a.prefixHitRate, COLORS.cached),
  );
  t.placement.innerHTML = svg(
    'Completed requests per app, on this engine and on the remote replica',
    s.apps.map((a) => ({ app: a.app, local: a.completedLocal, remote: a.completedRemote })),
    placementChart(s.apps),
  );
  t.speculation.innerHTML = svg('Speculation: draft tokens accepted of drafted', s.speculation, meter('accepted', s.speculation.accepted, s.speculation.drafted, COLORS.draft, 20), 50);
}
