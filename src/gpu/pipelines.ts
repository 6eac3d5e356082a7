// Kernels and the pipeline cache. A kernel is one WGSL file plus its binding list; a variant is a
// define set. Pipelines are compiled once per (kernel, defines) and looked up synchronously on the
// hot path after `prepare`.
//
// Binding convention (every kernel): @group(0) @binding(0) is the kernel's params struct, a uniform
// read at a dynamic offset in the per-step params arena; bindings 1..n are storage buffers.

import { ShaderError } from './errors.js';
import { definesKey, preprocessWgsl, type WgslDefines, type WgslIncludes } from './wgsl.js';

export type StorageAccess = 'read' | 'read_write';

export interface KernelSpec {
  /** Unique name, e.g. 'matvec'; also the shader's file stem. */
  name: string;
  /** WGSL source before preprocessing. */
  source: string;
  /** Storage bindings 1..n in order. */
  storage: readonly StorageAccess[];
  /** Size of the params struct in bytes (a multiple of 16). */
  paramsBytes: number;
  entryPoint?: string;
  /** Library sources for `#include NAME`. */
  includes?: WgslIncludes;
}

export interface PreparedPipeline {
  readonly key: string;
  readonly kernel: KernelSpec;
  readonly pipeline: GPUComputePipeline;
  readonly bindGroupLayout: GPUBindGroupLayout;
  /** Identifies the layout in bind-group cache keys (params size and storage access list). */
  readonly layoutKey: string;
  readonly wgsl: string;
}

export class PipelineCache {
  private readonly ready = new Map<string, PreparedPipeline>();
  private readonly pending = new Map<string, Promise<PreparedPipeline>>();
  private readonly layouts = new Map<string, GPUBindGroupLayout>();
  compiled = 0;

  constructor(private readonly device: GPUDevice) {}

  static key(kernel: KernelSpec, defines: WgslDefines): string {
    return `${kernel.name}|${definesKey(defines)}`;
  }

  /** The compiled pipeline, if `prepare` finished for this variant. */
  get(kernel: KernelSpec, defines: WgslDefines): PreparedPipeline | undefined {
    return this.ready.get(PipelineCache.key(kernel, defines));
  }

  /** Compile (once) and return the pipeline for this variant. */
  prepare(kernel: KernelSpec, defines: WgslDefines): Promise<PreparedPipeline> {
    const key = PipelineCache.key(kernel, defines);
    const hit = this.ready.get(key);
    if (hit) return Promise.resolve(hit);
    let p = this.pending.get(key);
    if (!p) {
      p = this.compile(key, kernel, defines).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return p;
  }

  private layoutFor(kernel: KernelSpec): GPUBindGroupLayout {
    if (kernel.paramsBytes % 16 !== 0 || kernel.paramsBytes <= 0) {
      throw new ShaderError(kernel.name, `paramsBytes must be a positive multiple of 16, got ${kernel.paramsBytes}`);
    }
    const key = `${kernel.paramsBytes}|${kernel.storage.join(',')}`;
    let layout = this.layouts.get(key);
    if (!layout) {
      const entries: GPUBindGroupLayoutEntry[] = [
        {
          binding: 0,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: 'uniform', hasDynamicOffset: true, minBindingSize: kernel.paramsBytes },
        },
        ...kernel.storage.map((access, i): GPUBindGroupLayoutEntry => ({
          binding: i + 1,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: access === 'read' ? 'read-only-storage' : 'storage' },
        })),
      ];
      layout = this.device.createBindGroupLayout({ entries, label: `layout ${key}` });
      this.layouts.set(key, layout);
    }
    return layout;
  }

  private async compile(key: string, kernel: KernelSpec, defines: WgslDefines): Promise<PreparedPipeline> {
    const wgsl = preprocessWgsl(kernel.name, kernel.source, defines, kernel.includes);
    const module = this.device.createShaderModule({ code: wgsl, label: key });
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length > 0) {
      const text = errors.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join('\n');
      throw new ShaderError(kernel.name, `WGSL (${definesKey(defines) || 'no defines'}) failed to compile:\n${text}`);
    }
    const bindGroupLayout = this.layoutFor(kernel);
    let pipeline: GPUComputePipeline;
    try {
      pipeline = await this.device.createComputePipelineAsync({
        label: key,
        layout: this.device.createPipelineLayout({ bindGroupLayouts: [bindGroupLayout] }),
        compute: { module, entryPoint: kernel.entryPoint ?? 'main' },
      });
    } catch (e) {
      throw new ShaderError(kernel.name, `pipeline creation failed (${definesKey(defines)}): ${String(e)}`);
    }
    const prepared: PreparedPipeline = { key, kernel, pipeline, bindGroupLayout, layoutKey: `${kernel.paramsBytes}|${kernel.storage.join(',')}`, wgsl };
    this.ready.set(key, prepared);
    this.compiled++;
    return prepared;
  }
}
