// The second half of split attention (attention_paged.wgsl with PARTIAL): merge a token's splits'
// (max, sum, output) in split order, with the same operations the one-workgroup form uses, and
// write output / sum. One workgroup per (query head, token); thread j owns dims j, j+WG, ...
// Defines: WG, SPLIT_CHUNKS, CHUNK (to count the token's splits from its position).

struct Params {
  T: u32,
  heads: u32,
  head_dim: u32,
  max_splits: u32,
  out_stride: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const NEG: f32 = -3.0e38;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) j: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let h = wg.x;
  let t = wg.y;
  let chunks = (positions[t] + 1u + CHUNK - 1u) / CHUNK;
  let splits = (chunks + SPLIT_CHUNKS - 1u) / SPLIT_CHUNKS;
  let row = (t * p.heads + h) * p.max_splits;
  for (var dim = j; dim < p.head_dim; dim += WG) {
    var m = NEG;
    var l = 0.0;
    var o = 0.0;
    for (var sp = 0u; sp < splits; sp++) {
      let base = (row + sp) * (p.head_dim + 2u);
      let ms = partials[base];
      let m_new = max(m, ms);
      let a = exp(m - m_new);
      let b = exp(ms - m_new);
      // The same fma's as the one-workgroup form (attention_paged.wgsl), so the bits agree.
      l = fma(l, a, partials[base + 1u] * b);
      m = m_new;
      o = fma(o, a, partials[base + 2u + dim] * b);
    }
    out[t * p.out_stride + h * p.head_dim + dim] = o / l;
  }
}
