// Comparing logits rows with reference top-k lists. No Node imports: the browser tier uses it too.

/**
 * Positions whose top-8 order is well defined: every neighbouring pair of the reference top-8
 * (and the 8th vs the 9th, unknown, so only pairs inside the 8) differs by more than `gap`.
 */
export function topIdsComparable(topLogits: readonly number[], gap = 1e-3): boolean {
  for (let i = 0; i + 1 < topLogits.length; i++) if (topLogits[i]! - topLogits[i + 1]! <= gap) return false;
  return true;
}

/** The k largest ids of a logits row, best first, ties to the lower id (one linear scan). */
export function topK(logits: ArrayLike<number>, offset: number, vocab: number, k: number): number[] {
  const ids: number[] = [];
  const better = (a: number, b: number): boolean => logits[offset + a]! > logits[offset + b]! || (logits[offset + a] === logits[offset + b] && a < b);
  for (let i = 0; i < vocab; i++) {
    if (ids.length === k && !better(i, ids[k - 1]!)) continue;
    let j = ids.length < k ? ids.length : k - 1;
    ids[j] = i;
    while (j > 0 && better(ids[j]!, ids[j - 1]!)) {
      [ids[j], ids[j - 1]] = [ids[j - 1]!, ids[j]!];
      j--;
    }
  }
  return ids;
}
