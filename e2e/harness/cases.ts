// Matmul shapes the browser harness runs; the spec imports this list to check every one came back.
// Awkward on purpose: K not a multiple of 4 (scalar path) or a multiple (vec4 path), M above and
// below the matvec row block and the tiled tile, N not a multiple of either path's column block.

import type { MatmulCase } from './protocol.js';

export const HARNESS_CASES: readonly MatmulCase[] = [
  { M: 3, N: 37, K: 13 },
  { M: 20, N: 40, K: 130 },
  { M: 9, N: 33, K: 64 },
];

export const HARNESS_DTYPES = ['f32', 'f16'] as const;
