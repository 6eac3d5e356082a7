// Y[m, y_col_offset + n] = sum_k X[m, k] * W[n, k]   for many rows m (prefill).
//
// Same reduction order as matvec.wgsl, so the two give bitwise identical rows: lane l accumulates
// the vec4 groups g = l, l+LANES, ... in increasing g (fma x, y, z, w), then a binary lane tree.
// A workgroup computes a TM x TN tile with WG = LANES * MX * MY threads; each thread owns an RM x RN
// micro tile (register tiling: RM + RN vec4 reads from workgroup memory feed RM * RN * 4 fma's) for
// one lane. Per k-step, GROUPS_PER_STEP groups of X and W go through workgroup memory; lane l takes
// local groups l, l+LANES, ... so each lane still sees its groups in order. Tile rows are PAD vec4
// longer than a k-step so that threads reading different rows of a tile hit different banks.
//
// Defines: LANES, RM, RN (micro tile, multiples of 4), MX, MY (micro tiles across, down),
// GROUPS_PER_STEP (a multiple of LANES), PAD (0 or 1), W_F16 / W_BF16 / W_Q4 / SHADER_F16 (weight
// storage, see lib/weights.wgsl), VEC4, SUBGROUPS, F16_MATH (group products in f16, lib/group_dot16.wgsl),
// ENABLE_F16.

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
  norm_eps: f32, // matvec's NORM only
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

const TM: u32 = MY * RM;
const TN: u32 = MX * RN;
const WG: u32 = LANES * MX * MY;
const CN: u32 = RN / 4u;        // vec4 columns of a micro tile
const ACC: u32 = RM * CN;       // vec4 accumulators per thread
const ROW: u32 = GROUPS_PER_STEP + PAD;
const A_SIZE: u32 = TM * ROW;
const B_SIZE: u32 = TN * ROW;
// The tiles, reused as the lane-tree scratch after the K loop (WG * 4 vec4 per round).
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

  // acc[i * CN + j]: row my*RM+i, columns mx*RN+4j .. +3 of the tile.
  var acc: array<vec4<f32>, ACC>;
  for (var s = 0u; s < steps; s++) {
    let g0 = s * GROUPS_PER_STEP;
    // Stage the X rows and W rows of this k-step; groups past K (and rows past M, N) are zero.
    for (var i = t; i < TM * GROUPS_PER_STEP; i += WG) {
      let r = i / GROUPS_PER_STEP;
      let u = i % GROUPS_PER_STEP;
      var v = vec4<f32>(0.0);
      if (m0 + r < p.M && g0 + u < groups) { v = load_x(m0 + r, g0 + u); }
      tile[r * ROW + u] = v;
    }
    for (var i = t; i < TN * GROUPS_PER_STEP; i += WG) {
      let c = i / GROUPS_PER_STEP;
      let u = i % GROUPS_PER_STEP;
      var v = vec4<f32>(0.0);
      if (n0 + c < p.N && g0 + u < groups) { v = load_w(n0 + c, g0 + u); }
      tile[A_SIZE + c * ROW + u] = v;
    }
    workgroupBarrier();
    for (var q = 0u; q < GROUPS_PER_STEP / LANES; q++) {
      let u = lane + q * LANES;
      // Groups past K must not be accumulated at all (matvec skips them): same op sequence.
      if (g0 + u < groups) {
        var a: array<vec4<f32>, RM>;
        var b: array<vec4<f32>, RN>;
        for (var i = 0u; i < RM; i++) { a[i] = tile[(my * RM + i) * ROW + u]; }
        for (var j = 0u; j < RN; j++) { b[j] = tile[A_SIZE + (mx * RN + j) * ROW + u]; }
        for (var j = 0u; j < CN; j++) {
          let b0 = b[4u * j];
          let b1 = b[4u * j + 1u];
          let b2 = b[4u * j + 2u];
          let b3 = b[4u * j + 3u];
#if !F16_MATH
          let bx = vec4<f32>(b0.x, b1.x, b2.x, b3.x);
          let by = vec4<f32>(b0.y, b1.y, b2.y, b3.y);
          let bz = vec4<f32>(b0.z, b1.z, b2.z, b3.z);
          let bw = vec4<f32>(b0.w, b1.w, b2.w, b3.w);
#endif
          for (var i = 0u; i < RM; i++) {
#if F16_MATH
            let c0 = acc[i * CN + j];
            acc[i * CN + j] = vec4<f32>(group_dot16(a[i], b0, c0.x), group_dot16(a[i], b1, c0.y), group_dot16(a[i], b2, c0.z), group_dot16(a[i], b3, c0.w));
#else
            var c = acc[i * CN + j];
            c = fma(vec4<f32>(a[i].x), bx, c);
            c = fma(vec4<f32>(a[i].y), by, c);
            c = fma(vec4<f32>(a[i].z), bz, c);
            c = fma(vec4<f32>(a[i].w), bw, c);
            acc[i * CN + j] = c;
#endif
          }
        }
      }
    }
    workgroupBarrier();
  }

  // Lane tree, strides LANES/2 .. 1, exactly as in matvec.
#if SUBGROUPS
  for (var s = LANES / 2u; s > 0u; s = s / 2u) {
    for (var i = 0u; i < ACC; i++) { acc[i] = acc[i] + subgroupShuffleXor(acc[i], s); }
  }
#else
  // Through workgroup memory, four accumulators per round (the scratch holds WG * 4 vec4).
  for (var r0 = 0u; r0 < ACC; r0 += 4u) {
    for (var s = LANES / 2u; s > 0u; s = s / 2u) {
      for (var i = 0u; i < 4u; i++) { tile[t * 4u + i] = acc[r0 + i]; }
      workgroupBarrier();
      if (lane < s) {
        for (var i = 0u; i < 4u; i++) { acc[r0 + i] = acc[r0 + i] + tile[(t + s) * 4u + i]; }
      }
      workgroupBarrier();
    }
  }
#endif

  if (lane == 0u && (p.flags & FLAG_SWIGLU) != 0u) {
    // Gate and up columns are neighbours (n even, n + 1), both in this micro tile (RN is even).
    for (var i = 0u; i < RM; i++) {
      let m = m0 + my * RM + i;
      for (var j = 0u; j < RN; j += 2u) {
        let n = n0 + mx * RN + j;
        if (m < p.M && n < p.N) { store_swiglu(m, n, acc[i * CN + j / 4u][j % 4u], acc[i * CN + j / 4u][j % 4u + 1u]); }
      }
    }
  } else if (lane == 0u) {
    for (var i = 0u; i < RM; i++) {
      let m = m0 + my * RM + i;
      for (var j = 0u; j < RN; j++) {
        let n = n0 + mx * RN + j;
        if (m < p.M && n < p.N) { store_y(m, n, acc[i * CN + j / 4u][j % 4u]); }
      }
    }
  }
}
