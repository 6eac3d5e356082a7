// Log-probabilities of emitted tokens under the model's raw (unwarped) distribution, as OpenAI
// reports them: log-softmax of the logits row in float64 (max-subtracted log-sum-exp), plus the
// top-N alternatives. Computed in the engine core, where the logits rows are.

export interface TokenLogprob {
  logprob: number;
  /** The top-N ids by logprob, best first; ties broken by the lower id. */
  top: { id: number; logprob: number }[];
}

/**
 * log softmax(logits)[tokenId] and the topN best (id, logprob). NaN logits count as -Infinity. A row
 * that is all -Infinity is uniform; with +Infinity logits, those share the mass and the rest get
 * -Infinity.
 */
export function logSoftmaxTop(logits: ArrayLike<number>, tokenId: number, topN: number): TokenLogprob {
  const n = logits.length;
  if (!Number.isInteger(tokenId) || tokenId < 0 || tokenId >= n) throw new RangeError(`logSoftmaxTop: token id ${tokenId} is outside the row (0..${n - 1})`);
  if (!Number.isInteger(topN) || topN < 0) throw new RangeError(`logSoftmaxTop: topN must be an integer >= 0 (got ${topN})`);
  const at = (i: number): number => {
    const v = logits[i]!;
    return Number.isNaN(v) ? -Infinity : v;
  };
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (at(i) > max) max = at(i);
  let lp: (i: number) => number;
  if (max === -Infinity) {
    lp = () => -Math.log(n);
  } else if (max === Infinity) {
    let count = 0;
    for (let i = 0; i < n; i++) if (at(i) === Infinity) count++;
    lp = (i) => (at(i) === Infinity ? -Math.log(count) : -Infinity);
  } else {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += Math.exp(at(i) - max);
    // (v - max) - log(sum), not v - (max + log(sum)): the latter loses log(sum) next to a huge max.
    const logSum = Math.log(sum);
    lp = (i) => at(i) - max - logSum;
  }

  // One ascending pass keeping the best topN sorted (topN <= 20): insertion only on a strictly
  // greater value, so among equals the lower id stays first.
  const top: { id: number; v: number }[] = [];
  const k = Math.min(topN, n);
  if (k > 0) {
    for (let i = 0; i < n; i++) {
      const v = at(i);
      if (top.length === k && !(v > top[k - 1]!.v)) continue;
      let j = top.length;
      while (j > 0 && top[j - 1]!.v < v) j--;
      top.splice(j, 0, { id: i, v });
      if (top.length > k) top.pop();
    }
  }
  return { logprob: lp(tokenId), top: top.map((t) => ({ id: t.id, logprob: lp(t.id) })) };
}
