// Repetition, frequency and presence penalties and logit bias: what a request asks
// (`Penalties`), and the (row, token) entries that carry it to the GPU for one output row
// (shaders/logit_adjust.wgsl through src/kernels/logit-adjust.ts). The float64 reference the kernel
// and the engine are tested against is src/reference/penalties.ts.
//
// Semantics, in this order, on the raw logit l of token t for one output row whose context is the
// prompt and the output tokens before that row (drafts under verification included):
//   repetition r (HF's and vLLM's `repetition_penalty`; 1 = off), if t is in the prompt or the
//     output: l = l > 0 ? l / r : l * r
//   frequency f and presence p (OpenAI's `frequency_penalty`, `presence_penalty`; 0 = off), with
//     c = occurrences of t in the output (the prompt does not count, as OpenAI and vLLM):
//     l -= f * c + p * (c > 0)
//   bias b (OpenAI's `logit_bias`, by token id): l += b
// Then temperature, top-k, top-p, or argmax, as without them (src/sampling/warp.ts).
//
// Invariants: a neutral request (r = 1, f = p = 0, no bias) yields no entries; a row's entries
// name distinct tokens; counts are recomputed from the row's context each time, so a rollback of
// rejected drafts can never leave stale counts.

/** A request's penalties (validated by validatePenalties). */
export interface Penalties {
  frequency: number;
  presence: number;
  repetition: number;
  /** Token id -> bias added to its logit. */
  logitBias: ReadonlyMap<number, number>;
}

/** One (output row, token) adjustment. */
export interface PenaltyEntry {
  /** The output row (the forward's output rows, in order). */
  row: number;
  token: number;
  /** Occurrences in the output (0 when frequency and presence are off). */
  count: number;
  /** In the prompt or the output, and repetition is on. */
  inContext: boolean;
  bias: number;
  frequency: number;
  presence: number;
  repetition: number;
}

/** A penalty parameter out of range, naming it and what is valid. */
export class PenaltiesError extends RangeError {
  override name = 'PenaltiesError';

  constructor(
    readonly field: string,
    detail: string,
  ) {
    super(`${field} ${detail}`);
  }
}

/** Throws PenaltiesError unless `p` is valid for a vocabulary of `vocab` tokens. */
export function validatePenalties(p: Penalties, vocab: number): void {
  for (const [field, v] of [
    ['frequency', p.frequency],
    ['presence', p.presence],
  ] as const) {
    if (typeof v !== 'number' || !(v >= -2 && v <= 2)) throw new PenaltiesError(field, `must be a number in [-2, 2], got ${String(v)}`);
  }
  if (typeof p.repetition !== 'number' || !(p.repetition > 0 && p.repetition <= 10)) throw new PenaltiesError('repetition', `must be in (0, 10] (1 = off), got ${String(p.repetition)}`);
  for (const [t, b] of p.logitBias) {
    if (!Number.isInteger(t) || t < 0 || t >= vocab) throw new PenaltiesError('logitBias', `token ${t} is not an id below ${vocab}`);
    if (typeof b !== 'number' || !(b >= -100 && b <= 100)) throw new PenaltiesError('logitBias', `bias of token ${t} must be in [-100, 100], got ${String(b)}`);
  }
}

/** True when `p` changes nothing (no entries are made for it). */
export function isNeutral(p: Penalties | null | undefined): boolean {
  return !p || (p.frequency === 0 && p.presence === 0 && p.repetition === 1 && p.logitBias.size === 0);
}

/**
 * Append the entries of the output rows `firstRow` .. `firstRow + drafts.length`: row j's context is
 * `context` (the prompt: its first `promptLength` ids, then the output so far) and the first j
 * `drafts` (a verify's positions; none for a plain row). Counts are built once and grown per row.
 */
export function penaltyEntries(p: Penalties, context: readonly number[], promptLength: number, firstRow: number, out: PenaltyEntry[], drafts: readonly number[] = []): void {
  if (isNeutral(p)) return;
  const counting = p.frequency !== 0 || p.presence !== 0;
  const repeating = p.repetition !== 1;
  const counts = new Map<number, number>();
  const seen = new Set<number>();
  if (counting) for (let i = promptLength; i < context.length; i++) counts.set(context[i]!, (counts.get(context[i]!) ?? 0) + 1);
  if (repeating) for (const t of context) seen.add(t);
  for (let j = 0; j <= drafts.length; j++) {
    if (j > 0) {
      const t = drafts[j - 1]!;
      if (counting) counts.set(t, (counts.get(t) ?? 0) + 1);
      if (repeating) seen.add(t);
    }
    const tokens = new Set<number>(p.logitBias.keys());
    for (const t of counts.keys()) tokens.add(t);
    for (const t of seen) tokens.add(t);
    for (const token of tokens) {
      out.push({
        row: firstRow + j,
        token,
        count: counts.get(token) ?? 0,
        inContext: seen.has(token),
        bias: p.logitBias.get(token) ?? 0,
        frequency: p.frequency,
        presence: p.presence,
        repetition: p.repetition,
      });
    }
  }
}
