// Arithmetic probe: ITERS rounds of 4 independent vec4 fma chains per thread (32 flops per round
// per chain pair), results written so nothing is dead. Defines: WG, ITERS.

struct Params {
  seed: f32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let s = p.seed + f32(gid.x) * 1e-7;
  var a = vec4<f32>(s, s + 0.1, s + 0.2, s + 0.3);
  var b = vec4<f32>(s + 0.4, s + 0.5, s + 0.6, s + 0.7);
  var c = vec4<f32>(s + 0.8, s + 0.9, s + 1.0, s + 1.1);
  var d = vec4<f32>(s + 1.2, s + 1.3, s + 1.4, s + 1.5);
  let m = vec4<f32>(0.999999);
  let k = vec4<f32>(1e-6);
  for (var i = 0u; i < ITERS; i++) {
    a = fma(a, m, k);
    b = fma(b, m, k);
    c = fma(c, m, k);
    d = fma(d, m, k);
  }
  let v = a + b + c + d;
  out[gid.x] = v.x + v.y + v.z + v.w;
}
