// Rotary position embedding, in place, on `heads` heads of head_dim values that start at column
// col_offset of rows of row_stride floats (q and k inside the fused qkv rows). HF's rotate_half
// layout: value i pairs with i + head_dim/2. cos/sin come from a table computed in float64 on the
// CPU (exact for any position; GPU cos/sin lose accuracy at large angles).
// With QK_NORM (Qwen3) each head is first RMS-normalized with its own weight, in the same pass.
// One workgroup per (head, token). Defines: WG (power of two), QK_NORM, KV_APPEND.
// KV_APPEND: one dispatch for the whole qkv row (q heads, then kv_heads K heads, then kv_heads V
// heads, contiguous from col_offset): q and K are rotated in place, and K and V are also written to
// their KV-cache slots (slot 0xffffffff: padding, skipped), replacing kv_append.wgsl's pass. With
// QK_NORM the q heads use q_norm_w and the K heads k_norm_w.

struct Params {
  T: u32,
  heads: u32,
  head_dim: u32,
  row_stride: u32,
  col_offset: u32,
  eps: f32,
  kv_heads: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
// table[pos * half + i] = (cos, sin) of pos * inv_freq[i]
@group(0) @binding(3) var<storage, read> table: array<vec2<f32>>;
#if KV_APPEND
@group(0) @binding(4) var<storage, read> slots: array<u32>;
@group(0) @binding(5) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(6) var<storage, read_write> v_cache: array<f32>;
#if QK_NORM
@group(0) @binding(7) var<storage, read> q_norm_w: array<f32>;
@group(0) @binding(8) var<storage, read> k_norm_w: array<f32>;
#endif
#elif QK_NORM
@group(0) @binding(4) var<storage, read> norm_w: array<f32>;
#endif
#if QK_NORM
var<workgroup> red: array<f32, WG>;
#include row_sumsq
#endif

#if QK_NORM
fn norm_weight(is_q: bool, i: u32) -> f32 {
#if KV_APPEND
  if (is_q) { return q_norm_w[i]; }
  return k_norm_w[i];
#else
  return norm_w[i];
#endif
}
#endif

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) j: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let h = wg.x;
  let t = wg.y;
  let base = t * p.row_stride + p.col_offset + h * p.head_dim;
  let half = p.head_dim / 2u;
  let is_q = h < p.heads;
#if KV_APPEND
  let kv_dim = p.kv_heads * p.head_dim;
  let slot = slots[t];
  if (h >= p.heads + p.kv_heads) {
    // A V head: copied to the cache as it is.
    if (slot != 0xffffffffu) {
      let dst = slot * kv_dim + (h - p.heads - p.kv_heads) * p.head_dim;
      for (var i = j; i < p.head_dim; i += WG) { v_cache[dst + i] = x[base + i]; }
    }
    return;
  }
  let k_dst = slot * kv_dim + (h - p.heads) * p.head_dim;
  let to_cache = !is_q && slot != 0xffffffffu;
#endif
  var scale = 1.0;
#if QK_NORM
  scale = inverseSqrt(row_sum_squares(j, base, p.head_dim, true) / f32(p.head_dim) + p.eps);
#endif
  let pos = positions[t];
  for (var i = j; i < half; i += WG) {
    var a = x[base + i];
    var b = x[base + i + half];
#if QK_NORM
    a = norm_weight(is_q, i) * (a * scale);
    b = norm_weight(is_q, i + half) * (b * scale);
#endif
    let cs = table[pos * half + i];
    let ra = a * cs.x - b * cs.y;
    let rb = b * cs.x + a * cs.y;
    x[base + i] = ra;
    x[base + i + half] = rb;
#if KV_APPEND
    if (to_cache) {
      k_cache[k_dst + i] = ra;
      k_cache[k_dst + i + half] = rb;
    }
#endif
  }
}
