// Float64 CPU reference for Y = X W^T, and the error bound a float32 kernel following webslo's
// reduction order must stay within. Tests compare GPU results to this, never to another GPU kernel.

export interface MatmulShape {
  M: number;
  N: number;
  K: number;
}

/** Y[m, n] = sum_k X[m, k] * W[n, k] in float64 (inputs are the exact values the GPU sees). */
export function matmulReference(x: ArrayLike<number>, w: ArrayLike<number>, { M, N, K }: MatmulShape): Float64Array {
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[m * K + k]! * w[n * K + k]!;
      y[m * N + n] = s;
    }
  }
  return y;
}

/** sum_k |X[m, k] * W[n, k]|, the scale of each output's rounding error. */
export function matmulAbsReference(x: ArrayLike<number>, w: ArrayLike<number>, { M, N, K }: MatmulShape): Float64Array {
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += Math.abs(x[m * K + k]! * w[n * K + k]!);
      y[m * N + n] = s;
    }
  }
  return y;
}

/**
 * Worst-case float32 error of the lane-split sum: each lane does ceil(G/L)*4 fma's and the tree
 * adds log2(L) more, so |err| <= gamma(n) * sum|x w| with n = 4*ceil(G/L) + log2(L), u = 2^-24.
 */
export function matmulErrorBound(K: number, lanes: number, absSum: number): number {
  const groups = Math.ceil(K / 4);
  const n = 4 * Math.ceil(groups / lanes) + Math.log2(lanes);
  const u = 2 ** -24;
  return ((n * u) / (1 - n * u)) * absSum + 1e-30;
}
