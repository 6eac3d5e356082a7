// Counter-based randomness: Philox-4x32-10 (Salmon et al., SC'11; Random123's philox4x32_10),
// bit-exact with philox4x32 in src/reference/sampling.ts (tested against Random123's known-answer
// vectors there). No u64 in WGSL: the 32x32 -> 64 product is built from 16-bit halves.
// sampling_uniform(seed, token index): counter (token_index, stream 0, 0, 0), key = the seed's
// (low, high) words; the uniform is the first word's high 24 bits / 2^24, exact in f32.

fn philox_mulhi(a: u32, b: u32) -> u32 {
  let a_lo = a & 0xffffu;
  let a_hi = a >> 16u;
  let b_lo = b & 0xffffu;
  let b_hi = b >> 16u;
  let ll = a_lo * b_lo;
  let lh = a_lo * b_hi;
  let hl = a_hi * b_lo;
  let hh = a_hi * b_hi;
  let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
  return hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
}

fn philox4x32(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = counter;
  var k = key;
  for (var round = 0u; round < 10u; round++) {
    if (round > 0u) {
      k = k + vec2<u32>(0x9e3779b9u, 0xbb67ae85u);
    }
    let hi0 = philox_mulhi(0xd2511f53u, c.x);
    let lo0 = 0xd2511f53u * c.x;
    let hi1 = philox_mulhi(0xcd9e8d57u, c.z);
    let lo1 = 0xcd9e8d57u * c.z;
    c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
  }
  return c;
}

/** The sampling draw in [0, 1) for (seed, token index); stream 0. */
fn sampling_uniform(seed_lo: u32, seed_hi: u32, token_index: u32) -> f32 {
  let x = philox4x32(vec4<u32>(token_index, 0u, 0u, 0u), vec2<u32>(seed_lo, seed_hi)).x;
  return f32(x >> 8u) * (1.0 / 16777216.0);
}
