// Log-probabilities of emitted tokens under the model's raw (unwarped) distribution, as OpenAI
// reports them: log-softmax of the logits row in float64, plus the top-N alternatives.

export interface TokenLogprob {
  logprob: number;
  /** The top-N tokens by logprob, best first (ties: lower id first). */
  top: { id: number; logprob: number }[];
}

export function tokenLogprob(row: Float32Array, token: number, topN: number): TokenLogprob {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > max) max = row[i]!;
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i]! - max);
  const logZ = max + Math.log(sum);
  const top: { id: number; logprob: number }[] = [];
  if (topN > 0) {
    // One pass keeping the best topN in a small sorted array (topN <= 20).
    for (let i = 0; i < row.length; i++) {
      const v = row[i]!;
      if (top.length === topN && v <= top[top.length - 1]!.logprob) continue;
      let j = top.length;
      while (j > 0 && top[j - 1]!.logprob < v) j--;
      top.splice(j, 0, { id: i, logprob: v });
      if (top.length > topN) top.pop();
    }
    for (const t of top) t.logprob -= logZ;
  }
  return { logprob: row[token]! - logZ, top };
}
