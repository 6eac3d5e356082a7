// The demo page: several apps sharing one engine (createEngine: the engine runs in a Web Worker,
// this thread only sends requests and draws), their SLOs made visible, and optionally a remote
// replica behind a Router for what the engine's planner would decline. Every 500 ms one
// engine.stats() snapshot feeds the per-app numbers and the charts; window.__demo exposes the
// snapshot and the series drawn from it, for the browser tests.

import { createEngine, SCHEDULER_LABELS, SCHEDULER_NAMES, type Engine, type EngineStats, type LoadProgress, type ModelInfo, type Router, type RouterStats, type SchedulerName } from '../index.js';
import { DEMO_APPS, prefillMs, type DemoSlo } from './apps.js';
import { AppPanel } from './app-panel.js';
import { chartSeries, renderCharts, type ChartSeries, type ChartTargets } from './charts.js';
import { byId, el, fmtBytes, fmtMs } from './dom.js';
import { explainError } from './error-help.js';
import { CachePanel } from './cache-panel.js';
import { ModelPicker } from './model-picker.js';
import { RemotePanel } from './remote-panel.js';
import { Traffic } from './traffic.js';

const TICK_MS = 500;
const CALIBRATION_BUDGET_MS = 3000;
const KV_CACHE_BYTES = 32 * 1024 * 1024;

const status = byId<HTMLParagraphElement>('status');
const errorBox = byId<HTMLDivElement>('error');
const infoList = byId<HTMLElement>('info');
const progress = byId<HTMLProgressElement>('load-progress');
const progressDetail = byId<HTMLElement>('load-detail');
const schedulerSelect = byId<HTMLSelectElement>('scheduler');
// The registry's schedulers (the same names the simulator and the CLI use).
schedulerSelect.replaceChildren(...SCHEDULER_NAMES.map((name) => Object.assign(document.createElement('option'), { value: name, textContent: SCHEDULER_LABELS[name] })));
const schedulerActive = byId<HTMLOutputElement>('scheduler-active');
const calibration = byId<HTMLElement>('calibration');
const appsBox = byId<HTMLElement>('apps');
const burstSize = byId<HTMLInputElement>('burst-size');
const charts: ChartTargets = {
  ttft: byId('chart-ttft'),
  tpot: byId('chart-tpot'),
  attainment: byId('chart-attainment'),
  batch: byId('chart-batch'),
  stepTime: byId('chart-step-time'),
  kv: byId('chart-kv'),
  prefix: byId('chart-prefix'),
  speculation: byId('chart-speculation'),
  placement: byId('chart-placement'),
};
const picker = new ModelPicker();
const cachePanel = new CachePanel(() => picker.endpoint.value.trim().replace(/\/+$/, '') || undefined);

interface DemoState {
  engine: Engine | null;
  traffic: Traffic | null;
  panels: AppPanel[];
  lastStats: EngineStats | null;
  lastSeries: ChartSeries | null;
  /** The Router's stats in the last snapshot (null: no remote replica connected). */
  lastRoutes: RouterStats | null;
  /** Bytes of model files fetched over the network / read from the cache in the last load. */
  downloaded: { network: number; cache: number };
}
const state: DemoState = { engine: null, traffic: null, panels: [], lastStats: null, lastSeries: null, lastRoutes: null, downloaded: { network: 0, cache: 0 } };

function setState(s: 'loading' | 'ready' | 'error', text: string): void {
  status.dataset.state = s;
  status.textContent = text;
}

function showError(error: unknown): void {
  const report = explainError(error, window.isSecureContext);
  setState('error', 'The engine could not start.');
  const field = (id: string): HTMLElement => errorBox.querySelector<HTMLElement>(`[data-testid="${id}"]`)!;
  field('error-name').textContent = report.name;
  field('error-message').textContent = report.message;
  field('error-help').textContent = report.help;
  errorBox.hidden = false;
}

function showInfo(info: ModelInfo): void {
  const rows: [string, string, string][] = [
    ['model', 'Model', `${info.model} (${info.architecture}, vocab ${info.vocabSize}, context ${info.contextLength})`],
    ['adapter', 'Adapter', info.adapter],
    ['features', 'Features', `shader-f16 ${info.features.shaderF16 ? 'yes' : 'no'}, subgroups ${info.features.subgroups ? 'yes' : 'no'}`],
    ['kv', 'KV cache', `${info.kv.pages} pages of ${info.kv.pageSize} tokens, ${fmtBytes(info.kv.bytes)}`],
    ['weights', 'Weights', fmtBytes(info.weightsBytes)],
    ['profile', 'Performance model', info.profileOrigin],
  ];
  infoList.replaceChildren(...rows.flatMap(([id, k, v]) => [el('dt', { text: k }), el('dd', { 'data-testid': `info-${id}`, text: v })]));
  infoList.hidden = false;
  calibration.textContent = `Startup calibration: a decode step takes ${fmtMs(info.decodeStepMs)}, a 512-token prefill ${fmtMs(info.prefillMsPer512)}. Default SLOs: TPOT 2–5× a decode step, TTFT a multiple of the prompt's prefill (e.g. ${fmtMs(prefillMs(info, 300))} for the summarizer's ~300 tokens). Edit them in each panel.`;
}

const progressFiles = new Map<string, { loaded: number; total: number; fromCache: boolean }>();
function onProgress(p: LoadProgress): void {
  if (p.phase === 'download') {
    progressFiles.set(`${p.model ?? 'target'}/${p.file ?? ''}`, { loaded: p.loaded, total: p.total ?? p.loaded, fromCache: !!p.fromCache });
    let loaded = 0;
    let total = 0;
    for (const f of progressFiles.values()) {
      loaded += f.loaded;
      total += f.total;
    }
    progress.max = Math.max(1, total);
    progress.value = loaded;
    progressDetail.textContent = `${p.fromCache ? 'from the cache' : 'downloading'} ${p.file ?? ''}: ${fmtBytes(loaded)} of ${fmtBytes(total)}`;
  } else {
    progressDetail.textContent = p.phase === 'upload' ? 'uploading weights to the GPU…' : `calibrating step times (${p.loaded}/${p.total ?? '?'})…`;
  }
}

// A remote replica connected or disconnected: declare the apps on the Router, send through it.
const remote = new RemotePanel((router: Router | null) => {
  for (const p of state.panels) p.register();
  if (state.engine) state.traffic?.via(router ?? state.engine);
});

async function unloadCurrent(): Promise<void> {
  remote.attach(null);
  state.traffic?.stopAll();
  const old = state.engine;
  state.engine = null;
  state.traffic = null;
  state.panels = [];
  appsBox.replaceChildren();
  if (old) await old.unload().catch(() => {});
}

async function load(): Promise<void> {
  const opts = picker.options();
  if (typeof opts === 'string') {
    setState('error', opts);
    return;
  }
  picker.setBusy(true);
  schedulerSelect.disabled = true;
  errorBox.hidden = true;
  progressFiles.clear();
  progress.removeAttribute('data-state');
  progress.value = 0;
  try {
    await unloadCurrent();
    if (!navigator.gpu) throw Object.assign(new Error('WebGPU is not available in this browser (navigator.gpu is missing)'), { name: 'GpuUnavailableError' });
    setState('loading', 'Loading the model and calibrating (a few seconds)…');
    // Without a profile the engine calibrates on this adapter: a minimal sweep always, the rest in the budget.
    const engine: Engine = await createEngine({ ...opts, calibrationBudgetMs: CALIBRATION_BUDGET_MS, kvCacheBytes: KV_CACHE_BYTES, onProgress });
    const files = [...progressFiles.values()];
    state.downloaded = { network: files.filter((f) => !f.fromCache).reduce((a, f) => a + f.loaded, 0), cache: files.filter((f) => f.fromCache).reduce((a, f) => a + f.loaded, 0) };
    progress.value = progress.max;
    progress.dataset.state = 'done';
    progressDetail.textContent = files.length
      ? `loaded: ${fmtBytes(state.downloaded.network)} downloaded, ${fmtBytes(state.downloaded.cache)} from the cache`
      : `loaded (${fmtBytes(engine.info.weightsBytes)} of weights)`;
    start(engine);
    setState('ready', `Ready on ${engine.info.adapter}.`);
  } catch (e) {
    showError(e);
  } finally {
    picker.setBusy(false);
    void cachePanel.refresh();
  }
}

function start(engine: Engine): void {
  state.engine = engine;
  const traffic = new Traffic(engine, () => syncScheduler());
  state.traffic = traffic;
  showInfo(engine.info);
  const registry = (): Engine | Router => remote.router ?? engine;
  state.panels = DEMO_APPS.map((app) => new AppPanel(app, app.slo(engine.info), registry, traffic, () => Math.max(1, Math.min(200, Math.round(Number(burstSize.value) || 1)))));
  remote.attach(engine);
  appsBox.replaceChildren(...state.panels.map((p) => p.root));
  schedulerSelect.value = engine.info.scheduler;
  // Speculating baselines need a draft model.
  for (const option of schedulerSelect.options) if (option.value === 'fcfs+sd') option.disabled = engine.info.speculation === 'none';
  syncScheduler();
}

/** The scheduler can only change while no request runs: the select is disabled otherwise. */
/** Set while a switch is on its way to the worker: the select stays disabled until it lands. */
let switching = false;
const SCHEDULER_NOTE = byId('scheduler-note').textContent ?? '';

function syncScheduler(): void {
  const engine = state.engine;
  const idle = !!engine && !switching && (state.traffic?.inFlight ?? 0) === 0;
  if (schedulerSelect.disabled === idle) schedulerSelect.disabled = !idle;
  schedulerSelect.dataset.idle = String(idle);
  if (engine) schedulerActive.value = engine.info.scheduler;
}

schedulerSelect.addEventListener('change', () => {
  const engine = state.engine;
  if (!engine) return;
  schedulerSelect.disabled = true;
  switching = true;
  const note = byId('scheduler-note');
  engine
    .setScheduler(schedulerSelect.value as SchedulerName)
    .then(
      () => void (note.textContent = SCHEDULER_NOTE),
      (e: unknown) => {
        schedulerSelect.value = engine.info.scheduler;
        note.textContent = e instanceof Error ? e.message : String(e);
      },
    )
    .finally(() => {
      switching = false;
      syncScheduler();
    });
});

/** One stats snapshot, drawn synchronously: the numbers and charts show exactly `stats`. */
async function sample(): Promise<{ stats: EngineStats; series: ChartSeries } | null> {
  const engine = state.engine;
  if (!engine) return null;
  const router = remote.router;
  const [stats, routes] = await Promise.all([engine.stats(), router ? router.stats() : null]);
  if (engine !== state.engine) return null;
  const slos = new Map<string, DemoSlo>(state.panels.map((p) => [p.app.name, p.slo]));
  const series = chartSeries(stats, slos, routes?.routes ?? null);
  renderCharts(charts, series);
  for (const p of state.panels)
    p.update(
      stats.apps.find((a) => a.app === p.app.name),
      routes ? routes.routes.find((r) => r.app === p.app.name && r.replica !== 'local') : null,
    );
  state.lastStats = stats;
  state.lastSeries = series;
  state.lastRoutes = routes;
  syncScheduler();
  return { stats, series };
}

let ticking = false;
setInterval(() => {
  if (ticking || document.hidden) return;
  ticking = true;
  sample()
    .catch(() => null)
    .finally(() => {
      ticking = false;
    });
}, TICK_MS);

picker.load.addEventListener('click', () => void load());

declare global {
  interface Window {
    __demo?: {
      readonly engine: Engine | null;
      readonly traffic: Traffic | null;
      readonly panels: AppPanel[];
      readonly lastStats: EngineStats | null;
      readonly lastSeries: ChartSeries | null;
      readonly lastRoutes: RouterStats | null;
      readonly downloaded: { network: number; cache: number };
      sample: typeof sample;
    };
  }
}
window.__demo = {
  get engine() {
    return state.engine;
  },
  get traffic() {
    return state.traffic;
  },
  get panels() {
    return state.panels;
  },
  get lastStats() {
    return state.lastStats;
  },
  get lastSeries() {
    return state.lastSeries;
  },
  get lastRoutes() {
    return state.lastRoutes;
  },
  get downloaded() {
    return state.downloaded;
  },
  sample,
};

// ?load=none: wait for the Load button instead of loading the embedded model at once.
if (new URLSearchParams(location.search).get('load') !== 'none') void load();
else setState('loading', 'Pick a model and press Load.');
