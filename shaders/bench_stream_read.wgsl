// Bandwidth probe: every thread streams vec4s with a grid stride and writes one sum (so the reads
// cannot be optimized away). Bytes read = the whole source buffer. Defines: WG.

struct Params {
  n_vec4: u32,
  threads: u32,
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> sums: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x;
  var acc = vec4<f32>(0.0);
  for (var i = t; i < p.n_vec4; i += p.threads) {
    acc += src[i];
  }
  if (t < p.threads) { sums[t] = acc.x + acc.y + acc.z + acc.w; }
}
