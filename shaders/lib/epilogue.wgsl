// The matmul epilogue, shared by matvec.wgsl and matmul_tiled.wgsl so both store identically.
// Params.flags: bit 0 ACCUMULATE (Y += result: the residual add), bit 1 BIAS (result + Bias[column]).
// The order is that of the separate passes it replaces: (X W^T + bias), then Y + that.

@group(0) @binding(4) var<storage, read> Bias: array<f32>;

fn store_y(m: u32, n: u32, v: f32) {
  let col = p.y_col_offset + n;
  let i = m * p.y_stride + col;
  var r = v;
  if ((p.flags & 2u) != 0u) { r = r + Bias[col]; }
  if ((p.flags & 1u) != 0u) { r = Y[i] + r; }
  Y[i] = r;
}
