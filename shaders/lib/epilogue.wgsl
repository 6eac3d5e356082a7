// The matmul epilogue, shared by matvec.wgsl and matmul_tiled.wgsl so both store identically.
// Params.flags: bit 0 ACCUMULATE (Y += result: the residual add), bit 1 BIAS (result + Bias[column]),
// bit 2 SWIGLU (W's rows are gate and up interleaved: columns 2i and 2i+1 of the product are
// gate_i and up_i, and Y[m, i] = silu(gate_i) * up_i is stored instead, y_stride = Y's row).
// The order is that of the separate passes it replaces: (X W^T + bias), then Y + that; SWIGLU is
// elementwise.wgsl's SILU_MUL expression.

@group(0) @binding(4) var<storage, read> Bias: array<f32>;

const FLAG_ACCUMULATE: u32 = 1u;
const FLAG_BIAS: u32 = 2u;
const FLAG_SWIGLU: u32 = 4u;

fn store_y(m: u32, n: u32, v: f32) {
  let col = p.y_col_offset + n;
  let i = m * p.y_stride + col;
  var r = v;
  if ((p.flags & FLAG_BIAS) != 0u) { r = r + Bias[col]; }
  if ((p.flags & FLAG_ACCUMULATE) != 0u) { r = Y[i] + r; }
  Y[i] = r;
}

// Columns n (even: a gate) and n + 1 (its up) of the product, SWIGLU mode.
fn store_swiglu(m: u32, n: u32, g: f32, u: f32) {
  Y[m * p.y_stride + (p.y_col_offset + n) / 2u] = g / (1.0 + exp(-g)) * u;
}
