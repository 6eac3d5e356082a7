// y[r, :] = w * (x[src_row, :] * inverseSqrt(mean(x[src_row, :]^2) + eps)), one workgroup per row.
// src_row = r, or row_index[index_offset + r] with GATHER (the final norm runs only on rows that need logits).
// Reduction order: thread j sums x[i]^2 for i = j, j+WG, ... (fma, increasing i), then a binary
// tree over the WG threads; it depends only on n and WG, never on the number of rows.
// Defines: WG (a power of two), GATHER.

struct Params {
  rows: u32,
  n: u32,
  eps: f32,
  x_stride: u32,
  y_stride: u32,
  index_offset: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
#if GATHER
@group(0) @binding(4) var<storage, read> row_index: array<u32>;
#endif

var<workgroup> red: array<f32, WG>;

#include row_sumsq

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) j: u32, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = wg.y * nwg.x + wg.x;
  let live = r < p.rows;
  var src = r;
#if GATHER
  if (live) { src = row_index[p.index_offset + r]; }
#endif
  let base = src * p.x_stride;
  let total = row_sum_squares(j, base, p.n, live);
  if (!live) { return; }
  let inv = inverseSqrt(total / f32(p.n) + p.eps);
  for (var i = j; i < p.n; i += WG) {
    y[r * p.y_stride + i] = w[i] * (x[base + i] * inv);
  }
}
