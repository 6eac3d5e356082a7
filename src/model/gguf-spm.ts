// A SentencePiece vocabulary in a GGUF file (`tokenizer.ggml.model` 'llama': tokens, scores, token
// types) as the tokenizer.json HF's converter makes for Llama-2 and Mistral: a BPE model with byte
// fallback whose merges come from the scores, a normalizer that prepends '▁' and turns spaces into
// '▁', and the decoder chain Replace('▁' -> ' '), ByteFallback, Fuse, Strip(one leading space).
//
// llama.cpp's SPM tokenizer (llm_tokenizer_spm) is the reference it must equal on the same file: it
// starts from the text's characters and repeatedly merges the adjacent pair whose concatenation is a
// token of the highest score (leftmost on a tie); a symbol that is no token becomes its byte tokens
// (<0xXX>). A BPE merge list reproduces that when the merges are every split (left, right) of every
// token, ranked by the token's score, highest first. Where llama.cpp and a merge list could part:
//  - equal scores: llama.cpp breaks the tie by position, a merge list by rank. Merges of two tokens
//    of equal score where one's right part is the other's left part can meet on one symbol, so such
//    a file is refused (converters that give every token one score, -1000, make such files);
//  - a part that is no token: llama.cpp merges any two symbols, so a split's part may also be a single
//    character outside the vocabulary (the JS tokenizer does not require parts to be tokens);
//  - a missing byte token: llama.cpp's byte fallback needs all 256 <0xXX> tokens, so the file is refused.
// Unknown (2), control (3) and user-defined (4) tokens are added tokens, matched in text before BPE,
// as llama.cpp's special-token partition does (when asked to parse special tokens); each text
// segment after one gets the '▁' prefix again, as llama.cpp's "prefix with space if previous is
// special" and HF's per-segment normalizer both do. BOS/EOS are tokenizer_config flags
// (add_bos_token defaults to true for SPM, as in llama.cpp), applied by the TextTokenizer.

/** Token types (llama.cpp's llama_token_type) that are added tokens rather than BPE pieces. */
const ADDED_TYPES = new Set([2, 3, 4]);

export type SpmBuild = { tokenizerJson: unknown } | { tokenizerJson: null; reason: string };

/** The tokenizer.json of a SentencePiece vocabulary: tokens, their scores and types, one per id. */
export function spmTokenizerJson(tokens: readonly string[], scores: readonly number[], types: readonly number[], addSpacePrefix: boolean): SpmBuild {
  // llama.cpp's token_to_id: the last id of a text wins.
  const idOf = new Map<string, number>();
  tokens.forEach((t, id) => idOf.set(t, id));
  for (let b = 0; b < 256; b++) {
    const byte = `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
    if (!idOf.has(byte)) return { tokenizerJson: null, reason: `the vocabulary has no byte token ${byte} (llama.cpp's byte fallback needs all 256)` };
  }
  // Every split of every token: both parts tokens, or single characters (llama.cpp's starting symbols).
  type Merge = { left: string; right: string; score: number; id: number; leftId: number; rightId: number };
  const merges: Merge[] = [];
  idOf.forEach((id, text) => {
    const chars = Array.from(text);
    let at = 0;
    for (let i = 1; i < chars.length; i++) {
      at += chars[i - 1]!.length;
      const left = text.slice(0, at);
      const right = text.slice(at);
      const leftId = idOf.get(left) ?? (i === 1 ? Infinity : undefined);
      const rightId = idOf.get(right) ?? (i === chars.length - 1 ? Infinity : undefined);
      if (leftId !== undefined && rightId !== undefined) merges.push({ left, right, score: scores[id]!, id, leftId, rightId });
    }
  });
  // Highest score first; ties as HF's SentencePieceExtractor orders them (by the token's id, then the parts' ids).
  merges.sort((a, b) => b.score - a.score || a.id - b.id || a.leftId - b.leftId || a.rightId - b.rightId);
  const clash = tieClash(merges);
  if (clash) return { tokenizerJson: null, reason: clash };

  const vocab: Record<string, number> = {};
  idOf.forEach((id, text) => (vocab[text] = id));
  const added = tokens.flatMap((content, id) => (ADDED_TYPES.has(types[id]!) ? [{ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: types[id] !== 4 }] : []));
  const unk = types.indexOf(2);
  const replaceSpaces = { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' };
  return {
    tokenizerJson: {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: added,
      normalizer: addSpacePrefix ? { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '\u2581' }, replaceSpaces] } : replaceSpaces,
      pre_tokenizer: null,
      post_processor: null,
      decoder: {
        type: 'Sequence',
        decoders: [
          { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
          { type: 'ByteFallback' },
          { type: 'Fuse' },
          ...(addSpacePrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
        ],
      },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: unk >= 0 ? tokens[unk] : null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: true,
        byte_fallback: true,
        ignore_merges: false,
        vocab,
        merges: merges.map((m) => [m.left, m.right]),
      },
    },
  };
}

/**
 * Why the merge order cannot reproduce llama.cpp's tie-break, or null. Merges (x, y) and (y, z) of
 * one score that make two different tokens compete for the symbol y in ...x y z...: llama.cpp takes
 * the leftmost, (x, y); the merge list takes the one ranked first, so the list agrees only if (x, y)
 * is ranked before (y, z). (Splits of one token, as (▁▁▁, ▁) and (▁, ▁▁▁) of '▁▁▁▁', can compete the
 * same way and cannot all be ordered; they are ranked as HF's converter ranks them, by their parts'
 * ids, which is where this file and llama.cpp could still part.)
 */
function tieClash(merges: readonly { left: string; right: string; score: number; id: number }[]): string | null {
  let start = 0;
  while (start < merges.length) {
    let end = start + 1;
    while (end < merges.length && merges[end]!.score === merges[start]!.score) end++;
    // The merges ranked so far in this score group, by their left part (one per token id).
    const byLeft = new Map<string, { left: string; right: string; id: number }[]>();
    for (let i = start; end - start > 1 && i < end; i++) {
      const m = merges[i]!;
      const rightOfIt = byLeft.get(m.right)?.find((r) => r.id !== m.id);
      if (rightOfIt) {
        const pair = (x: { left: string; right: string }): string => JSON.stringify([x.left, x.right]);
        return `the merges ${pair(m)} and ${pair(rightOfIt)} make two tokens of the same score (${m.score}) and can meet on one symbol: llama.cpp then merges the leftmost first, which a BPE merge list cannot express`;
      }
      const list = byLeft.get(m.left) ?? [];
      if (!list.some((r) => r.id === m.id)) list.push(m);
      byLeft.set(m.left, list);
    }
    start = end;
  }
  return null;
}
