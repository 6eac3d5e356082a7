import { describe, expect, it } from 'vitest';
import { ShaderError } from '../../src/gpu/errors.js';
import { definesKey, preprocessWgsl } from '../../src/gpu/wgsl.js';

const SRC = `#if F16
enable f16;
#endif
// header comment
#if A
a();
#elif B
b();
#else
c();
#endif
#if !A
#if B
nested_b();
#endif
#endif
tail();`;

const lines = (s: string): string[] => s.split('\n').filter((l) => l.trim() && !l.startsWith('//'));

describe('preprocessWgsl', () => {
  it('takes exactly one branch of each chain, nested chains included', () => {
    expect(lines(preprocessWgsl('k', SRC, { F16: false, A: true, B: true }))).toEqual(['a();', 'tail();']);
    expect(lines(preprocessWgsl('k', SRC, { F16: false, A: false, B: true }))).toEqual(['b();', 'nested_b();', 'tail();']);
    expect(lines(preprocessWgsl('k', SRC, { F16: false, A: false, B: false }))).toEqual(['c();', 'tail();']);
  });

  it('puts numeric defines after the enable directives, as u32 or f32 constants', () => {
    const out = preprocessWgsl('k', SRC, { F16: true, A: true, B: false, WG: 64, SCALE: 0.5 });
    const l = lines(out);
    expect(l.slice(0, 3)).toEqual(['enable f16;', 'const SCALE: f32 = 0.5;', 'const WG: u32 = 64u;']);
    expect(l).toContain('a();');
  });

  it('without directives the constants go first', () => {
    expect(preprocessWgsl('k', 'fn main() {}', { N: 3 }).split('\n')[0]).toBe('const N: u32 = 3u;');
  });

  it('names the kernel and line of every malformed directive', () => {
    expect(() => preprocessWgsl('mm', '#if X\n#endif', {})).toThrowError(/kernel 'mm': line 1: 'X' is not defined/);
    expect(() => preprocessWgsl('mm', '#if N\n#endif', { N: 4 })).toThrowError(/numeric/);
    expect(() => preprocessWgsl('mm', '#if A\nx', { A: true })).toThrowError(/line 1: #if without #endif/);
    expect(() => preprocessWgsl('mm', '#endif', {})).toThrowError(/#endif without #if/);
    expect(() => preprocessWgsl('mm', '#if A\n#else\n#else\n#endif', { A: true })).toThrowError(/second #else/);
    expect(() => preprocessWgsl('mm', '#if A && B\n#endif', { A: true, B: true })).toThrowError(ShaderError);
  });

  it('checks names in branches that are not taken too (typos never hide)', () => {
    expect(() => preprocessWgsl('k', '#if A\n#if TYPO\n#endif\n#endif', { A: false })).toThrowError(/'TYPO' is not defined/);
  });

  it('keys define sets independently of their order', () => {
    expect(definesKey({ B: 1, A: true })).toBe(definesKey({ A: true, B: 1 }));
    expect(definesKey({ A: true })).not.toBe(definesKey({ A: false }));
  });
});
