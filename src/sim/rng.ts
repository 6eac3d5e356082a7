// A small deterministic PRNG for the simulator: xoshiro128** on 32-bit integers (Math.imul, no
// BigInt), seeded through splitmix32. Named streams (`streamSeed`, `rngFor`) give common random
// numbers: the same seed and labels always give the same draws, whatever else is drawn elsewhere.

const TWO_POW_26 = 67_108_864;
const TWO_POW_53 = 9_007_199_254_740_992;
const TWO_POW_32 = 4_294_967_296;

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** murmur3's 32-bit finalizer: a bijection that spreads every input bit over the output. */
function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Folds one 32-bit word into a running hash (murmur3's block step). */
function mixIn(h: number, word: number): number {
  let k = Math.imul(word | 0, 0xcc9e2d51);
  k = Math.imul(rotl(k, 15), 0x1b873593);
  h = rotl(h ^ k, 13);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function checkSeed(seed: number): void {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`rng seed must be a safe integer, got ${seed}`);
}

/** Folds a safe integer (negative allowed) in as two 32-bit words. */
function mixSeed(h: number, seed: number): number {
  const hi = Math.floor(seed / TWO_POW_32);
  const lo = seed - hi * TWO_POW_32;
  return mixIn(mixIn(h, lo), hi);
}

/**
 * A 32-bit seed for the stream named by `labels` under `seed`. Labels are length-prefixed, so
 * ('ab', 'c') and ('a', 'bc') name different streams; numbers and strings are told apart too.
 */
export function streamSeed(seed: number, ...labels: (string | number)[]): number {
  checkSeed(seed);
  let h = mixSeed(0x5eed1e55, seed);
  for (const label of labels) {
    if (typeof label === 'number') {
      checkSeed(label);
      h = mixSeed(mixIn(h, 0x4e554d21), label);
    } else {
      h = mixIn(mixIn(h, 0x53545221), label.length);
      for (let i = 0; i < label.length; i++) h = mixIn(h, label.charCodeAt(i));
    }
  }
  return fmix32(h ^ labels.length);
}

/** xoshiro128** with helpers for the distributions the simulator draws from. */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** `seed`: any safe integer; the state is filled by splitmix32 from it. */
  constructor(seed: number) {
    checkSeed(seed);
    let x = fmix32(mixSeed(0x9e3779b9, seed));
    const next = (): number => {
      x = (x + 0x9e3779b9) | 0;
      return fmix32(x);
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // the one forbidden state
  }

  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform on [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * TWO_POW_26 + lo) / TWO_POW_53;
  }

  /** Uniform on (0, 1]: safe to take the log of. */
  private uniformPositive(): number {
    return 1 - this.uniform();
  }

  /** Exponential with the given rate (mean 1/rate). */
  exponential(rate: number): number {
    if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`exponential rate must be finite and > 0, got ${rate}`);
    return -Math.log(this.uniformPositive()) / rate;
  }

  /** Standard normal (Box-Muller, two uniforms per draw, no cached spare). */
  normal(): number {
    const r = Math.sqrt(-2 * Math.log(this.uniformPositive()));
    return r * Math.cos(2 * Math.PI * this.uniform());
  }

  /** Gamma with `shape` k and `scale` theta (mean k*theta), by Marsaglia-Tsang. */
  gamma(shape: number, scale: number): number {
    if (!(shape > 0) || !Number.isFinite(shape)) throw new RangeError(`gamma shape must be finite and > 0, got ${shape}`);
    if (!(scale > 0) || !Number.isFinite(scale)) throw new RangeError(`gamma scale must be finite and > 0, got ${scale}`);
    if (shape < 1) {
      // Boost: Gamma(k) = Gamma(k + 1) * U^(1/k).
      return this.gamma(shape + 1, scale) * Math.pow(this.uniformPositive(), 1 / shape);
    }
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      const x = this.normal();
      const t = 1 + c * x;
      if (t <= 0) continue;
      const v = t * t * t;
      const u = this.uniformPositive();
      const x2 = x * x;
      if (u < 1 - 0.0331 * x2 * x2 || Math.log(u) < 0.5 * x2 + d * (1 - v + Math.log(v))) return d * v * scale;
    }
  }

  /** exp(N(mu, sigma^2)). */
  lognormal(mu: number, sigma: number): number {
    if (!(sigma >= 0) || !Number.isFinite(sigma) || !Number.isFinite(mu)) {
      throw new RangeError(`lognormal needs finite mu and sigma >= 0, got (${mu}, ${sigma})`);
    }
    return Math.exp(mu + sigma * this.normal());
  }
}

/** A generator for the named stream `labels` under `seed` (see `streamSeed`). */
export function rngFor(seed: number, ...labels: (string | number)[]): Rng {
  return new Rng(streamSeed(seed, ...labels));
}
