// The model picker: the embedded demo model (an http folder on this server), a Hugging Face hub
// repo or one GGUF file in one ('org/name/file.gguf'; any endpoint; downloads cached in the Cache
// API), or a local folder of files. It turns the form into createEngine's options.

import type { CreateEngineOptions } from '../index.js';
import { byId } from './dom.js';

export const DEMO_MODEL_PATH = '/models/webslo-demo';
export const DEFAULT_HUB_REPO = 'HuggingFaceTB/SmolLM2-135M-Instruct';

export type ModelChoice = 'demo' | 'hub' | 'files';

export class ModelPicker {
  readonly select = byId<HTMLSelectElement>('model-choice');
  readonly repo = byId<HTMLInputElement>('hub-repo');
  readonly draft = byId<HTMLInputElement>('hub-draft');
  readonly endpoint = byId<HTMLInputElement>('hub-endpoint');
  readonly files = byId<HTMLInputElement>('model-files');
  readonly load = byId<HTMLButtonElement>('load-model');

  constructor() {
    this.repo.value ||= DEFAULT_HUB_REPO;
    this.endpoint.value ||= 'https://huggingface.co';
    this.select.addEventListener('change', () => this.showFields());
    this.showFields();
  }

  get choice(): ModelChoice {
    return this.select.value as ModelChoice;
  }

  private showFields(): void {
    byId('hub-fields').hidden = this.choice !== 'hub';
    byId('files-fields').hidden = this.choice !== 'files';
  }

  /** The model part of createEngine's options, or a message saying what is missing. */
  options(): Pick<CreateEngineOptions, 'model' | 'hubEndpoint' | 'draftModel'> | string {
    switch (this.choice) {
      case 'demo':
        return { model: `${location.origin}${DEMO_MODEL_PATH}` };
      case 'hub': {
        const repo = this.repo.value.trim();
        if (!repo) return 'Enter a repo id, e.g. HuggingFaceTB/SmolLM2-135M-Instruct, or a GGUF file in a repo, e.g. Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_0.gguf.';
        const endpoint = this.endpoint.value.trim().replace(/\/+$/, '');
        // A smaller model of the same family drafts tokens for speculative decoding.
        const draft = this.draft.value.trim();
        return { model: repo, ...(endpoint ? { hubEndpoint: endpoint } : {}), ...(draft ? { draftModel: draft } : {}) };
      }
      case 'files': {
        const list = [...(this.files.files ?? [])];
        if (list.length === 0) return 'Pick a model folder (config.json, *.safetensors, tokenizer.json).';
        return { model: list };
      }
    }
  }

  setBusy(busy: boolean): void {
    for (const c of [this.select, this.repo, this.draft, this.endpoint, this.files, this.load]) c.disabled = busy;
  }
}
