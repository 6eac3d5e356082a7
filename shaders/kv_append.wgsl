// Copy the new tokens' K and V (columns of the fused qkv rows) into their KV-cache slots.
// Cache layout per layer: [slot][kv_dim], slot = page * page_size + offset in page.
// A slot of 0xffffffff skips the row (padding). Defines: WG.

struct Params {
  T: u32,
  kv_dim: u32,
  row_stride: u32,
  k_offset: u32,
  v_offset: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> slots: array<u32>;
@group(0) @binding(3) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(4) var<storage, read_write> v_cache: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = (wg.y * nwg.x + wg.x) * WG + lid;
  if (i >= p.T * p.kv_dim) { return; }
  let t = i / p.kv_dim;
  let c = i % p.kv_dim;
  let slot = slots[t];
  if (slot == 0xffffffffu) { return; }
  k_cache[slot * p.kv_dim + c] = qkv[t * p.row_stride + p.k_offset + c];
  v_cache[slot * p.kv_dim + c] = qkv[t * p.row_stride + p.v_offset + c];
}
