// Pearson's chi-square goodness of fit with its p-value (regularized upper incomplete gamma).

function logGamma(x: number): number {
  // Lanczos approximation (g = 7, n = 9).
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  x -= 1;
  let a = c[0]!;
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Q(s, x) = Gamma(s, x) / Gamma(s). */
function upperGammaQ(s: number, x: number): number {
  if (x <= 0) return 1;
  if (x < s + 1) {
    let sum = 1 / s;
    let term = sum;
    for (let n = 1; n < 10000; n++) {
      term *= x / (s + n);
      sum += term;
      if (term < sum * 1e-16) break;
    }
    return 1 - sum * Math.exp(-x + s * Math.log(x) - logGamma(s));
  }
  // Continued fraction (Lentz).
  let b = x + 1 - s;
  let c = 1e300;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 10000; i++) {
    const an = -i * (i - s);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < 1e-300) d = 1e-300;
    c = b + an / c;
    if (Math.abs(c) < 1e-300) c = 1e-300;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-16) break;
  }
  return Math.exp(-x + s * Math.log(x) - logGamma(s)) * h;
}

export interface ChiSquare {
  statistic: number;
  dof: number;
  p: number;
  cells: number;
}

/**
 * Observed counts against expected probabilities; cells whose expected count is below `minExpected`
 * are pooled into one cell (the usual validity rule).
 */
export function chiSquare(observed: ArrayLike<number>, probs: ArrayLike<number>, minExpected = 5): ChiSquare {
  let n = 0;
  for (let i = 0; i < observed.length; i++) n += observed[i]!;
  let stat = 0;
  let cells = 0;
  let poolObs = 0;
  let poolExp = 0;
  for (let i = 0; i < observed.length; i++) {
    const e = probs[i]! * n;
    if (e < minExpected) {
      poolObs += observed[i]!;
      poolExp += e;
      continue;
    }
    stat += (observed[i]! - e) ** 2 / e;
    cells++;
  }
  if (poolExp > 0) {
    stat += (poolObs - poolExp) ** 2 / Math.max(poolExp, 1e-12);
    cells++;
  }
  const dof = cells - 1;
  return { statistic: stat, dof, p: upperGammaQ(dof / 2, stat / 2), cells };
}
