// Acceptance statistics for the scheduler's speculation model. alpha is estimated as A / (A + R):
// A = accepted draft tokens, R = verifies that ended in a rejection. Under a per-token acceptance
// rate alpha truncated at k this is the maximum-likelihood estimate (a verify that accepts all k
// says nothing about the (k+1)-th token); 1 - 1/mean(accepted) ignores the truncation.

export class AcceptanceStats {
  /** Draft tokens accepted. */
  accepted = 0;
  /** Verifies that ended in a rejection. */
  rejections = 0;
  verifies = 0;
  drafted = 0;
  /** Tokens emitted by verifies (accepted drafts + the target's token). */
  emitted = 0;

  record(k: number, accepted: number): void {
    if (!Number.isInteger(k) || k < 0 || !Number.isInteger(accepted) || accepted < 0 || accepted > k) {
      throw new RangeError(`acceptance ${accepted} of ${k} drafts is impossible`);
    }
    if (k === 0) return; // plain decoding says nothing about the draft
    this.verifies++;
    this.drafted += k;
    this.accepted += accepted;
    this.emitted += accepted + 1;
    if (accepted < k) this.rejections++;
  }

  /** A / (A + R), or null before any evidence. */
  get alpha(): number | null {
    const d = this.accepted + this.rejections;
    return d === 0 ? null : this.accepted / d;
  }

  /** Mean tokens emitted per verify. */
  get tokensPerVerify(): number | null {
    return this.verifies === 0 ? null : this.emitted / this.verifies;
  }

  merge(other: AcceptanceStats): void {
    this.accepted += other.accepted;
    this.rejections += other.rejections;
    this.verifies += other.verifies;
    this.drafted += other.drafted;
    this.emitted += other.emitted;
  }
}

/** Expected tokens per verify with k drafts at acceptance rate alpha: (1 - alpha^(k+1)) / (1 - alpha). */
export function expectedTokensPerVerify(alpha: number, k: number): number {
  return alpha >= 1 ? k + 1 : (1 - alpha ** (k + 1)) / (1 - alpha);
}

/** Statistics per key (request, app): each record also counts toward its group. */
export class GroupedAcceptanceStats<K> {
  private readonly groups = new Map<K, AcceptanceStats>();

  record(key: K, k: number, accepted: number): void {
    let s = this.groups.get(key);
    if (!s) this.groups.set(key, (s = new AcceptanceStats()));
    s.record(k, accepted);
  }

  get(key: K): AcceptanceStats | undefined {
    return this.groups.get(key);
  }

  entries(): IterableIterator<[K, AcceptanceStats]> {
    return this.groups.entries();
  }
}
