// Sum of squares of x[base + i] for i < n, computed by the whole workgroup: thread j takes
// i = j, j+WG, ... (fma, increasing i), then a binary tree over the WG threads. The order depends
// only on n and WG. Needs module-scope `x` (f32 array) and `var<workgroup> red: array<f32, WG>`;
// call from uniform control flow (it has barriers). `live` false contributes zeros.
fn row_sum_squares(j: u32, base: u32, n: u32, live: bool) -> f32 {
  var acc = 0.0;
  if (live) {
    for (var i = j; i < n; i += WG) {
      let v = x[base + i];
      acc = fma(v, v, acc);
    }
  }
  red[j] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (j < s) { red[j] = red[j] + red[j + s]; }
    workgroupBarrier();
  }
  return red[0];
}
