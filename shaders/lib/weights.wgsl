// Weight storage in F32, F16 or BF16, read as f32. Declares `W` at binding W_BINDING.
// Booleans: W_F16, W_BF16 (neither: F32), SHADER_F16 (F16 read as f16, else unpacked from u32
// pairs, which works without the shader-f16 feature), VEC4 (w_vec4 reads 4 consecutive values;
// otherwise w_at reads one). BF16 is kept raw and widened here: bits << 16 is the f32.

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
#else
  return W[i];
#endif
}
#endif
