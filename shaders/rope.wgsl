// Rotary position embedding, in place, on `heads` heads of head_dim values that start at column
// col_offset of rows of row_stride floats (q and k inside the fused qkv rows). HF's rotate_half
// layout: value i pairs with i + head_dim/2. cos/sin come from a table computed in float64 on the
// CPU (exact for any position; GPU cos/sin lose accuracy at large angles).
// With QK_NORM (Qwen3) each head is first RMS-normalized with its own weight, in the same pass.
// One workgroup per (head, token). Defines: WG (power of two), QK_NORM.

struct Params {
  T: u32,
  heads: u32,
  head_dim: u32,
  row_stride: u32,
  col_offset: u32,
  eps: f32,
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
// table[pos * half + i] = (cos, sin) of pos * inv_freq[i]
@group(0) @binding(3) var<storage, read> table: array<vec2<f32>>;
#if QK_NORM
@group(0) @binding(4) var<storage, read> norm_w: array<f32>;
var<workgroup> red: array<f32, WG>;
#include row_sumsq
#endif

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) j: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let h = wg.x;
  let t = wg.y;
  let base = t * p.row_stride + p.col_offset + h * p.head_dim;
  let half = p.head_dim / 2u;
  var scale = 1.0;
#if QK_NORM
  scale = inverseSqrt(row_sum_squares(j, base, p.head_dim, true) / f32(p.head_dim) + p.eps);
#endif
  let pos = positions[t];
  for (var i = j; i < half; i += WG) {
    var a = x[base + i];
    var b = x[base + i + half];
#if QK_NORM
    a = norm_w[i] * (a * scale);
    b = norm_w[i + half] * (b * scale);
#endif
    let cs = table[pos * half + i];
    x[base + i] = a * cs.x - b * cs.y;
    x[base + i + half] = b * cs.x + a * cs.y;
  }
}
