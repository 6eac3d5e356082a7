// One app's panel: its SLO form (re-registers the app with engine.app, or router.app, on change), a
// prompt and Send (streamed output, appended once per animation frame), per-app numbers from
// engine.stats() and the Router's routes, and the load generator's rate and Burst controls.

import type { AppHandle, AppSloInput, AppStats, RouteStats } from '../index.js';
import { sloInput, type DemoApp, type DemoSlo } from './apps.js';
import { el, fmtMs, fmtPct, frameBatcher } from './dom.js';
import type { Traffic } from './traffic.js';

export class AppPanel {
  readonly root: HTMLElement;
  slo: DemoSlo;
  private readonly ttft: HTMLInputElement;
  private readonly tpot: HTMLInputElement[];
  private readonly prompt: HTMLTextAreaElement;
  private readonly output: HTMLElement;
  private readonly sloMsg: HTMLElement;
  private readonly nums = new Map<string, HTMLElement>();
  private pending = '';
  private readonly flush = frameBatcher(() => {
    this.output.textContent += this.pending;
    this.pending = '';
  });

  constructor(
    readonly app: DemoApp,
    defaults: DemoSlo,
    /** Where the app is declared: the engine, or the Router in front of it (which declares it on the engine too). */
    private readonly registry: () => { app(name: string, slo: AppSloInput): AppHandle },
    private readonly traffic: Traffic,
    /** The load generator's burst size (the page's "Burst size" field). */
    private readonly burstSize: () => number,
  ) {
    this.slo = { ttftMs: defaults.ttftMs, tpotMs: [...defaults.tpotMs] };
    const id = (s: string): string => `${app.name}-${s}`;
    const numberInput = (name: string, value: number): HTMLInputElement => el('input', { id: id(name), type: 'number', min: '1', step: '1', value: String(value), inputmode: 'numeric' });
    this.ttft = numberInput('ttft', this.slo.ttftMs);
    const tpotNames = app.stages ? app.stages.map((s) => `${s} TPOT (ms)`) : ['TPOT (ms)'];
    this.tpot = tpotNames.map((_, i) => numberInput(`tpot${i}`, this.slo.tpotMs[i]!));
    this.sloMsg = el('p', { class: 'slo-msg', role: 'status', 'data-testid': id('slo-msg') });
    const sloFields = el(
      'fieldset',
      { class: 'slo' },
      el('legend', { text: 'SLO' }),
      el('label', { for: id('ttft') }, 'TTFT (ms)'),
      this.ttft,
      ...tpotNames.flatMap((name, i) => [el('label', { for: id(`tpot${i}`) }, name), this.tpot[i]!]),
    );
    for (const input of [this.ttft, ...this.tpot]) input.addEventListener('change', () => this.applySlo());

    this.prompt = el('textarea', { id: id('prompt'), rows: '2' });
    this.prompt.value = app.prompt;
    const send = el('button', { type: 'button', 'data-testid': id('send') }, 'Send');
    this.output = el('pre', { class: 'output', 'data-testid': id('output'), 'aria-label': `${app.title} output` });
    send.addEventListener('click', () => void this.send());

    const table = el('table', { class: 'nums' });
    const row = (key: string, label: string): void => {
      const td = el('td', { 'data-testid': id(`num-${key}`), text: '–' });
      this.nums.set(key, td);
      table.append(el('tr', {}, el('th', { scope: 'row', text: label }), td));
    };
    row('ttft', 'TTFT p50 / p90');
    row('tpot', 'TPOT p50 / p90');
    row('attainment', 'SLO attainment');
    row('admitted', 'admitted that missed');
    row('done', 'completed / submitted');
    row('declined', 'declined (SloError)');
    row('besteffort', 'best-effort');
    row('prefix', 'prefix-cache hit rate');
    row('client', 'client: sent / ok / declined / failed');
    row('remote', 'remote replica: served / met SLO');

    const rate = el('input', { id: id('rate'), type: 'number', min: '0', step: '0.5', value: '0' });
    rate.addEventListener('change', () => this.traffic.setRate(app, Number(rate.value)));
    const burst = el('button', { type: 'button', 'data-testid': id('burst') }, 'Burst');
    burst.addEventListener('click', () => void this.traffic.burst(app, this.burstSize()));
    const load = el('div', { class: 'load' }, el('label', { for: id('rate') }, 'Poisson rate (req/s)'), rate, burst);

    const headingId = id('heading');
    this.root = el(
      'section',
      { class: 'app', 'aria-labelledby': headingId, 'data-app': app.name },
      el('h3', { id: headingId, text: app.title }),
      el('p', { class: 'blurb', text: app.blurb }),
      sloFields,
      this.sloMsg,
      el('label', { for: id('prompt') }, 'Prompt'),
      this.prompt,
      el('div', { class: 'actions' }, send),
      this.output,
      table,
      load,
    );
    this.register();
  }

  /** Declare the app with its current SLO (again, after a Router is put in front of the engine). */
  register(): void {
    this.registry().app(this.app.name, sloInput(this.app, this.slo));
  }

  private applySlo(): void {
    const next: DemoSlo = { ttftMs: Number(this.ttft.value), tpotMs: this.tpot.map((t) => Number(t.value)) };
    const previous = this.slo;
    const refuse = (e: unknown): void => {
      // The engine keeps the app as it was: say why, and put the form back.
      this.sloMsg.textContent = e instanceof Error ? e.message : String(e);
      this.ttft.value = String(previous.ttftMs);
      this.tpot.forEach((t, i) => (t.value = String(previous.tpotMs[i])));
      this.registry().app(this.app.name, sloInput(this.app, previous));
    };
    try {
      // Shape errors throw here; whether this model can meet it is the engine's answer (`ready`).
      const handle = this.registry().app(this.app.name, sloInput(this.app, next));
      handle.ready.then(() => {
        this.slo = next;
        this.sloMsg.textContent = '';
      }, refuse);
    } catch (e) {
      refuse(e);
    }
  }

  send(): Promise<void> {
    this.output.textContent = '';
    this.pending = '';
    return this.traffic.stream(
      this.app,
      this.prompt.value,
      (t) => {
        this.pending += t;
        this.flush();
      },
      (e) => {
        this.pending += `\n[${e.name}: ${e.message}]`;
        this.flush();
      },
    );
  }

  /** The per-app numbers from one stats snapshot, the client-side counts, and the app's remote route (none: no remote connected). */
  update(a: AppStats | undefined, remote: RouteStats | null | undefined): void {
    const set = (k: string, v: string): void => {
      const e = this.nums.get(k)!;
      if (e.textContent !== v) e.textContent = v;
    };
    const c = this.traffic.count(this.app.name);
    set('client', `${c.sent} / ${c.ok} / ${c.declined} / ${c.failed}`);
    set('remote', remote === null ? '– (not connected)' : `${remote?.served ?? 0} / ${remote?.met ?? 0}`);
    if (!a) return;
    set('ttft', `${fmtMs(a.ttftMs.p50)} / ${fmtMs(a.ttftMs.p90)}`);
    set('tpot', `${fmtMs(a.tpotMs.p50)} / ${fmtMs(a.tpotMs.p90)}`);
    set('attainment', fmtPct(a.attainment));
    set('admitted', `${a.admittedMissed} of ${a.admitted}`);
    set('done', `${a.completed} / ${a.submitted}`);
    set('declined', String(a.declined));
    set('besteffort', String(a.bestEffort));
    set('prefix', fmtPct(a.prefixHitRate));
  }
}
