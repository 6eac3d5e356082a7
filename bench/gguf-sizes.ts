// Download size and GPU memory per model format, for one model's shapes (a synthetic model:
// fixed-seed weights, bench/synthetic-files.ts): the HF folder (safetensors F16, the size of the
// hub's BF16 files) as it is and quantized to q4 at load, and GGUF files as llama.cpp's converter and
// quantizer lay them out (bench/gguf/: Q4_0, and Q4_K_M's mix of Q4_K and Q6_K with llama.cpp's
// fallbacks for rows that are not whole super-blocks). Each is loaded by createEngine on whatever
// adapter this machine has; the GPU figure is the engine's own count of weight bytes it uploaded
// (`info.gpuWeightsBytes`), which does not depend on the adapter.
//
// Usage: npm run bench:gguf-sizes -- [--shape qwen2.5-0.5b] [--out bench/results/gguf-sizes.md]

import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEngine } from '../src/index.js';
import { PROFILES } from '../src/sim/profiles.js';
import { writeSyntheticModel } from './synthetic-files.js';
import { isShapeName, SHAPES } from './synthetic-model.js';

const MB = 1e6;

interface Row {
  format: string;
  download: number;
  quantize: string;
  gpuWeights: number;
}

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

export async function main(args: string[] = process.argv.slice(2)): Promise<void> {
  const shape = arg(args, '--shape') ?? 'qwen2.5-0.5b';
  if (!isShapeName(shape)) throw new RangeError(`--shape must be one of ${Object.keys(SHAPES).join(', ')}, got ${shape}`);
  const out = arg(args, '--out') ?? 'bench/results/gguf-sizes.md';
  const config = SHAPES[shape];
  const dir = mkdtempSync(join(tmpdir(), 'webslo-gguf-sizes-'));
  try {
    const t0 = performance.now();
    const files = writeSyntheticModel(config, dir, { gguf: ['Q4_0', 'Q4_K_M'] });
    console.log(`[gguf-sizes] ${shape}: files written in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    const folderBytes = readdirSync(files.folder).reduce((n, f) => n + statSync(join(files.folder, f)).size, 0);
    const cases: { format: string; model: string; download: number; quantize?: 'q4' }[] = [
      { format: 'safetensors F16 (BF16 is the same size)', model: files.folder, download: folderBytes },
      { format: 'safetensors F16, q4 at load', model: files.folder, download: folderBytes, quantize: 'q4' },
      { format: 'GGUF Q4_0', model: files.gguf.Q4_0!, download: statSync(files.gguf.Q4_0!).size },
      { format: 'GGUF Q4_K_M', model: files.gguf.Q4_K_M!, download: statSync(files.gguf.Q4_K_M!).size },
      { format: 'GGUF Q4_K_M, q4 at load', model: files.gguf.Q4_K_M!, download: statSync(files.gguf.Q4_K_M!).size, quantize: 'q4' },
    ];
    const rows: Row[] = [];
    let adapter = '';
    for (const c of cases) {
      const engine = await createEngine({
        model: c.model,
        worker: false,
        cache: false,
        ...(c.quantize ? { quantize: c.quantize } : {}),
        kvCacheBytes: 16 << 20,
        prefixCaching: false,
        profile: { ...(PROFILES.h200 as object), layers: config.numLayers },
      });
      adapter = engine.info.adapter;
      rows.push({ format: c.format, download: c.download, quantize: engine.info.quantize, gpuWeights: engine.info.gpuWeightsBytes });
      console.log(`[gguf-sizes] ${c.format}: download ${(c.download / MB).toFixed(0)} MB, GPU weights ${(engine.info.gpuWeightsBytes / MB).toFixed(0)} MB (${engine.info.quantize})`);
      await engine.unload();
    }
    const embedding = config.vocabSize * config.hiddenSize;
    const md = [
      `# Download size and GPU memory per format: ${shape} shapes`,
      '',
      `\`npm run bench:gguf-sizes -- --shape ${shape}\` (${new Date().toISOString().slice(0, 10)}; loaded on ${adapter}). A synthetic model with ${shape}'s shapes and fixed-seed weights; the sizes depend only on the shapes and formats. "GPU weights" is the engine's count of the weight bytes it uploaded (\`engine.info.gpuWeightsBytes\`); the KV cache comes on top. The embedding matrix alone is ${((embedding * 4) / MB).toFixed(0)} MB in F32${config.tieWordEmbeddings ? ' (tied: it is also the LM head)' : ' (the LM head as much again)'}.`,
      '',
      '| format | download (MB) | engine.info.quantize | GPU weights (MB) |',
      '|---|---:|---|---:|',
      ...rows.map((r) => `| ${r.format} | ${(r.download / MB).toFixed(0)} | ${r.quantize} | ${(r.gpuWeights / MB).toFixed(0)} |`),
      '',
    ].join('\n');
    writeFileSync(out, md);
    console.log(md);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
