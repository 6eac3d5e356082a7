import { describe, expect, it } from 'vitest';
import { matmulAbsReference, matmulErrorBound, matmulReference } from '../../src/reference/matmul.js';

describe('matmulReference', () => {
  it('computes X W^T with W in [N, K] layout', () => {
    // X = [[1, 2, 3], [4, 5, 6]], W rows [1, 0, -1], [2, 2, 2]
    const y = matmulReference([1, 2, 3, 4, 5, 6], [1, 0, -1, 2, 2, 2], { M: 2, N: 2, K: 3 });
    expect([...y]).toEqual([-2, 12, -2, 30]);
    expect([...matmulAbsReference([1, -2, 3, 4, 5, 6], [1, 0, -1, 2, 2, 2], { M: 2, N: 2, K: 3 })]).toEqual([4, 12, 10, 30]);
  });

  it('bounds float32 error by the number of sequential roundings', () => {
    // K = 4096 with 4 lanes: 1024 fma's per lane + 2 tree adds.
    const b = matmulErrorBound(4096, 4, 1);
    expect(b).toBeGreaterThan(1026 * 2 ** -24);
    expect(b).toBeLessThan(1027 * 2 ** -24);
    expect(matmulErrorBound(4096, 8, 1)).toBeLessThan(b);
  });
});
