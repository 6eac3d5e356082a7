// Markdown tables and the closing summary of bench/run-all.ts (npm run bench).

import type { AttentionRow } from './attention.js';
import type { ForwardRecord } from './forward.js';
import type { Ceilings, KernelRow } from './kernels.js';
import type { StepOverheadResult } from './step-overhead.js';

export interface ForwardEntry {
  shape: string;
  dtype: string;
  record?: ForwardRecord;
  error?: string;
}

export interface RunAllRecord {
  date: string;
  adapter: { description: string; vendor: string; architecture: string; device: string };
  adapterText: string;
  software: boolean;
  options: Record<string, unknown>;
  ceilings: Ceilings | null;
  kernels: KernelRow[];
  attention: AttentionRow[];
  forward: ForwardEntry[];
  stepOverhead: StepOverheadResult | { error: string } | null;
  gpuErrors: string[];
  sectionSeconds: Record<string, number>;
  wallSeconds: number;
}

const f = (v: number | undefined, d = 1): string => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(d));
const pct = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '-' : `${(100 * v).toFixed(v < 0.1 ? 1 : 0)}%`);

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Forward decode figures at B=1 against the weight-streaming roofline (bytes of the measured layers). */
export function forwardSummary(r: ForwardRecord, bandwidthGBps: number): { b1: number; roofline: number; ofRoofline: number; fullModelB1: number; fullRooflineTokS: number } {
  const d1 = r.decode.find((d) => d.batch === 1);
  const bytes = r.weights.decodeBytesPerStep;
  const roofline = (bandwidthGBps * 1e9) / bytes;
  return {
    b1: d1?.tokensPerS ?? NaN,
    roofline,
    ofRoofline: d1 ? bytes / d1.stepMs / 1e6 / bandwidthGBps : NaN,
    fullModelB1: d1?.fullModelTokensPerS ?? NaN,
    fullRooflineTokS: (bandwidthGBps * 1e9) / r.weights.decodeBytesPerStepAllLayers,
  };
}

export function markdown(rec: RunAllRecord): string {
  const out: string[] = [];
  out.push(`# npm run bench: ${rec.adapterText}`, '');
  out.push(
    `${rec.date}; ${rec.software ? 'software adapter: small sizes, few layers (not results)' : 'full sizes'}; ${f(rec.wallSeconds, 0)} s in all. Options: \`${JSON.stringify(rec.options)}\``,
    '',
  );
  const c = rec.ceilings;
  if (c) {
    out.push('## Ceilings (measured in this run)', '');
    out.push(
      table(
        ['ceiling', 'value'],
        [
          ['buffer copy (bytes read)', `${f(c.copyGBps)} GB/s`],
          ['vec4 stream read', `${f(c.streamGBps)} GB/s`],
          ['bandwidth ceiling = max', `${f(c.bandwidthGBps)} GB/s`],
          ['f32 fma', `${f(c.fmaGflops)} GFLOP/s`],
        ],
      ),
      '',
    );
  }
  if (rec.kernels.length) {
    out.push('## Matmul kernels', '');
    out.push(
      table(
        ['kernel', 'shape (MxNxK)', 'ms', 'GB/s', 'GFLOP/s', 'of ceiling'],
        rec.kernels.map((r) =>
          r.error ? [r.name, r.shape, '-', '-', '-', r.error] : [r.name, r.shape, f(r.ms, 3), f(r.gbps), f(r.gflops), r.ofCeiling === undefined ? '' : `${pct(r.ofCeiling)} of ${r.ceiling}`],
        ),
      ),
      '',
    );
  }
  if (rec.attention.length) {
    out.push('## Attention decode (one layer, f32 paged KV, one new token per sequence)', '');
    out.push('KV bytes = B x context x kv heads x head dim x 4 B x 2 (K and V), counted once per KV head.', '');
    out.push(
      table(
        ['shape', 'heads (q/kv x d)', 'form', 'B', 'context', 'KV MiB', 'ms', 'GB/s', 'of bandwidth'],
        rec.attention.map((r) => [
          r.shape,
          `${r.heads}/${r.kvHeads} x ${r.headDim}`,
          r.form,
          String(r.batch),
          String(r.context),
          f(r.kvBytes / 2 ** 20, 0),
          f(r.ms, 3),
          f(r.gbps),
          r.error ?? pct(r.ofBandwidth),
        ]),
      ),
      '',
    );
  }
  if (rec.forward.length) {
    out.push('## Forward step (synthetic weights, real shapes)', '');
    const bw = c?.bandwidthGBps ?? NaN;
    const rows = rec.forward.map((e) => {
      if (!e.record) return [e.shape, e.dtype, '-', '-', '-', '-', '-', '-', '-', e.error ?? ''];
      const r = e.record;
      const s = forwardSummary(r, bw);
      const dec = (B: number): string => {
        const d = r.decode.find((x) => x.batch === B);
        return d ? `${f(d.tokensPerS)} (x${f(d.vsBatch1, 2)} step)` : '-';
      };
      return [
        e.shape,
        e.dtype,
        `${r.layers}/${r.totalLayers}`,
        f(s.b1),
        f(s.roofline),
        pct(s.ofRoofline),
        dec(8),
        dec(32),
        f(r.prefill.tokensPerS),
        r.layers < r.totalLayers ? `est. all layers: decode B=1 ${f(s.fullModelB1)} tok/s, prefill ${f(r.prefill.fullModelTokensPerS)} tok/s` : '',
      ];
    });
    out.push(table(['shape', 'weights', 'layers', 'decode B=1 tok/s', 'roofline tok/s', 'of roofline', 'B=8 tok/s (step vs B=1)', 'B=32 tok/s (step vs B=1)', `prefill tok/s`, 'note'], rows), '');
    out.push('Roofline: bandwidth ceiling / weight bytes streamed per decode step (the layers run + LM head). Prefill: one chunk (see the JSON for its size).', '');
  }
  const so = rec.stepOverhead;
  if (so) {
    out.push('## Engine step CPU overhead', '');
    if ('error' in so) out.push(`not run: ${so.error}`, '');
    else {
      const o = so.options;
      out.push(
        `${o.running} running decode requests, ${o.shape} shapes (${o.layers}/${o.totalLayers} layers, vocab ${o.vocabSize}, ${o.dtype}), FCFS, ${o.steps} timed steps after ${o.warmupSteps} warm-up decode steps.`,
        '',
      );
      const m = so.median;
      const mean = so.mean;
      out.push(
        table(
          ['part', 'median ms', 'mean ms'],
          (['planMs', 'recordMs', 'submitMs', 'queueSubmitMs', 'otherMs', 'cpuMs', 'waitMs', 'stepMs'] as const).map((k) => [k.replace(/Ms$/, ''), f(m[k], 3), f(mean[k], 3)]),
        ),
        '',
      );
      const p = so.perStep;
      out.push(
        table(
          ['per step', 'count'],
          Object.entries(p).map(([k, v]) => [k, f(v, 2)]),
        ),
        '',
      );
      out.push(
        'plan = scheduler.step; record = forward entry to submit; submit = runtime submit (queueSubmit = queue.submit alone); other = engine bookkeeping; cpu = step - wait; wait = GPU + readback.',
        '',
      );
    }
  }
  if (rec.gpuErrors.length) out.push('## GPU errors', '', ...rec.gpuErrors.map((e) => `- ${e}`), '');
  return `${out.join('\n')}\n`;
}

/** The short table printed last. */
export function summary(rec: RunAllRecord): string {
  const lines: string[] = [];
  const row = (what: string, value: string): void => void lines.push(`${what.padEnd(44)} ${value}`);
  const c = rec.ceilings;
  if (c) row('bandwidth / fma ceiling', `${f(c.bandwidthGBps)} GB/s, ${f(c.fmaGflops)} GFLOP/s`);
  for (const k of rec.kernels) {
    if (!k.ceiling && !k.error) continue; // the ceilings: the first line
    row(`${k.name} ${k.shape}`, k.error ? k.error.slice(0, 80) : `${f(k.ms, 3)} ms, ${k.ceiling === 'fma' ? `${f(k.gflops)} GFLOP/s` : `${f(k.gbps)} GB/s`}, ${pct(k.ofCeiling)} of ${k.ceiling}`);
  }
  for (const a of rec.attention)
    row(`attention ${a.form} ${a.shape} B=${a.batch} ctx ${a.context}`, a.error ? a.error.slice(0, 80) : `${f(a.ms, 3)} ms, ${f(a.gbps)} GB/s, ${pct(a.ofBandwidth)} of bandwidth`);
  for (const e of rec.forward) {
    if (!e.record) {
      row(`forward ${e.shape} ${e.dtype}`, `not run: ${(e.error ?? '').slice(0, 80)}`);
      continue;
    }
    const s = forwardSummary(e.record, c?.bandwidthGBps ?? NaN);
    const d = (B: number): string => f(e.record!.decode.find((x) => x.batch === B)?.tokensPerS);
    row(
      `forward ${e.shape} ${e.dtype} ${e.record.layers}/${e.record.totalLayers}L`,
      `decode B=1 ${d(1)} tok/s (${pct(s.ofRoofline)} of roofline), B=8 ${d(8)}, B=32 ${d(32)}; prefill ${f(e.record.prefill.tokensPerS)} tok/s`,
    );
  }
  const so = rec.stepOverhead;
  if (so && 'error' in so) row('engine step CPU overhead', `not run: ${so.error.slice(0, 80)}`);
  else if (so) {
    const m = so.median;
    const p = so.perStep;
    row(
      `engine step CPU @ ${so.options.running} decodes`,
      `${f(m.cpuMs, 2)} ms (plan ${f(m.planMs, 2)}, record ${f(m.recordMs, 2)}, submit ${f(m.submitMs, 2)}, other ${f(m.otherMs, 2)}); step ${f(m.stepMs, 1)} ms`,
    );
    row('  per step: encoders/submits/buffers/bind groups', `${f(p.commandEncoders, 2)} / ${f(p.submits, 2)} / ${f(p.buffers, 2)} / ${f(p.bindGroups, 2)}`);
  }
  row('GPU errors', String(rec.gpuErrors.length));
  return lines.join('\n');
}
