#!/usr/bin/env node
// Writes the demo page's embedded default model, public/models/webslo-demo/: a synthetic
// Llama-architecture model (hidden 256, 4 layers, F16 weights from a seeded PRNG) with the
// tiny-qwen2 fixture's tokenizer (vocab 32000). Its text is noise: it exists so the demo runs with
// no network and no download. Deterministic; skipped when the folder already holds this config.
// Plain Node (no TypeScript): `npm start`, `npm run build` and `npm run test:e2e` run it first.

import { Buffer } from 'node:buffer';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'public', 'models', 'webslo-demo');
const TOKENIZER_FROM = join(ROOT, 'test', 'fixtures', 'tiny-qwen2');
const SEED = 20260;

const HIDDEN = 256;
const LAYERS = 4;
const HEADS = 4;
const KV_HEADS = 2;
const INTER = 688;
const VOCAB = 32000;
const HEAD_DIM = HIDDEN / HEADS;

const CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: VOCAB,
  hidden_size: HIDDEN,
  intermediate_size: INTER,
  num_hidden_layers: LAYERS,
  num_attention_heads: HEADS,
  num_key_value_heads: KV_HEADS,
  max_position_embeddings: 2048,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  tie_word_embeddings: true,
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: 'silu',
  torch_dtype: 'float16',
  webslo_note: 'synthetic random weights (scripts/make-demo-model.mjs): the text it writes is noise',
};

/** mulberry32, as test/helpers/random.ts. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** float32 -> IEEE half bits, round to nearest even (the values here are small and finite). */
function toHalf(v) {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  const e = exp - 127 + 15;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

function tensors() {
  const q = HEADS * HEAD_DIM;
  const kv = KV_HEADS * HEAD_DIM;
  const list = [['model.embed_tokens.weight', [VOCAB, HIDDEN]]];
  for (let i = 0; i < LAYERS; i++) {
    const p = `model.layers.${i}.`;
    list.push(
      [`${p}input_layernorm.weight`, [HIDDEN]],
      [`${p}self_attn.q_proj.weight`, [q, HIDDEN]],
      [`${p}self_attn.k_proj.weight`, [kv, HIDDEN]],
      [`${p}self_attn.v_proj.weight`, [kv, HIDDEN]],
      [`${p}self_attn.o_proj.weight`, [HIDDEN, q]],
      [`${p}post_attention_layernorm.weight`, [HIDDEN]],
      [`${p}mlp.gate_proj.weight`, [INTER, HIDDEN]],
      [`${p}mlp.up_proj.weight`, [INTER, HIDDEN]],
      [`${p}mlp.down_proj.weight`, [HIDDEN, INTER]],
    );
  }
  list.push(['model.norm.weight', [HIDDEN]]);
  return list;
}

function safetensors() {
  const r = rng(SEED);
  const header = { __metadata__: { format: 'pt', note: 'webslo demo model: synthetic random weights' } };
  const parts = [];
  let offset = 0;
  for (const [name, shape] of tensors()) {
    const n = shape.reduce((a, b) => a * b, 1);
    const isNorm = name.endsWith('norm.weight');
    // Uniform with unit variance times 1/sqrt(fan-in) (embeddings: a tied LM head, kept modest).
    const scale = name.includes('embed') ? 0.5 : 1 / Math.sqrt(shape[1] ?? 1);
    const bits = new Uint16Array(n);
    for (let i = 0; i < n; i++) bits[i] = toHalf(isNorm ? 1 + 0.1 * (2 * r() - 1) : scale * (2 * r() - 1) * Math.sqrt(3));
    const bytes = new Uint8Array(bits.buffer);
    header[name] = { dtype: 'F16', shape, data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  let text = JSON.stringify(header);
  while ((8 + Buffer.byteLength(text)) % 8 !== 0) text += ' ';
  const json = Buffer.from(text);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return { bytes: Buffer.concat([len, json, ...parts]), size: 8 + json.length + offset };
}

function upToDate(configText) {
  const files = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
  if (!files.every((f) => existsSync(join(OUT, f)))) return false;
  if (readFileSync(join(OUT, 'config.json'), 'utf8') !== configText) return false;
  const meta = JSON.parse(readFileSync(join(OUT, 'model.meta.json'), 'utf8'));
  return meta.seed === SEED && statSync(join(OUT, 'model.safetensors')).size === meta.size;
}

const configText = `${JSON.stringify(CONFIG, null, 2)}\n`;
let fresh;
try {
  fresh = upToDate(configText);
} catch {
  fresh = false;
}
if (fresh) {
  console.log(`make-demo-model: ${OUT} is up to date`);
} else {
  const t0 = Date.now();
  mkdirSync(OUT, { recursive: true });
  const { bytes, size } = safetensors();
  writeFileSync(join(OUT, 'model.safetensors'), bytes);
  writeFileSync(join(OUT, 'tokenizer.json'), readFileSync(join(TOKENIZER_FROM, 'tokenizer.json')));
  writeFileSync(join(OUT, 'tokenizer_config.json'), readFileSync(join(TOKENIZER_FROM, 'tokenizer_config.json')));
  writeFileSync(join(OUT, 'model.meta.json'), `${JSON.stringify({ seed: SEED, size })}\n`);
  // config.json last: its presence with this content marks a complete folder.
  writeFileSync(join(OUT, 'config.json'), configText);
  console.log(`make-demo-model: wrote ${OUT} (${(size / 2 ** 20).toFixed(1)} MiB) in ${Date.now() - t0} ms`);
}
