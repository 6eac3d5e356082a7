// Speculation's acceptance model (SLOs-Serve): with a per-token acceptance rate alpha and k draft
// tokens, a verify emits (1 - alpha^(k+1)) / (1 - alpha) tokens in expectation (accepted drafts plus
// the target's own token). Alpha is estimated online per app as A / (A + R): A = accepted draft
// tokens, R = verifies that ended in a rejection. That is the maximum-likelihood estimate under
// truncation at k; the authors' 1 - 1/mean(accepted) ignores the truncation and is biased low.

/** Expected tokens emitted by one verify of k drafts at acceptance rate alpha. */
export function expectedTokens(k: number, alpha: number): number {
  if (k <= 0) return 1;
  if (alpha >= 1) return k + 1;
  if (alpha <= 0) return 1;
  return (1 - alpha ** (k + 1)) / (1 - alpha);
}

export class AcceptanceEstimator {
  private readonly counts = new Map<string, { accepted: number; rejections: number }>();

  /** @param prior alpha used for an app before it has `minVerifies` observations. */
  constructor(
    readonly prior = 0.7,
    readonly minVerifies = 8,
  ) {
    if (!(prior >= 0 && prior < 1)) throw new RangeError(`alpha prior must be in [0, 1), got ${prior}`);
  }

  /** One verify of `drafted` tokens with `accepted` of them accepted. */
  record(app: string, drafted: number, accepted: number): void {
    if (drafted <= 0) return;
    const c = this.counts.get(app) ?? { accepted: 0, rejections: 0 };
    c.accepted += accepted;
    if (accepted < drafted) c.rejections++;
    this.counts.set(app, c);
  }

  alpha(app: string): number {
    const c = this.counts.get(app);
    if (!c || c.accepted + c.rejections < this.minVerifies) return this.prior;
    // Clamp below 1: a run of full acceptances must not promise infinite tokens.
    return Math.min(0.98, c.accepted / (c.accepted + c.rejections));
  }
}
