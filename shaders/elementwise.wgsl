// Elementwise ops, one variant each (exactly one define true):
//   ADD       y[i] += x[i]                                  (residual)
//   SILU_MUL  y[t, j] = silu(gu[t, j]) * gu[t, I + j]        (gate and up fused in one matmul)
//   BIAS      y[t * stride + j] += b[j], j < n               (q/k/v biases)
// Defines: WG, ADD, SILU_MUL, BIAS.

struct Params {
  count: u32,
  n: u32,
  stride: u32,
  _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = (wg.y * nwg.x + wg.x) * WG + lid;
  if (i >= p.count) { return; }
#if ADD
  y[i] = y[i] + a[i];
#elif SILU_MUL
  let t = i / p.n;
  let j = i % p.n;
  let g = a[t * 2u * p.n + j];
  let u = a[t * 2u * p.n + p.n + j];
  y[i] = g / (1.0 + exp(-g)) * u;
#elif BIAS
  let t = i / p.n;
  let j = i % p.n;
  y[t * p.stride + j] = y[t * p.stride + j] + a[j];
#endif
}
