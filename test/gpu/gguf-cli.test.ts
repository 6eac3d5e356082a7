// `webslo generate --model file.gguf --prompt TEXT --json` as a user runs it: the CLI tokenizes the
// prompt with the tokenizer built from the GGUF file's own vocabulary (here the tiny-qwen2
// fixture's 32k SentencePiece one) and decodes the answer with it. Checked against references
// that never pass through webslo's GGUF tokenizer: the fixture's tokenizer.json encodes the prompt,
// the float64 reference model on the fixture folder's weights continues it greedily, and the
// tokenizer.json decodes that continuation.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ggufFromHfFolder } from '../../bench/gguf/from-hf.js';
import { loadModelFiles, tensorToFloat64 } from '../../src/model/load.js';
import { nodeDirectorySource } from '../../src/model/source.js';
import { ReferenceModel } from '../../src/reference/model.js';
import { TextTokenizer } from '../../src/tokenizer/tokenizer.js';
import { fixtureDir } from '../helpers/fixtures.js';
import { gpuConfig, legScope } from './gpu-config.js';

const dir = mkdtempSync(join(tmpdir(), 'webslo-gguf-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Like cli.test.ts: one spawned process, whose behaviour does not depend on the adapter; the full leg runs it.
describe.skipIf(legScope() !== 'full')('webslo generate on a GGUF file with its own tokenizer', () => {
  it("encodes the prompt and decodes the greedy answer as the fixture's tokenizer.json and reference model do", async () => {
    const path = join(dir, 'tiny-qwen2.gguf');
    writeFileSync(path, ggufFromHfFolder(fixtureDir('tiny-qwen2'), 'F32'));
    const prompt = 'Hello world: naïve café, 日本語 🙂\n\tcode(x) 12345';
    const n = 8;
    const config = gpuConfig();
    const extra = config === 'no-f16' ? ['--no-f16'] : config === 'no-subgroups' ? ['--no-subgroups'] : [];
    const r = spawnSync(process.execPath, ['bin/webslo.mjs', 'generate', '--model', path, '--prompt', prompt, '--max-tokens', String(n), '--json', '--ignore-eos', ...extra], {
      encoding: 'utf8',
      timeout: 300_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as { token_ids: number[]; text: string };

    const folder = await loadModelFiles(nodeDirectorySource(fixtureDir('tiny-qwen2')));
    const tok = new TextTokenizer(
      JSON.parse(readFileSync(join(fixtureDir('tiny-qwen2'), 'tokenizer.json'), 'utf8')),
      JSON.parse(readFileSync(join(fixtureDir('tiny-qwen2'), 'tokenizer_config.json'), 'utf8')),
      folder.config.eosTokenIds,
    );
    // The file says add_bos_token false (bench/gguf/from-hf writes it so): no BOS, as llama.cpp on it.
    const ids = tok.encode(prompt, { addSpecialTokens: false });
    expect(ids.length).toBeGreaterThan(10);
    const expected = new ReferenceModel(folder.config, (name) => tensorToFloat64(folder.tensors.get(name)!)).greedy(ids, n);
    expect(got.token_ids).toEqual(expected);
    expect(got.text).toBe(tok.decode(expected));
  }, 600_000);
});
