// Benchmark weights generated on the GPU: word i of the buffer gets deterministic pseudo-random
// values center + half_width * u, u uniform in [-1, 1), from an integer hash of (seed, element
// index). F32 (one value per u32 word, as its bits), or two halves per word (element 2i in the low
// half, 2i+1 in the high half, as the weights library reads them): F16 (pack2x16float) or BF16
// (the top 16 bits of the f32, truncated). Threads walk the words with a grid stride.
// Defines: WG, F16, BF16 (neither: F32).

struct Params {
  words: u32,
  seed: u32,
  threads: u32,
  _pad0: u32,
  center: f32,
  half_width: f32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;

// PCG-style 32-bit hash (Jarzynski & Olano, "Hash Functions for GPU Rendering", 2020).
fn pcg_hash(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

// The value of element `index` under `key` (= pcg_hash(seed)).
fn value(key: u32, index: u32) -> f32 {
  let h = pcg_hash(index ^ key);
  let u = f32(h >> 8u) * (2.0 / 16777216.0) - 1.0; // 24 bits -> [-1, 1)
  return p.center + p.half_width * u;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let key = pcg_hash(p.seed);
  for (var i = gid.x; i < p.words; i += p.threads) {
#if F16
    out[i] = pack2x16float(vec2<f32>(value(key, 2u * i), value(key, 2u * i + 1u)));
#elif BF16
    let lo = bitcast<u32>(value(key, 2u * i)) >> 16u;
    let hi = bitcast<u32>(value(key, 2u * i + 1u)) & 0xffff0000u;
    out[i] = lo | hi;
#else
    out[i] = bitcast<u32>(value(key, i));
#endif
  }
}
