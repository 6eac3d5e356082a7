// ids[out_offset + r] = a token sampled from logits row r (f32, row stride p.stride) under
// row_params[r]: logits / temperature -> top-k -> top-p -> sample (HF generate's order);
// temperature 0 is greedy argmax, ties to the lowest id. src/reference/sampling.ts is the float64
// reference, with the same rules and the same RNG (lib/rng.wgsl: Philox-4x32-10 keyed by the
// seed, counter = the token index, so a row's draw never depends on its batch position).
//
// A workgroup per row (a dispatch may have fewer workgroups than rows: each then takes rows
// wg, wg + groups, ... in turn). Every decision is on the row's own data and every reduction in a
// fixed order, so a row's id depends only on its logits and params (and WG), never on its batch
// or on which workgroup ran it.
//
// Keys: each logit's f32 bits as a monotonic u32 (NaN -> -inf, -0 -> +0), so every comparison and
// threshold is an exact integer one. Weights: w = 1 for the maximum, else exp(-(max - l) / T), 0
// once (max - l) / T >= 87 (-inf logits and everything under an +inf maximum included; a row of
// only -inf is uniform).
// Tie rule, top-k and top-p alike: the kept set is always {key >= threshold}, so every token equal
// to the boundary value is kept (HF's top-k keeps them too; top_k = 1 with a tied maximum samples
// among the tied ids).
//   1. max key, then its lowest id: per-thread strided scans, integer atomics. T == 0: done.
//   2. top-k (0 < k < vocab): radix select of the k-th largest key counted with multiplicity, 4
//      bits per level (per-thread counters in registers, then integer atomics: exact). A level
//      stops early when the k-th is the chosen bin's smallest or largest key (one more pass then
//      finds that key), else after 8 levels the prefix is the key.
//   3. top-p (top_p < 1): the smallest key K such that the mass of the top-k tokens with keys > K
//      is < top_p * Z (Z their total mass), by the same descent over per-bin masses: per-thread
//      f32 bins, then a fixed two-level sum over threads (reduce_bins). It stops early when the
//      chosen bin holds one token or is kept whole. The largest key is always kept.
//   4. sample: thread j owns ids [j*chunk, (j+1)*chunk); per-thread sums in increasing id, a
//      serial exclusive scan over threads, target = u * total; each thread rewalks its range from
//      its prefix and offers the first id with w > 0 whose running sum exceeds target; the lowest
//      offer wins (the last id with w > 0 if rounding leaves none).
// Barriers are few on purpose: CPU drivers (SwiftShader especially) pay for each.
// Note: every per-thread accumulator is initialized explicitly. On the Dawn (npm webgpu 0.6) +
// lavapipe stack here, `var a: array<u32, 16>;` declared inside a loop was NOT re-zeroed on each
// iteration (WGSL says it is); `array<u32, 16>()` was.
// Defines: WG (a power of two, >= 128, and >= 256 with BIN_HALVES = 1), BIN_HALVES (1 or 2).

#include rng

struct Params {
  rows: u32,
  vocab: u32,
  stride: u32,
  out_offset: u32,
}

// 32 bytes per row; packSamplingParams in src/kernels/sampling.ts writes it.
struct RowParams {
  temperature: f32,
  top_k: u32,
  top_p: f32,
  seed_lo: u32,
  seed_hi: u32,
  token_index: u32,
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> row_params: array<RowParams>;
@group(0) @binding(3) var<storage, read_write> ids: array<u32>;

const NONE: u32 = 0xffffffffu;
const KEY_NEG_INF: u32 = 0x007fffffu;
const KEY_POS_INF: u32 = 0xff800000u;
const CUTOFF: f32 = 87.0;
const BINS: u32 = 16u;
// Bin sums go through shared memory BINS / BIN_HALVES bins at a time (2 halves where the
// workgroup storage limit is 16 KiB); the summation order is the same either way.
const BH: u32 = BINS / BIN_HALVES;
const SEGS: u32 = 16u;
const SEG_LEN: u32 = WG / SEGS;

var<workgroup> red_f: array<f32, BH * WG>;
var<workgroup> seg_f: array<f32, BH * SEGS>;
var<workgroup> bins: array<f32, BINS>;
// Atomics start each row at 0 (reset_row).
// Bin counts, one set per radix level parity: [0, 2 BINS) top-k, [2 BINS, 4 BINS) top-p.
var<workgroup> hist: array<atomic<u32>, 4 * BINS>;
var<workgroup> ctl_prefix: u32;
var<workgroup> ctl_mode: u32;
// Max key and the complement of its lowest id (atomicMax of ~id is the min id).
var<workgroup> max_k: atomic<u32>;
var<workgroup> max_not_i: atomic<u32>;
// The extreme key of a bin where top-k / top-p stopped early (max of key, or of ~key for a min).
var<workgroup> k_extreme: atomic<u32>;
var<workgroup> p_extreme: atomic<u32>;
var<workgroup> sample_target: f32;
var<workgroup> pick_not: atomic<u32>;
var<workgroup> last_positive: atomic<u32>;

var<private> max_key: u32;
var<private> max_val: f32;
var<private> inv_t: f32;

// What a radix level decided: refine the chosen bin, or stop at its smallest or largest key.
const MODE_NEXT: u32 = 0u;
const MODE_MIN: u32 = 1u;
const MODE_MAX: u32 = 2u;

fn key_of(bits_in: u32) -> u32 {
  var b = bits_in;
  if ((b & 0x7fffffffu) > 0x7f800000u) { b = 0xff800000u; }
  if (b == 0x80000000u) { b = 0u; }
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn value_of(key: u32) -> f32 {
  return bitcast<f32>(select(~key, key ^ 0x80000000u, (key & 0x80000000u) != 0u));
}

fn key_at(base: u32, i: u32) -> u32 {
  return key_of(bitcast<u32>(logits[base + i]));
}

fn weight(key: u32) -> f32 {
  if (key == max_key) { return 1.0; }
  if (max_key == KEY_POS_INF || key <= KEY_NEG_INF) { return 0.0; }
  let x = (max_val - value_of(key)) * inv_t;
  if (x < CUTOFF) { return exp(-x); }
  return 0.0;
}

// Whether key k lies under the 4*level-bit prefix.
fn under(k: u32, level: u32, prefix: u32) -> bool {
  return level == 0u || (k >> (32u - 4u * level)) == prefix;
}

// Per-thread bin counters, registers only (no dynamically indexed private arrays): 16 counts of
// 16 bits in two vec4<u32> (bin b in word b / 2, half b % 2; a thread sees < 2^16 tokens).
struct Counts {
  lo: vec4<u32>,
  hi: vec4<u32>,
}

fn count_bin(c: Counts, b: u32) -> Counts {
  let word = vec4<u32>(b >> 1u);
  let inc = vec4<u32>(1u << ((b & 1u) * 16u));
  let zero = vec4<u32>(0u);
  return Counts(c.lo + select(zero, inc, word == vec4<u32>(0u, 1u, 2u, 3u)), c.hi + select(zero, inc, word == vec4<u32>(4u, 5u, 6u, 7u)));
}

// hist[base + b] += this thread's count of bin b (integer atomics: any order gives the same sum).
fn flush_counts(base: u32, c: Counts) {
  for (var q = 0u; q < 4u; q++) {
    let v = array<u32, 4>(c.lo[q] & 0xffffu, c.lo[q] >> 16u, c.hi[q] & 0xffffu, c.hi[q] >> 16u);
    let at = array<u32, 4>(2u * q, 2u * q + 1u, 8u + 2u * q, 9u + 2u * q);
    for (var t = 0u; t < 4u; t++) {
      if (v[t] != 0u) { atomicAdd(&hist[base + at[t]], v[t]); }
    }
  }
}

// Per-thread bin masses, likewise in four vec4<f32> (bin b in a[b / 4][b % 4]); adding +0.0 to
// the other bins leaves them bit-exact.
fn mass_bin(a: array<vec4<f32>, 4>, b: u32, w: f32) -> array<vec4<f32>, 4> {
  let bv = vec4<u32>(b);
  let wv = vec4<f32>(w);
  let zero = vec4<f32>(0.0);
  return array<vec4<f32>, 4>(
    a[0] + select(zero, wv, bv == vec4<u32>(0u, 1u, 2u, 3u)),
    a[1] + select(zero, wv, bv == vec4<u32>(4u, 5u, 6u, 7u)),
    a[2] + select(zero, wv, bv == vec4<u32>(8u, 9u, 10u, 11u)),
    a[3] + select(zero, wv, bv == vec4<u32>(12u, 13u, 14u, 15u)),
  );
}

// bins[b] = the sum over threads of acc[b] in a fixed order: 16 segments of WG/16 consecutive
// threads, each summed in thread order, then the segments in order by thread 0. Only thread 0
// may read `bins` afterwards (no barrier after the last step).
fn reduce_bins(j: u32, acc: array<vec4<f32>, 4>) {
  for (var h = 0u; h < BIN_HALVES; h++) {
    for (var b = 0u; b < BH; b++) {
      let g = h * BH + b;
      red_f[b * WG + j] = acc[g >> 2u][g & 3u];
    }
    workgroupBarrier();
    if (j < BH * SEGS) {
      let b = j / SEGS;
      let seg = j % SEGS;
      var s = 0.0;
      for (var t = 0u; t < SEG_LEN; t++) { s = s + red_f[b * WG + seg * SEG_LEN + t]; }
      seg_f[b * SEGS + seg] = s;
    }
    workgroupBarrier();
    if (j == 0u) {
      for (var b = 0u; b < BH; b++) {
        var s = 0.0;
        for (var seg = 0u; seg < SEGS; seg++) { s = s + seg_f[b * SEGS + seg]; }
        bins[h * BH + b] = s;
      }
    }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) j: u32, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let groups = nwg.x * nwg.y;
  for (var r = wg.y * nwg.x + wg.x; r < p.rows; r += groups) {
    sample_row(j, r);
  }
}

// Clears the per-row accumulators (thread 0, while every other thread waits at the barrier that
// follows: they passed every read of the previous row's values before its last barrier).
fn reset_row(j: u32) {
  if (j == 0u) {
    atomicStore(&max_k, 0u);
    atomicStore(&max_not_i, 0u);
    atomicStore(&k_extreme, 0u);
    atomicStore(&p_extreme, 0u);
    atomicStore(&pick_not, 0u);
    atomicStore(&last_positive, 0u);
    for (var b = 0u; b < 4u * BINS; b++) { atomicStore(&hist[b], 0u); }
  }
  workgroupBarrier();
}

fn sample_row(j: u32, r: u32) {
  reset_row(j);
  let rp = row_params[r];
  let n = p.vocab;
  let base = r * p.stride;

  // 1. Max key, then its lowest id.
  var bk = 0u;
  var bi = NONE;
  for (var i = j; i < n; i += WG) {
    let k = key_at(base, i);
    if (bi == NONE || k > bk) { bk = k; bi = i; }
  }
  if (bi != NONE) { atomicMax(&max_k, bk); }
  workgroupBarrier();
  max_key = atomicLoad(&max_k);
  if (bi != NONE && bk == max_key) { atomicMax(&max_not_i, ~bi); }
  workgroupBarrier();
  if (!(rp.temperature > 0.0)) {
    if (j == 0u) { ids[p.out_offset + r] = ~atomicLoad(&max_not_i); }
    return;
  }
  max_val = value_of(max_key);
  inv_t = 1.0 / rp.temperature;

  // 2. Top-k: the k-th largest key. A level stops early once the k-th is the chosen bin's
  // smallest (the whole bin is in) or largest key; one more pass then finds that key.
  var k_key = 0u;
  if (rp.top_k != 0u && rp.top_k < n) {
    var prefix = 0u;
    var remaining = rp.top_k;  // thread 0: the rank wanted under the current prefix
    var mode = MODE_NEXT;
    var shift = 28u;
    for (var level = 0u; level < 8u; level++) {
      shift = 28u - 4u * level;
      let h = (level & 1u) * BINS;
      var cnt = Counts(vec4<u32>(0u), vec4<u32>(0u));
      for (var i = j; i < n; i += WG) {
        let k = key_at(base, i);
        if (under(k, level, prefix)) { cnt = count_bin(cnt, (k >> shift) & 15u); }
      }
      flush_counts(h, cnt);
      workgroupBarrier();
      if (j == 0u) {
        var chosen = 0u;
        var c = 0u;
        for (var b = 15i; b >= 0i; b--) {
          c = atomicLoad(&hist[h + u32(b)]);
          if (remaining <= c) {
            chosen = u32(b);
            break;
          }
          remaining -= c;
        }
        var m = MODE_NEXT;
        if (remaining == c) { m = MODE_MIN; } else if (remaining == 1u) { m = MODE_MAX; }
        ctl_prefix = (prefix << 4u) | chosen;
        ctl_mode = m;
        for (var b = 0u; b < BINS; b++) { atomicStore(&hist[BINS - h + b], 0u); }
      }
      mode = workgroupUniformLoad(&ctl_mode);
      prefix = ctl_prefix;
      if (mode != MODE_NEXT) { break; }
    }
    k_key = prefix;
    if (mode != MODE_NEXT && shift != 0u) {
      let take_min = mode == MODE_MIN;
      var e = 0u;
      for (var i = j; i < n; i += WG) {
        let k = key_at(base, i);
        if ((k >> shift) == prefix) { e = max(e, select(k, ~k, take_min)); }
      }
      atomicMax(&k_extreme, e);
      workgroupBarrier();
      let x = atomicLoad(&k_extreme);
      k_key = select(x, ~x, take_min);
    }
  }

  // 3. Top-p: the smallest key whose strictly-larger mass is < top_p * Z. A level stops early
  // when the chosen bin holds one token or is kept whole (its smallest key is then the threshold).
  var p_key = 0u;
  if (rp.top_p < 1.0) {
    var prefix = 0u;
    var above = 0.0;  // thread 0: the mass of the keys above the current prefix
    var limit = 0.0;  // thread 0: top_p * Z
    var mode = MODE_NEXT;
    var shift = 28u;
    for (var level = 0u; level < 8u; level++) {
      shift = 28u - 4u * level;
      let h = 2u * BINS + (level & 1u) * BINS;
      var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
      var cnt = Counts(vec4<u32>(0u), vec4<u32>(0u));
      for (var i = j; i < n; i += WG) {
        let k = key_at(base, i);
        if (k >= k_key && under(k, level, prefix)) {
          let b = (k >> shift) & 15u;
          acc = mass_bin(acc, b, weight(k));
          cnt = count_bin(cnt, b);
        }
      }
      flush_counts(h, cnt);
      reduce_bins(j, acc);
      if (j == 0u) {
        if (level == 0u) {
          var z = 0.0;
          for (var b = 15i; b >= 0i; b--) { z = z + bins[b]; }
          limit = rp.top_p * z;
        }
        var s = above;
        var chosen = NONE;
        var chosen_above = above;
        for (var b = 15i; b >= 0i; b--) {
          let m = bins[b];
          if (m > 0.0) {
            if (chosen != NONE && !(s < limit)) { break; }
            chosen = u32(b);
            chosen_above = s;
            s = s + m;
          }
        }
        if (chosen == NONE) { chosen = 0u; }
        var m = MODE_NEXT;
        if (atomicLoad(&hist[h + chosen]) == 1u || chosen_above + bins[chosen] < limit) { m = MODE_MIN; }
        above = chosen_above;
        ctl_prefix = (prefix << 4u) | chosen;
        ctl_mode = m;
        let other = 2u * BINS + BINS - (h - 2u * BINS);
        for (var b = 0u; b < BINS; b++) { atomicStore(&hist[other + b], 0u); }
      }
      mode = workgroupUniformLoad(&ctl_mode);
      prefix = ctl_prefix;
      if (mode != MODE_NEXT) { break; }
    }
    p_key = prefix;
    if (mode != MODE_NEXT && shift != 0u) {
      var e = 0u;
      for (var i = j; i < n; i += WG) {
        let k = key_at(base, i);
        if (k >= k_key && (k >> shift) == prefix) { e = max(e, ~k); }
      }
      atomicMax(&p_extreme, e);
      workgroupBarrier();
      p_key = ~atomicLoad(&p_extreme);
    }
  }
  let keep = max(k_key, p_key);

  // 4. Sample.
  let chunk = (n + WG - 1u) / WG;
  let lo = min(j * chunk, n);
  let hi = min(lo + chunk, n);
  var sum = 0.0;
  var last = NONE;
  for (var i = lo; i < hi; i++) {
    let k = key_at(base, i);
    if (k >= keep) {
      let w = weight(k);
      sum = sum + w;
      if (w > 0.0) { last = i; }
    }
  }
  red_f[j] = sum;
  if (last != NONE) { atomicMax(&last_positive, last); }
  workgroupBarrier();
  if (j == 0u) {
    var run = 0.0;
    for (var t = 0u; t < WG; t++) {
      let v = red_f[t];
      red_f[WG + t] = run;
      run = run + v;
    }
    sample_target = sampling_uniform(rp.seed_lo, rp.seed_hi, rp.token_index) * run;
  }
  workgroupBarrier();
  let goal = sample_target;
  var run = red_f[WG + j];
  for (var i = lo; i < hi; i++) {
    let k = key_at(base, i);
    if (k >= keep) {
      let w = weight(k);
      run = run + w;
      if (w > 0.0 && run > goal) {
        atomicMax(&pick_not, ~i);
        break;
      }
    }
  }
  workgroupBarrier();
  if (j == 0u) {
    let not_pick = atomicLoad(&pick_not);
    ids[p.out_offset + r] = select(atomicLoad(&last_positive), ~not_pick, not_pick != 0u);
  }
}
