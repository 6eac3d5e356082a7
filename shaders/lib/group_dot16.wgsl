// The f16-math group product (F16_MATH, needs `enable f16`): x and w rounded to f16, the four
// products summed in f16 in order x, y, z, w, the result added to the f32 lane accumulator. The
// lane/tree structure around it is unchanged, so matvec and tiled stay bitwise equal in this mode.
// Values beyond f16's range (65504) overflow: this path is for models whose activations stay small.
fn group_dot16(x: vec4<f32>, w: vec4<f32>, acc: f32) -> f32 {
  let a = vec4<f16>(x);
  let b = vec4<f16>(w);
  var s = a.x * b.x;
  s = fma(a.y, b.y, s);
  s = fma(a.z, b.z, s);
  s = fma(a.w, b.w, s);
  return acc + f32(s);
}
