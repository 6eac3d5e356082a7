// out[t, :] = E[tokens[t] - row_start, :] for the tokens whose id falls in this chunk of E's rows
// (a large embedding is split by row range to fit storage bindings: one dispatch per chunk).
// Defines: WG, W_BINDING = 2, W_F16 / W_BF16 / SHADER_F16 (lib/weights.wgsl; W_Q4 false: the table is never quantized), VEC4 = false.

#if SHADER_F16
enable f16;
#endif

struct Params {
  T: u32,
  H: u32,
  row_start: u32,
  row_count: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
#include weights
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = (wg.y * nwg.x + wg.x) * WG + lid;
  if (i >= p.T * p.H) { return; }
  let t = i / p.H;
  let c = i % p.H;
  let row = tokens[t] - p.row_start; // wraps to a huge value below row_start
  if (row < p.row_count) { out[i] = w_at(row * p.H + c); }
}
