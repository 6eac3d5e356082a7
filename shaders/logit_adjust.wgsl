// Penalties and logit bias on the logits rows of one output chunk, in place, before argmax or
// sampling (src/sampling/penalties.ts states the semantics; src/reference/penalties.ts is the
// float64 reference). One invocation per entry; an entry is one (row, token) pair, and a row's
// tokens are distinct, so no two invocations touch the same logit: the result is the same in any
// order. Rows without entries are not touched (an unpenalized batch dispatches nothing).
//   l = logits[(row - first_row) * stride + token]
//   repetition (token in the prompt or the output):  l = l > 0 ? l / rep : l * rep
//   frequency and presence (count = occurrences in the output):  l -= freq * count + presence * (count > 0)
//   bias:  l += bias
// Entries whose row is outside [first_row, first_row + rows) belong to another chunk: skipped.
// Defines: WG.

struct Params {
  entries: u32,
  first_row: u32,
  rows: u32,
  stride: u32,
}

// 32 bytes per entry; packPenaltyEntries in src/kernels/logit-adjust.ts writes it.
struct Entry {
  row: u32,
  token: u32,
  count: f32,
  in_context: u32,
  bias: f32,
  freq: f32,
  presence: f32,
  rep: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> entries: array<Entry>;
@group(0) @binding(2) var<storage, read_write> logits: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * WG + gid.x;
  if (i >= p.entries) { return; }
  let e = entries[i];
  if (e.row < p.first_row || e.row >= p.first_row + p.rows) { return; }
  let at = (e.row - p.first_row) * p.stride + e.token;
  var l = logits[at];
  if (e.in_context != 0u) {
    l = select(l * e.rep, l / e.rep, l > 0.0);
  }
  if (e.count > 0.0) {
    l = l - (e.freq * e.count + e.presence);
  }
  logits[at] = l + e.bias;
}
