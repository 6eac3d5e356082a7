// ids[out_offset + r] = argmax of logits row r (ties to the lowest id, as torch.argmax).
// One workgroup per row; thread j scans ids j, j+WG, ... keeping the first maximum, then a tree
// keeps the larger value, the lower id on ties: the result is the same in any order.
// Defines: WG (power of two).

struct Params {
  rows: u32,
  vocab: u32,
  stride: u32,
  out_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> ids: array<u32>;

var<workgroup> best_v: array<f32, WG>;
var<workgroup> best_i: array<u32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) j: u32, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = wg.y * nwg.x + wg.x;
  let live = r < p.rows;
  var bv = -3.4e38;
  var bi = 0xffffffffu;
  if (live) {
    for (var i = j; i < p.vocab; i += WG) {
      let v = logits[r * p.stride + i];
      if (v > bv || bi == 0xffffffffu) { bv = v; bi = i; }
    }
  }
  best_v[j] = bv;
  best_i[j] = bi;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (j < s) {
      let ov = best_v[j + s];
      let oi = best_i[j + s];
      if (oi != 0xffffffffu && (ov > best_v[j] || (ov == best_v[j] && oi < best_i[j]) || best_i[j] == 0xffffffffu)) {
        best_v[j] = ov;
        best_i[j] = oi;
      }
    }
    workgroupBarrier();
  }
  if (live && j == 0u) { ids[p.out_offset + r] = best_i[0]; }
}
