// Mutation fuzzing of the safetensors parser: thousands of seeded corruptions of a real fixture and
// of a small synthetic file. Every outcome must be a successful parse whose result is consistent,
// or a SafetensorsError; any other exception, or a slow parse, fails the test.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SafetensorsError } from '../../src/model/errors.js';
import { DTYPE_BYTES, parseSafetensors } from '../../src/model/safetensors.js';
import { rng } from '../helpers/random.js';
import { buildSafetensors, encodeSafetensors, splitFile } from '../helpers/safetensors-builder.js';

interface Tally {
  ok: number;
  refused: number;
  slowestMs: number;
}

/** Parses `bytes`; checks a success for consistency, rethrows anything but a SafetensorsError. */
function probe(bytes: Uint8Array, tally: Tally, what: string): void {
  const t0 = performance.now();
  let file;
  try {
    file = parseSafetensors(bytes, 'fuzz.safetensors');
  } catch (e) {
    if (!(e instanceof SafetensorsError)) throw new Error(`${what}: ${String(e)} is not a SafetensorsError`, { cause: e });
    expect(e.fileName).toBe('fuzz.safetensors');
    tally.refused++;
    return;
  } finally {
    tally.slowestMs = Math.max(tally.slowestMs, performance.now() - t0);
  }
  tally.ok++;
  let covered = 0;
  let lowest = Infinity;
  for (const t of file.tensors.values()) {
    const elements = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.byteLength !== elements * DTYPE_BYTES[t.dtype]) throw new Error(`${what}: byte length disagrees with shape`);
    if (t.data.buffer !== bytes.buffer || t.data.byteOffset < bytes.byteOffset || t.data.byteOffset + t.data.byteLength > bytes.byteOffset + bytes.byteLength) {
      throw new Error(`${what}: tensor view outside the file`);
    }
    covered += t.data.byteLength;
    if (t.data.byteLength > 0) lowest = Math.min(lowest, t.data.byteOffset - bytes.byteOffset);
  }
  // Tiling: the tensors cover exactly the bytes after the header.
  if (covered > 0 && lowest + covered !== bytes.byteLength) throw new Error(`${what}: tensors do not tile the data region`);
}

type Rand = () => number;
const int = (r: Rand, n: number): number => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)]!;

const WEIRD: unknown[] = [-1, 0, 1, 2.5, 1e300, 2 ** 53, -0, 'F32', null, true, [], {}, [1, 2], 'x'];
const DTYPES = ['F32', 'F16', 'BF16', 'F64', 'I8', 'U8', 'BOOL', '', 'f32', 'F8_E4M3'];

/** One structural edit of a header object, the kind a buggy writer or a hostile server produces. */
function mutateHeader(r: Rand, header: Record<string, unknown>): void {
  const names = Object.keys(header).filter((n) => n !== '__metadata__');
  const name = names.length > 0 ? pick(r, names) : 't';
  const entry = header[name] as Record<string, unknown> | undefined;
  const e = entry && typeof entry === 'object' ? entry : {};
  const offsets = Array.isArray(e['data_offsets']) ? [...(e['data_offsets'] as unknown[])] : [0, 0];
  const shape = Array.isArray(e['shape']) ? [...(e['shape'] as unknown[])] : [];
  switch (int(r, 12)) {
    case 0:
      e['dtype'] = pick(r, DTYPES);
      break;
    case 1:
      shape[int(r, shape.length + 1)] = pick(r, WEIRD);
      e['shape'] = shape;
      break;
    case 2:
      shape.pop();
      e['shape'] = shape;
      break;
    case 3:
      offsets[int(r, 2)] = (offsets[0] as number) + int(r, 64) - 32;
      e['data_offsets'] = offsets;
      break;
    case 4:
      offsets[int(r, 2)] = pick(r, WEIRD);
      e['data_offsets'] = offsets;
      break;
    case 5:
      e['data_offsets'] = [offsets[1], offsets[0]];
      break;
    case 6:
      delete header[name];
      break;
    case 7:
      header[`${name}.copy`] = { ...e };
      break;
    case 8:
      header[name] = pick(r, WEIRD);
      break;
    case 9:
      header['__metadata__'] = pick(r, [{ a: 1 }, 'x', null, { k: 'v' }, []]);
      break;
    case 10:
      delete e[pick(r, ['dtype', 'shape', 'data_offsets'])];
      break;
    default:
      e['data_offsets'] = offsets.concat([int(r, 9)]);
  }
}

/** Runs `count` seeded mutations of `base`; the base array is restored after in-place flips. */
function fuzz(base: Uint8Array, seed: number, count: number): Tally {
  const r = rng(seed);
  const tally: Tally = { ok: 0, refused: 0, slowestMs: 0 };
  const { header, data } = splitFile(base);
  const headerEnd = base.length - data.length;
  for (let i = 0; i < count; i++) {
    const kind = i % 6;
    const what = `seed ${seed} case ${i} kind ${kind}`;
    if (kind === 0 || kind === 1) {
      // Flip 1-4 bytes in place (length field for kind 0, JSON for kind 1), parse, restore.
      const saved: [number, number][] = [];
      for (let k = 1 + int(r, 4); k > 0; k--) {
        const at = kind === 0 ? int(r, 8) : 8 + int(r, headerEnd - 8);
        saved.push([at, base[at]!]);
        base[at] = r() < 0.5 ? base[at]! ^ (1 << int(r, 8)) : int(r, 256);
      }
      try {
        probe(base, tally, what);
      } finally {
        for (const [at, v] of saved.reverse()) base[at] = v;
      }
    } else if (kind === 2) {
      // Truncation anywhere, weighted towards the header.
      const cut = r() < 0.5 ? int(r, headerEnd + 8) : int(r, base.length);
      probe(base.subarray(0, cut), tally, what);
    } else if (kind === 3) {
      const h = structuredClone(header);
      for (let k = 1 + int(r, 3); k > 0; k--) mutateHeader(r, h);
      probe(encodeSafetensors(h, data), tally, what);
    } else if (kind === 4) {
      // The true header with a lying length field.
      const length = pick(r, [int(r, headerEnd + 16), headerEnd - 8 + int(r, 5) - 2, int(r, 2 ** 32) * 2 ** 21, 2 ** 53 - 1]);
      probe(encodeSafetensors(header, data, { headerLength: BigInt(length) }), tally, what);
    } else {
      // Header text surgery: cut or duplicate a slice of the JSON, or append junk after it.
      const text = new TextDecoder().decode(base.subarray(8, headerEnd));
      const a = int(r, text.length);
      const b = a + int(r, 40);
      const edited = pick(r, [text.slice(0, a) + text.slice(b), text.slice(0, b) + text.slice(a), `${text}${pick(r, ['x', ',', '}', '\u0000', ' '])}`]);
      probe(encodeSafetensors(edited, data), tally, what);
    }
  }
  return tally;
}

describe('safetensors fuzzing', () => {
  // A hang shows as one parse over a second (slowestMs); the whole run's time is the machine's, not
  // the parser's (it took 15 s on 2 loaded cores), so it is not asserted.
  it('mutations of a real fixture parse or give SafetensorsError, each within a second', () => {
    const base = new Uint8Array(readFileSync(new URL('../fixtures/tiny-qwen3b/model.safetensors', import.meta.url)));
    const tally = fuzz(base, 1234, 2400);
    expect(tally.ok + tally.refused).toBe(2400);
    expect(tally.ok).toBeGreaterThan(0); // flips inside names and whitespace still parse
    expect(tally.refused).toBeGreaterThan(1500);
    expect(tally.slowestMs).toBeLessThan(1000);
  });

  it('mutations of a small synthetic file, across several seeds', () => {
    const base = buildSafetensors([
      { name: 'w', dtype: 'F32', shape: [3, 2] },
      { name: 'e', dtype: 'F16', shape: [0] },
      { name: 'b', dtype: 'BF16', shape: [5] },
      { name: 's', dtype: 'F16', shape: [] },
    ]);
    let total: Tally = { ok: 0, refused: 0, slowestMs: 0 };
    for (const seed of [1, 2, 3, 4, 5]) {
      const t = fuzz(base, seed, 1200);
      total = { ok: total.ok + t.ok, refused: total.refused + t.refused, slowestMs: Math.max(total.slowestMs, t.slowestMs) };
    }
    expect(total.ok + total.refused).toBe(6000);
    expect(total.ok).toBeGreaterThan(0);
    expect(total.slowestMs).toBeLessThan(1000);
  });

  it('random garbage of every small length is refused', () => {
    const r = rng(99);
    const tally: Tally = { ok: 0, refused: 0, slowestMs: 0 };
    for (let n = 0; n < 600; n++) {
      const bytes = new Uint8Array(n % 120);
      for (let i = 0; i < bytes.length; i++) bytes[i] = int(r, 256);
      // Half the time a plausible length field, so the JSON path is reached too.
      if (bytes.length >= 8 && n % 2 === 0) new DataView(bytes.buffer).setBigUint64(0, BigInt(int(r, bytes.length - 7)), true);
      probe(bytes, tally, `garbage ${n}`);
    }
    expect(tally.refused).toBe(600);
  });
});
