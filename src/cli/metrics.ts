// `webslo serve`'s /metrics: engine.stats() in the Prometheus text exposition format (0.0.4).
// Metric names are vLLM's after a `webslo:` prefix (vllm:time_to_first_token_seconds becomes
// webslo:time_to_first_token_seconds), with vLLM's histogram buckets (engine/stats.ts), a
// `model_name` label as vLLM has, and an `app` label: SLOs are per app here.
//
// Written out here rather than through a client library: the numbers are already aggregated by the
// engine (its histograms count every completed request; a library would want each observation
// again), and the format is a few lines per metric.

import type { AppStats, EngineStats, Histogram, RouterStats } from '../index.js';

/** A label value as the format wants it: backslash, double quote and newline escaped. */
const escape = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const labels = (l: Record<string, string>): string =>
  `{${Object.entries(l)
    .map(([k, v]) => `${k}="${escape(v)}"`)
    .join(',')}}`;
const num = (x: number): string => (Number.isFinite(x) ? String(x) : x > 0 ? '+Inf' : x < 0 ? '-Inf' : 'NaN');

/** `router`: with --remotes, where each app's requests went and each remote replica's health. */
export function renderMetrics(stats: EngineStats, model: string, router: RouterStats | null = null): string {
  const out: string[] = [];
  const family = (name: string, type: 'counter' | 'gauge' | 'histogram', help: string): void => {
    out.push(`# HELP webslo:${name} ${help}`, `# TYPE webslo:${name} ${type}`);
  };
  const base = { model_name: model };
  const perApp = (name: string, type: 'counter' | 'gauge', help: string, value: (a: AppStats) => number | null): void => {
    family(name, type, help);
    for (const a of stats.apps) {
      const v = value(a);
      if (v !== null) out.push(`webslo:${name}${labels({ ...base, app: a.app })} ${num(v)}`);
    }
  };
  const histogram = (name: string, help: string, pick: (a: AppStats) => Histogram): void => {
    family(name, 'histogram', help);
    for (const a of stats.apps) {
      const h = pick(a);
      const l = { ...base, app: a.app };
      h.bounds.forEach((b, i) => out.push(`webslo:${name}_bucket${labels({ ...l, le: num(b) })} ${h.counts[i]}`));
      out.push(`webslo:${name}_bucket${labels({ ...l, le: '+Inf' })} ${h.count}`, `webslo:${name}_sum${labels(l)} ${num(h.sum)}`, `webslo:${name}_count${labels(l)} ${h.count}`);
    }
  };

  perApp('num_requests_running', 'gauge', 'Requests started in the engine (prefilling or decoding).', (a) => a.running - a.waiting);
  perApp('num_requests_waiting', 'gauge', 'Requests in the engine not started yet (waiting for admission or a step).', (a) => a.waiting);
  perApp('request_success_total', 'counter', 'Requests completed.', (a) => a.completed);
  perApp('request_declined_total', 'counter', 'Requests the planner declined (HTTP 429 slo_declined).', (a) => a.declined);
  perApp('request_best_effort_total', 'counter', 'Requests the planner could not promise and served best-effort.', (a) => a.bestEffort);
  perApp('request_aborted_total', 'counter', 'Requests aborted by their client.', (a) => a.aborted);
  perApp('request_failed_total', 'counter', 'Requests that failed in the engine.', (a) => a.failed);
  perApp('request_admitted_missed_total', 'counter', 'Completed requests the planner admitted that missed their SLO (its broken promises).', (a) => a.admittedMissed);
  perApp('slo_attainment', 'gauge', 'Finished requests that met their SLO over finished requests (declined ones count as misses).', (a) => a.attainment);
  perApp('prompt_tokens_total', 'counter', 'Prompt tokens submitted.', (a) => a.promptTokens);
  perApp('prefix_cache_hit_tokens_total', 'counter', 'Prompt tokens the prefix cache (or a kept conversation) held.', (a) => a.cachedPromptTokens);
  perApp('generation_tokens_total', 'counter', 'Output tokens of completed requests.', (a) => a.outputTokens);
  histogram('time_to_first_token_seconds', 'Time to first token of completed requests, seconds.', (a) => a.histograms.ttft);
  histogram('time_per_output_token_seconds', 'Mean time per output token after the first, per completed request, seconds.', (a) => a.histograms.tpot);
  histogram('e2e_request_latency_seconds', 'Arrival to last token of completed requests, seconds.', (a) => a.histograms.e2e);

  const kv = stats.kv;
  family('kv_cache_usage_perc', 'gauge', 'Fraction of KV cache pages referenced by requests or kept conversations (0 to 1).');
  out.push(`webslo:kv_cache_usage_perc${labels(base)} ${num(kv.pagesTotal > 0 ? kv.pagesUsed / kv.pagesTotal : 0)}`);
  family('kv_cache_pages', 'gauge', 'KV cache pages by state: total, used (referenced), cached (registered prefixes), evictable (cached and unreferenced).');
  for (const [state, v] of [
    ['total', kv.pagesTotal],
    ['used', kv.pagesUsed],
    ['cached', kv.cachedPages],
    ['evictable', kv.evictablePages],
  ] as const)
    out.push(`webslo:kv_cache_pages${labels({ ...base, state })} ${v}`);
  family('num_steps_total', 'counter', 'Engine steps run.');
  out.push(`webslo:num_steps_total${labels(base)} ${stats.totalSteps}`);
  const recent = stats.steps.slice(-64);
  family('step_time_seconds', 'gauge', 'Mean time of the last 64 steps, seconds (0 before any).');
  out.push(`webslo:step_time_seconds${labels(base)} ${num(recent.length ? recent.reduce((s, x) => s + x.ms, 0) / recent.length / 1000 : 0)}`);
  family('spec_decode_num_draft_tokens_total', 'counter', 'Draft tokens proposed by speculative decoding.');
  out.push(`webslo:spec_decode_num_draft_tokens_total${labels(base)} ${stats.speculation.drafted}`);
  family('spec_decode_num_accepted_tokens_total', 'counter', 'Draft tokens accepted.');
  out.push(`webslo:spec_decode_num_accepted_tokens_total${labels(base)} ${stats.speculation.accepted}`);
  if (router) {
    const route = (name: string, help: string, value: (r: RouterStats['routes'][number]) => number): void => {
      family(name, 'counter', help);
      for (const r of router.routes) out.push(`webslo:${name}${labels({ ...base, app: r.app, replica: r.replica })} ${value(r)}`);
    };
    route('router_requests_total', "Requests whose first token came from this replica ('local' or a remote).", (r) => r.served);
    route('router_completed_total', 'Requests completed, by the replica that served their first token.', (r) => r.completed);
    route('router_retried_total', 'Requests that failed on this replica before their first token and were tried elsewhere.', (r) => r.retriedAway);
    route('router_continued_total', 'Streams that broke on this replica and were continued on the local engine.', (r) => r.continuedAway);
    route('router_failed_total', 'Requests that ended with an error on this replica.', (r) => r.failed);
    route('router_slo_judged_total', 'Completed requests judged against their SLO at the router.', (r) => r.judged);
    route('router_slo_met_total', 'Judged requests that met their SLO (first token within 1.05x the TTFT, every 20th token on the TPOT curve within 5%).', (r) => r.met);
    family('router_unrouted_total', 'counter', 'Requests no replica was predicted to meet (sent to the local engine under its decline policy, or declined).');
    out.push(`webslo:router_unrouted_total${labels(base)} ${router.unrouted}`);
    const replica = (name: string, type: 'counter' | 'gauge', help: string, value: (r: RouterStats['replicas'][number]) => number): void => {
      family(name, type, help);
      for (const r of router.replicas) out.push(`webslo:${name}${labels({ ...base, replica: r.replica })} ${num(value(r))}`);
    };
    replica('replica_up', 'gauge', 'Whether the remote replica takes requests (1: circuit closed or half open; 0: open after failures).', (r) => (r.state === 'open' ? 0 : 1));
    replica('replica_in_flight', 'gauge', 'Requests at the remote replica now.', (r) => r.inFlight);
    replica('replica_failures_total', 'counter', 'Failures of the remote replica (refused, HTTP errors, timeouts, broken streams).', (r) => r.failures);
  }
  return `${out.join('\n')}\n`;
}
