// Causal attention of a ragged batch over the paged KV cache. The token at absolute position pos
// attends to positions 0..pos of its own sequence, found through the sequence's block table (the
// new tokens' K/V were appended before this runs).
//
// Keys are visited in fixed chunks of CHUNK positions aligned to absolute positions (chunk c is
// positions c*CHUNK .. c*CHUNK+CHUNK-1), one key per thread, with an online softmax merged chunk
// after chunk in order within a split (SPLIT_CHUNKS chunks), and the splits' (max, sum, output)
// merged in split order. Every sum has an order fixed by the position alone, so a token's output is
// bitwise the same whatever else is in the batch and however its prompt was chunked.
//
// Two forms with the same arithmetic: the whole pass in one workgroup per (query head, token); or,
// with PARTIAL, one workgroup per (query head, token, split) writing that split's (max, sum,
// output) to `partials`, merged by attention_combine.wgsl (long contexts: many more workgroups).
//
// Defines: CHUNK (threads, a power of two), D_MAX (largest head_dim; each thread owns dims j,
// j+CHUNK, ... < head_dim), SPLIT_CHUNKS, PARTIAL.

struct Params {
  T: u32,
  heads: u32,
  kv_heads: u32,
  head_dim: u32,
  page_size: u32,
  max_blocks: u32,
  q_stride: u32,
  out_stride: u32,
  scale: f32,
  // PARTIAL: splits per (head, token) slot in `partials` (the batch's most).
  max_splits: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k_cache: array<f32>;
@group(0) @binding(3) var<storage, read> v_cache: array<f32>;
@group(0) @binding(4) var<storage, read> positions: array<u32>;
@group(0) @binding(5) var<storage, read> seq_of_token: array<u32>;
@group(0) @binding(6) var<storage, read> block_tables: array<u32>;
#if PARTIAL
// Per (token, head, split): max, sum, then head_dim outputs (stride head_dim + 2).
@group(0) @binding(7) var<storage, read_write> partials: array<f32>;
#else
@group(0) @binding(7) var<storage, read_write> out: array<f32>;
#endif

const DPT: u32 = (D_MAX + CHUNK - 1u) / CHUNK; // head dims per thread
const NEG: f32 = -3.0e38;

var<workgroup> q_s: array<f32, D_MAX>;
var<workgroup> red: array<f32, CHUNK>;
var<workgroup> p_s: array<f32, CHUNK>;
var<workgroup> slot_s: array<u32, CHUNK>;
var<workgroup> n_keys: u32;

@compute @workgroup_size(CHUNK)
fn main(@builtin(local_invocation_index) j: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let h = wg.x;
  let t = wg.y;
  let kvh = h / (p.heads / p.kv_heads);
  let kv_dim = p.kv_heads * p.head_dim;
  let seq = seq_of_token[t];
  if (j == 0u) { n_keys = positions[t] + 1u; }
  for (var i = j; i < p.head_dim; i += CHUNK) { q_s[i] = q[t * p.q_stride + h * p.head_dim + i]; }
  let n = workgroupUniformLoad(&n_keys);
  let chunks = (n + CHUNK - 1u) / CHUNK;
  let splits = (chunks + SPLIT_CHUNKS - 1u) / SPLIT_CHUNKS;
#if PARTIAL
  let first_split = wg.z;
  let end_split = min(wg.z + 1u, splits);
#else
  let first_split = 0u;
  let end_split = splits;
#endif

  // The running result over the splits merged so far.
  var m = NEG;
  var l = 0.0;
  var o: array<f32, DPT>;
  for (var sp = first_split; sp < end_split; sp++) {
    // This split's online softmax, chunk after chunk.
    var ms = NEG;
    var ls = 0.0;
    var os: array<f32, DPT>;
    let c_end = min((sp + 1u) * SPLIT_CHUNKS, chunks);
    for (var c = sp * SPLIT_CHUNKS; c < c_end; c++) {
      // Score of this thread's key.
      let pos = c * CHUNK + j;
      let valid = pos < n;
      var slot = 0u;
      var s = NEG;
      if (valid) {
        let page = block_tables[seq * p.max_blocks + pos / p.page_size];
        slot = page * p.page_size + pos % p.page_size;
        let kb = slot * kv_dim + kvh * p.head_dim;
        var acc = 0.0;
        for (var i = 0u; i < p.head_dim; i++) { acc = fma(q_s[i], k_cache[kb + i], acc); }
        s = acc * p.scale;
      }
      // Chunk maximum (exact in any order).
      red[j] = s;
      workgroupBarrier();
      for (var st = CHUNK / 2u; st > 0u; st = st / 2u) {
        if (j < st) { red[j] = max(red[j], red[j + st]); }
        workgroupBarrier();
      }
      let mc = red[0];
      workgroupBarrier();
      let e = select(0.0, exp(s - mc), valid);
      p_s[j] = e;
      slot_s[j] = slot;
      // Chunk sum: fixed tree.
      red[j] = e;
      workgroupBarrier();
      for (var st = CHUNK / 2u; st > 0u; st = st / 2u) {
        if (j < st) { red[j] = red[j] + red[j + st]; }
        workgroupBarrier();
      }
      let lc = red[0];
      let m_new = max(ms, mc);
      let a = exp(ms - m_new);
      let b = exp(mc - m_new);
      // Explicit fma: the order of every merge is pinned (a compiler may not contract differently).
      ls = fma(ls, a, lc * b);
      ms = m_new;
      let count = min(CHUNK, n - c * CHUNK);
      for (var k = 0u; k < DPT; k++) {
        let dim = j + k * CHUNK;
        if (dim < p.head_dim) {
          var acc = 0.0;
          for (var i = 0u; i < count; i++) {
            acc = fma(p_s[i], v_cache[slot_s[i] * kv_dim + kvh * p.head_dim + dim], acc);
          }
          os[k] = fma(os[k], a, acc * b);
        }
      }
      workgroupBarrier();
    }
#if PARTIAL
    let base = ((t * p.heads + h) * p.max_splits + sp) * (p.head_dim + 2u);
    if (j == 0u) {
      partials[base] = ms;
      partials[base + 1u] = ls;
    }
    for (var k = 0u; k < DPT; k++) {
      let dim = j + k * CHUNK;
      if (dim < p.head_dim) { partials[base + 2u + dim] = os[k]; }
    }
#else
    // Merge the split (attention_combine.wgsl does exactly this).
    let m_new = max(m, ms);
    let a = exp(m - m_new);
    let b = exp(ms - m_new);
    l = fma(l, a, ls * b);
    m = m_new;
    for (var k = 0u; k < DPT; k++) { o[k] = fma(o[k], a, os[k] * b); }
#endif
  }
#if !PARTIAL
  for (var k = 0u; k < DPT; k++) {
    let dim = j + k * CHUNK;
    if (dim < p.head_dim) { out[t * p.out_stride + h * p.head_dim + dim] = o[k] / l; }
  }
#endif
}
