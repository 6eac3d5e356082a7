// Y[m, y_col_offset + n] = sum_k X[m, k] * W[n, k]   for few rows m (decode).
//
// Reduction order (the contract shared with matmul_tiled.wgsl): K is cut into vec4 groups
// g = 0..G-1; lane l (of LANES) accumulates the groups g = l, l+LANES, ... in increasing g, each as
// four fma's x, y, z, w in order; the lanes are then added by a binary tree with strides LANES/2..1.
// Nothing here depends on M, so a row's result is the same whichever rows share its dispatch.
//
// Defines: LANES, WG (threads), ROWS (activation rows per workgroup, <= 4), W_F16 / W_BF16 / W_Q4 / SHADER_F16
// (weight storage, see lib/weights.wgsl), VEC4 (K, strides multiples of 4: vector loads),
// SUBGROUPS (lane tree through subgroupShuffleXor), F16_MATH (group products in f16,
// lib/group_dot16.wgsl), ENABLE_F16 (SHADER_F16 or F16_MATH), NORM (a fifth binding and flag 8:
// an RMSNorm applied to X's rows as they are read, the decode path's fused norm; a separate variant
// because its code slows SwiftShader's matvec about 2x even when the flag is off). Epilogue flags:
// lib/epilogue.wgsl.

#if ENABLE_F16
enable f16;
#endif
#if SUBGROUPS
enable subgroups;
#endif

struct Params {
  M: u32,
  N: u32,
  K: u32,
  x_stride: u32,
  y_stride: u32,
  y_col_offset: u32,
  flags: u32,
  norm_eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
#if VEC4
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
#else
@group(0) @binding(1) var<storage, read> X: array<f32>;
#endif
#include weights
#if F16_MATH
#include group_dot16
#endif
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
#include epilogue
#if NORM
// NORM (flags bit 3): X's rows go through RMSNorm with this weight as they are read.
@group(0) @binding(5) var<storage, read> NormW: array<f32>;
#endif

const OUTS: u32 = WG / LANES;

#if !SUBGROUPS
var<workgroup> red: array<vec4<f32>, WG>;
#endif
// SWIGLU: each output's sums, so the thread of a gate column reads its up column's.
var<workgroup> outs: array<vec4<f32>, OUTS>;
#if NORM
// NORM: the rows' sums of squares, reduced in rmsnorm.wgsl's order.
var<workgroup> nred: array<vec4<f32>, WG>;

const FLAG_NORM: u32 = 8u;

// Element i of row m of X (the NORM pre-pass).
fn x_at(m: u32, i: u32) -> f32 {
#if VEC4
  return X[(m * p.x_stride + i) / 4u][(m * p.x_stride + i) % 4u];
#else
  return X[m * p.x_stride + i];
#endif
}

// NormW[4g .. 4g+3], 0 beyond K.
fn load_nw(g: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  for (var e = 0u; e < 4u; e++) {
    if (4u * g + e < p.K) { v[e] = NormW[4u * g + e]; }
  }
  return v;
}
#endif

// Element k of row m of X, 0 beyond K.
fn load_x(m: u32, g: u32) -> vec4<f32> {
#if VEC4
  return X[(m * p.x_stride) / 4u + g];
#else
  var v = vec4<f32>(0.0);
  let base = m * p.x_stride;
  let k = 4u * g;
  for (var e = 0u; e < 4u; e++) {
    if (k + e < p.K) { v[e] = X[base + k + e]; }
  }
  return v;
#endif
}

fn load_w(n: u32, g: u32) -> vec4<f32> {
#if VEC4
  return w_vec4((n * p.K) / 4u + g);
#else
  var v = vec4<f32>(0.0);
  let base = n * p.K;
  let k = 4u * g;
  for (var e = 0u; e < 4u; e++) {
    if (k + e < p.K) { v[e] = w_at(base + k + e); }
  }
  return v;
#endif
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let lane = t % LANES;
  let n = wg.x * OUTS + t / LANES;
  let m0 = wg.y * ROWS;
  let groups = (p.K + 3u) / 4u;
  let rounds = (groups + LANES - 1u) / LANES;
  let n_ok = n < p.N;
  let n_safe = select(0u, n, n_ok);

#if NORM
  // NORM: rmsnorm.wgsl's arithmetic for the rows of this workgroup, all four at once (thread t sums
  // x^2 over i = t, t+WG, ... with fma, then a binary tree over the WG threads; per component
  // exactly rmsnorm's order, and WG is its workgroup size), so a normed row is bitwise its output.
  let norm = (p.flags & FLAG_NORM) != 0u;
  var inv = vec4<f32>(1.0);
  if (norm) {
    var ss = vec4<f32>(0.0);
    for (var i = t; i < p.K; i += WG) {
      let v = vec4<f32>(x_at(min(m0, p.M - 1u), i), x_at(min(m0 + 1u, p.M - 1u), i), x_at(min(m0 + 2u, p.M - 1u), i), x_at(min(m0 + 3u, p.M - 1u), i));
      ss = fma(v, v, ss);
    }
    nred[t] = ss;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
      if (t < s) { nred[t] = nred[t] + nred[t + s]; }
      workgroupBarrier();
    }
    inv = inverseSqrt(nred[0] / f32(p.K) + p.norm_eps);
  }
#endif

  // acc[r] is the partial of activation row m0 + r.
  var acc = vec4<f32>(0.0);
  for (var i = 0u; i < rounds; i++) {
    let g = lane + i * LANES;
    if (g < groups) {
      let w = load_w(n_safe, g);
      var xs: array<vec4<f32>, 4>;
      for (var r = 0u; r < ROWS; r++) {
        let m = min(m0 + r, p.M - 1u);
        xs[r] = load_x(m, g);
      }
#if NORM
      if (norm) {
        // rmsnorm.wgsl's w * (x * inv), element by element.
        let nw = load_nw(g);
        for (var r = 0u; r < ROWS; r++) { xs[r] = nw * (xs[r] * inv[r]); }
      }
#endif
#if F16_MATH
      acc = vec4<f32>(group_dot16(xs[0], w, acc.x), group_dot16(xs[1], w, acc.y), group_dot16(xs[2], w, acc.z), group_dot16(xs[3], w, acc.w));
#else
      // Per row: x, y, z, w of the group in order.
      acc = fma(vec4<f32>(xs[0].x, xs[1].x, xs[2].x, xs[3].x), vec4<f32>(w.x), acc);
      acc = fma(vec4<f32>(xs[0].y, xs[1].y, xs[2].y, xs[3].y), vec4<f32>(w.y), acc);
      acc = fma(vec4<f32>(xs[0].z, xs[1].z, xs[2].z, xs[3].z), vec4<f32>(w.z), acc);
      acc = fma(vec4<f32>(xs[0].w, xs[1].w, xs[2].w, xs[3].w), vec4<f32>(w.w), acc);
#endif
    }
  }

  // Lane tree: stride LANES/2 down to 1; lane 0 ends with the sum.
#if SUBGROUPS
  for (var s = LANES / 2u; s > 0u; s = s / 2u) {
    acc = acc + subgroupShuffleXor(acc, s);
  }
#else
  for (var s = LANES / 2u; s > 0u; s = s / 2u) {
    red[t] = acc;
    workgroupBarrier();
    if (lane < s) { acc = acc + red[t + s]; }
    workgroupBarrier();
  }
#endif

  if ((p.flags & FLAG_SWIGLU) != 0u) {
    // Gate and up columns are neighbours (n even, n + 1), both in this workgroup (OUTS is even).
    let o = t / LANES;
    if (lane == 0u) { outs[o] = acc; }
    workgroupBarrier();
    if (lane == 0u && n_ok && (n & 1u) == 0u) {
      let up = outs[o + 1u];
      for (var r = 0u; r < ROWS; r++) {
        let m = m0 + r;
        if (m < p.M) { store_swiglu(m, n, acc[r], up[r]); }
      }
    }
    return;
  }
  if (lane == 0u && n_ok) {
    for (var r = 0u; r < ROWS; r++) {
      let m = m0 + r;
      if (m < p.M) { store_y(m, n, acc[r]); }
    }
  }
}
