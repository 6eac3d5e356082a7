// Weight storage in F32, F16, BF16 or Q4, read as f32. Declares `W` at binding W_BINDING.
// Booleans: W_F16, W_BF16, W_Q4 (none: F32), SHADER_F16 (F16 read as f16, else unpacked from u32
// pairs, which works without the shader-f16 feature), VEC4 (w_vec4 reads 4 consecutive values;
// otherwise w_at reads one). BF16 is kept raw and widened here: bits << 16 is the f32.
// Q4 (src/model/quantize-q4.ts): u32 words of 8 nibbles in element order (low first), then from
// word p.N * p.K / 8 the f16 scales, 2 per word, one per 32 elements; a value is (q - 8) * scale,
// exact in f32. Only for kernels whose Params `p` has N (rows of this chunk) and K.

#if W_F16
#if SHADER_F16
#if VEC4
@group(0) @binding(W_BINDING) var<storage, read> W: array<vec4<f16>>;
#else
@group(0) @binding(W_BINDING) var<storage, read> W: array<f16>;
#endif
#else
#if VEC4
@group(0) @binding(W_BINDING) var<storage, read> W: array<vec2<u32>>;
#else
@group(0) @binding(W_BINDING) var<storage, read> W: array<u32>;
#endif
#endif
#elif W_BF16
#if VEC4
@group(0) @binding(W_BINDING) var<storage, read> W: array<vec2<u32>>;
#else
@group(0) @binding(W_BINDING) var<storage, read> W: array<u32>;
#endif
#elif W_Q4
@group(0) @binding(W_BINDING) var<storage, read> W: array<u32>;
#else
#if VEC4
@group(0) @binding(W_BINDING) var<storage, read> W: array<vec4<f32>>;
#else
@group(0) @binding(W_BINDING) var<storage, read> W: array<f32>;
#endif
#endif

fn bf16_pair(bits: u32) -> vec2<f32> {
  return vec2<f32>(bitcast<f32>(bits << 16u), bitcast<f32>(bits & 0xffff0000u));
}

#if W_Q4
// The scale of elements 32 j .. 32 j + 31.
fn q4_scale(j: u32) -> f32 {
  let pair = unpack2x16float(W[(p.N * p.K) / 8u + (j >> 1u)]);
  return select(pair.x, pair.y, (j & 1u) == 1u);
}
#endif

#if VEC4
// Values 4*i .. 4*i+3.
fn w_vec4(i: u32) -> vec4<f32> {
#if W_F16
#if SHADER_F16
  return vec4<f32>(W[i]);
#else
  let q = W[i];
  return vec4<f32>(unpack2x16float(q.x), unpack2x16float(q.y));
#endif
#elif W_BF16
  let q = W[i];
  return vec4<f32>(bf16_pair(q.x), bf16_pair(q.y));
#elif W_Q4
  // Nibbles 4i .. 4i+3: half (i % 2) of word i / 2; all four in group i / 8.
  let bits = W[i >> 1u] >> ((i & 1u) * 16u);
  let q = vec4<u32>(bits, bits >> 4u, bits >> 8u, bits >> 12u) & vec4<u32>(0xfu);
  return (vec4<f32>(q) - vec4<f32>(8.0)) * q4_scale(i >> 3u);
#else
  return W[i];
#endif
}
#else
// Value i.
fn w_at(i: u32) -> f32 {
#if W_F16
#if SHADER_F16
  return f32(W[i]);
#else
  let pair = unpack2x16float(W[i >> 1u]);
  return select(pair.x, pair.y, (i & 1u) == 1u);
#endif
#elif W_BF16
  let pair = bf16_pair(W[i >> 1u]);
  return select(pair.x, pair.y, (i & 1u) == 1u);
#elif W_Q4
  let q = (W[i >> 3u] >> ((i & 7u) * 4u)) & 0xfu;
  return (f32(q) - 8.0) * q4_scale(i >> 5u);
#else
  return W[i];
#endif
}
#endif
