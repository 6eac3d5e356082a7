// Y[m, y_col_offset + n] = sum_k X[m, k] * W[n, k]   for many rows m (prefill).
//
// Same reduction order as matvec.wgsl, so the two give bitwise identical rows: lane l accumulates
// the vec4 groups g = l, l+LANES, ... in increasing g (fma x, y, z, w), then a binary lane tree.
// A workgroup computes a TM x TN tile with WG = LANES * (TM/4) * (TN/4) threads; each thread owns a
// 4x4 micro tile for one lane. Per k-step, GROUPS_PER_STEP groups of X and W go through workgroup
// memory; lane l takes local groups l, l+LANES, ... so each lane still sees its groups in order.
//
// Defines: LANES, TM, TN, GROUPS_PER_STEP (a multiple of LANES), W_F16 / W_BF16 / W_Q4 / SHADER_F16
// (weight storage, see lib/weights.wgsl), VEC4, SUBGROUPS, F16_MATH (group
// products in f16, lib/group_dot16.wgsl), ENABLE_F16.

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
  _pad0: u32,
  _pad1: u32,
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

const MX: u32 = TN / 4u;        // micro tiles across
const MY: u32 = TM / 4u;        // micro tiles down
const WG: u32 = LANES * MX * MY;
const A_SIZE: u32 = TM * GROUPS_PER_STEP;
const B_SIZE: u32 = TN * GROUPS_PER_STEP;
// The tiles, reused as the lane-tree scratch after the K loop (WG * 4 vec4).
const SHARED: u32 = max(A_SIZE + B_SIZE, WG * 4u);
var<workgroup> tile: array<vec4<f32>, SHARED>;

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
  let micro = t / LANES;
  let mx = micro % MX;
  let my = micro / MX;
  let n0 = wg.x * TN;
  let m0 = wg.y * TM;
  let groups = (p.K + 3u) / 4u;
  let steps = (groups + GROUPS_PER_STEP - 1u) / GROUPS_PER_STEP;

  // acc[i][j]: row my*4+i, column mx*4+j of the tile.
  var acc: array<vec4<f32>, 4>;
  for (var s = 0u; s < steps; s++) {
    let g0 = s * GROUPS_PER_STEP;
    // Stage the X rows and W rows of this k-step; groups past K (and rows past M, N) are zero.
    for (var i = t; i < A_SIZE; i += WG) {
      let r = i / GROUPS_PER_STEP;
      let g = g0 + i % GROUPS_PER_STEP;
      var v = vec4<f32>(0.0);
      if (m0 + r < p.M && g < groups) { v = load_x(m0 + r, g); }
      tile[i] = v;
    }
    for (var i = t; i < B_SIZE; i += WG) {
      let c = i / GROUPS_PER_STEP;
      let g = g0 + i % GROUPS_PER_STEP;
      var v = vec4<f32>(0.0);
      if (n0 + c < p.N && g < groups) { v = load_w(n0 + c, g); }
      tile[A_SIZE + i] = v;
    }
    workgroupBarrier();
    for (var q = 0u; q < GROUPS_PER_STEP / LANES; q++) {
      let u = lane + q * LANES;
      // Groups past K must not be accumulated at all (matvec skips them): same op sequence.
      if (g0 + u < groups) {
        var a: array<vec4<f32>, 4>;
        var b: array<vec4<f32>, 4>;
        for (var i = 0u; i < 4u; i++) {
          a[i] = tile[(my * 4u + i) * GROUPS_PER_STEP + u];
          b[i] = tile[A_SIZE + (mx * 4u + i) * GROUPS_PER_STEP + u];
        }
        let bx = vec4<f32>(b[0].x, b[1].x, b[2].x, b[3].x);
        let by = vec4<f32>(b[0].y, b[1].y, b[2].y, b[3].y);
        let bz = vec4<f32>(b[0].z, b[1].z, b[2].z, b[3].z);
        let bw = vec4<f32>(b[0].w, b[1].w, b[2].w, b[3].w);
        for (var i = 0u; i < 4u; i++) {
#if F16_MATH
          let c0 = acc[i];
          acc[i] = vec4<f32>(group_dot16(a[i], b[0], c0.x), group_dot16(a[i], b[1], c0.y), group_dot16(a[i], b[2], c0.z), group_dot16(a[i], b[3], c0.w));
#else
          var c = acc[i];
          c = fma(vec4<f32>(a[i].x), bx, c);
          c = fma(vec4<f32>(a[i].y), by, c);
          c = fma(vec4<f32>(a[i].z), bz, c);
          c = fma(vec4<f32>(a[i].w), bw, c);
          acc[i] = c;
#endif
        }
      }
    }
    workgroupBarrier();
  }

  // Lane tree, strides LANES/2 .. 1, exactly as in matvec.
#if SUBGROUPS
  for (var s = LANES / 2u; s > 0u; s = s / 2u) {
    for (var i = 0u; i < 4u; i++) { acc[i] = acc[i] + subgroupShuffleXor(acc[i], s); }
  }
#else
  for (var s = LANES / 2u; s > 0u; s = s / 2u) {
    for (var i = 0u; i < 4u; i++) { tile[t * 4u + i] = acc[i]; }
    workgroupBarrier();
    if (lane < s) {
      for (var i = 0u; i < 4u; i++) { acc[i] = acc[i] + tile[(t + s) * 4u + i]; }
    }
    workgroupBarrier();
  }
#endif

  if (lane == 0u) {
    for (var i = 0u; i < 4u; i++) {
      let m = m0 + my * 4u + i;
      for (var j = 0u; j < 4u; j++) {
        let n = n0 + mx * 4u + j;
        if (m < p.M && n < p.N) { Y[m * p.y_stride + p.y_col_offset + n] = acc[i][j]; }
      }
    }
  }
}
