// The admission DP of SLOs-Serve. Items (already-admitted prefills and new requests) are taken in
// TTFT-deadline order and prefilled one after another at the prefill rate the decoding set leaves
// (which falls as admitted requests start decoding). State after item n: the admitted count per TPOT
// tier -> a Pareto set of (prefill finish time, reserved KV pages); the count vector fixes both the
// decode load and the profit (admitted new requests), so only time and memory need comparing.
//
// Admitting a new request needs: its prefill finishes by its deadline given everything admitted before
// it, the reserved KV fits, and the decoding set with it stays sustainable (Plan(inf) has room for all
// decode rows). Already-admitted requests are never dropped: they are always taken, and a path is
// invalid if it makes one finish later than both its deadline and the time it would finish with no
// new admissions (so a request that is late anyway does not block everyone else).
//
// Cost: O(items * states * tiers) with states bounded by the count vectors (C(n + L - 1, L - 1) for n
// admitted over L tiers) times the Pareto width (capped).

export interface AdmissionItem {
  /** Already admitted: never dropped. */
  forced: boolean;
  deadlineMs: number;
  /** Rows still to prefill. */
  prefillTokens: number;
  /** Tier the request decodes in once prefilled. */
  tier: number;
  /**
   * The tier given the time its prefill finishes (an early first token banks slack, so it decodes in
   * a looser effective tier); default: always `tier`.
   */
  tierAt?: (finishMs: number) => number;
  /** KV pages its admission reserves (0 for forced items: already reserved). */
  pages: number;
}

export interface AdmissionProblem {
  nowMs: number;
  /** Sorted by deadline. */
  items: readonly AdmissionItem[];
  tiers: number;
  /** Pages free for new reservations. */
  freePages: number;
  /**
   * Prefill rows per ms while the given extra decoders (per tier, on top of the current decoding
   * set) decode; null when that set is not sustainable.
   */
  rate(extra: readonly number[]): number | null;
  /**
   * Latency a prefill pays on top of its fluid share, ms: it completes at the end of a step, so about
   * one step length of the decoding set (default 0).
   */
  lag?(extra: readonly number[]): number;
}

interface Node {
  finish: number;
  pages: number;
  profit: number;
  parent: Node | null;
  /** Whether this node's item was admitted. */
  took: boolean;
  /** Index of the (last) item this node decided; -1 for the root. */
  item: number;
}

const PARETO_CAP = 6;
/** Count vectors kept per item (the exact DP keeps all; small instances never reach this). */
const BEAM = 64;

/**
 * The new items to admit (forced items are always kept and come back false). `paretoCap` bounds the
 * (finish, pages) front kept per count vector and `beam` the count vectors kept per item (defaults 6
 * and 128; Infinity for both makes the DP exact).
 */
export function solveAdmission(p: AdmissionProblem, paretoCap = PARETO_CAP, beam = BEAM): boolean[] {
  const n = p.items.length;
  // Count vectors as integers (base n + 1 per tier): cheap map keys, no string building.
  const base = n + 1;
  const weight = Array.from({ length: p.tiers }, (_, k) => base ** k);
  const cache = new Map<number, { rate: number | null; lag: number }>();
  const plan = (counts: readonly number[], key: number): { rate: number | null; lag: number } => {
    let r = cache.get(key);
    if (r === undefined) {
      const rate = p.rate(counts);
      r = { rate, lag: rate !== null && p.lag ? p.lag(counts) : 0 };
      cache.set(key, r);
    }
    return r;
  };
  const prefillTime = (rate: number | null, tokens: number): number => (tokens <= 0 ? 0 : rate !== null && rate > 0 ? tokens / rate : Infinity);

  // Finish times of the forced items with no new admissions: their lateness allowance.
  const baseline = new Float64Array(n);
  {
    const counts = new Array<number>(p.tiers).fill(0);
    let key = 0;
    let t = p.nowMs;
    let runRate: number | null = null;
    for (let i = 0; i < n; i++) {
      const it = p.items[i]!;
      if (!it.forced) continue;
      // The same rate rule as the DP's forced runs: fixed from the start of each run.
      if (i === 0 || !p.items[i - 1]!.forced) runRate = plan(counts, key).rate;
      t += prefillTime(runRate, it.prefillTokens);
      baseline[i] = t;
      const tier = it.tierAt ? it.tierAt(t) : it.tier;
      counts[tier]!++;
      key += weight[tier]!;
    }
  }

  type Slot = { counts: number[]; key: number; nodes: Node[] };
  let layer: Slot[] = [{ counts: new Array<number>(p.tiers).fill(0), key: 0, nodes: [{ finish: p.nowMs, pages: 0, profit: 0, parent: null, took: false, item: -1 }] }];
  for (let i = 0; i < n;) {
    const it = p.items[i]!;
    const next = new Map<number, Slot>();
    // Insert into a slot's front unless dominated (checked before allocating: the DP's garbage is
    // what makes its slow steps slow).
    const put = (counts: number[], key: number, finish: number, pages: number, profit: number, parent: Node, took: boolean, item: number): void => {
      let slot = next.get(key);
      if (!slot) next.set(key, (slot = { counts, key, nodes: [] }));
      const nodes = slot.nodes;
      for (const q of nodes) if (q.finish <= finish && q.pages <= pages) return;
      let w = 0;
      for (const q of nodes) if (!(finish <= q.finish && pages <= q.pages)) nodes[w++] = q;
      const node = { finish, pages, profit, parent, took, item };
      if (w === nodes.length) nodes.push(node);
      else {
        nodes[w] = node;
        nodes.length = w + 1;
      }
    };
    if (it.forced) {
      // A run of already-admitted items: always taken, so one layer (no branching) walks them all,
      // at the prefill rate of the run's start (the run's own decode load joins at its end: a run
      // sits between two new requests, so this only shifts when inside it the load grows).
      let j = i;
      while (j < n && p.items[j]!.forced) j++;
      for (const { counts, key, nodes } of layer) {
        const rate = plan(counts, key).rate;
        for (const node of nodes) {
          const c = counts.slice();
          let k2 = key;
          let finish = node.finish;
          let ok = true;
          for (let m = i; m < j && ok; m++) {
            const f = p.items[m]!;
            finish += prefillTime(rate, f.prefillTokens);
            const allowed = Math.max(f.deadlineMs, baseline[m]!);
            ok = finish <= allowed || !Number.isFinite(allowed);
            const tier = f.tierAt ? f.tierAt(finish) : f.tier;
            c[tier]!++;
            k2 += weight[tier]!;
          }
          if (ok) put(next.get(k2)?.counts ?? c, k2, finish, node.pages, node.profit, node, false, j - 1);
        }
      }
      i = j;
    } else {
      for (const { counts, key, nodes } of layer) {
        const here = plan(counts, key);
        const dt = prefillTime(here.rate, it.prefillTokens);
        for (const node of nodes) {
          const finish = node.finish + dt;
          put(counts, key, node.finish, node.pages, node.profit, node, false, i);
          const pages = node.pages + it.pages;
          if (finish + here.lag > it.deadlineMs || pages > p.freePages) continue;
          const tier = it.tierAt ? it.tierAt(finish) : it.tier;
          const grownKey = key + weight[tier]!;
          const grown = next.get(grownKey)?.counts ?? counts.map((c, k) => (k === tier ? c + 1 : c));
          if (plan(grown, grownKey).rate !== null) put(grown, grownKey, finish, pages, node.profit + 1, node, true, i);
        }
      }
      i++;
    }
    layer = [...next.values()];
    for (const slot of layer) slot.nodes = pareto(slot.nodes, paretoCap);
    if (layer.length > beam) {
      // Beam: keep the count vectors with the most admitted, then the earliest finish.
      layer.sort((a, b) => b.nodes[0]!.profit - a.nodes[0]!.profit || a.nodes[0]!.finish - b.nodes[0]!.finish);
      // Keep the no-new-admissions path: it always keeps every forced item on time.
      const base = layer.findIndex((slot) => slot.nodes[0]!.profit === 0);
      if (base >= beam) layer[beam - 1] = layer[base]!;
      layer.length = beam;
    }
  }

  let best: Node | null = null;
  for (const { nodes } of layer) {
    for (const node of nodes) {
      if (!best || node.profit > best.profit || (node.profit === best.profit && (node.finish < best.finish || (node.finish === best.finish && node.pages < best.pages)))) best = node;
    }
  }
  const took = new Array<boolean>(n).fill(false);
  // Every path is invalid only if a forced item cannot be kept on time by any choice, which the
  // baseline rules out; admit nothing new in that case.
  for (let node = best; node && node.item >= 0; node = node.parent) took[node.item] = node.took;
  return took.map((t, i) => t && !p.items[i]!.forced);
}

/** Keep nodes no other node beats in finish time, pages and profit (profit is equal within a slot). */
function pareto(nodes: Node[], cap: number): Node[] {
  nodes.sort((a, b) => a.finish - b.finish || a.pages - b.pages);
  const out: Node[] = [];
  let minPages = Infinity;
  for (const node of nodes) {
    if (node.pages < minPages) {
      out.push(node);
      minPages = node.pages;
      if (out.length >= cap) break;
    }
  }
  return out;
}
