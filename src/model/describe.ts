// A short, bounded text of any parsed JSON value for error messages. JSON.stringify recurses: a
// value nested a few thousand deep (a fuzzed safetensors header, a config, a trace) overflowed the
// stack inside the error path and escaped as "RangeError: Maximum call stack size exceeded" instead
// of the parser's typed error. This looks at most `depth` levels down and `max` characters.

export function describeValue(v: unknown, max = 60, depth = 3): string {
  const s = text(v, depth, max + 1);
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}

function text(v: unknown, depth: number, budget: number): string {
  if (v === undefined) return 'undefined';
  if (v === null || typeof v !== 'object') {
    if (typeof v === 'bigint') return `${v}n`;
    if (typeof v === 'function' || typeof v === 'symbol') return String(v);
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s;
  }
  const array = Array.isArray(v);
  if (depth <= 0) return array ? '[...]' : '{...}';
  const parts: string[] = [];
  let used = 2;
  const entries = array ? (v as unknown[]).map((x) => [null, x] as const) : Object.entries(v as Record<string, unknown>);
  for (const [k, x] of entries) {
    if (used > budget) {
      parts.push('...');
      break;
    }
    const item = (k === null ? '' : `${JSON.stringify(k)}:`) + text(x, depth - 1, budget - used);
    parts.push(item);
    used += item.length + 1;
  }
  return array ? `[${parts.join(',')}]` : `{${parts.join(',')}}`;
}

/** A value as an error message shows it: numbers (NaN and Infinity too) and bigints as written, the rest by describeValue. */
export function showValue(x: unknown): string {
  if (typeof x === 'number' || typeof x === 'bigint' || x === undefined) return String(x);
  return describeValue(x);
}
