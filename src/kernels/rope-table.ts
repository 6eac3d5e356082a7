// cos/sin of position * inv_freq for RoPE, computed on the CPU exactly as HF transformers computes
// them (float32 frequencies, angles and functions; see ropeCosSin), kept on the GPU and grown by
// doubling as longer positions appear. (WGSL's own cos/sin lose accuracy at large angles.)

import type { GpuRuntime } from '../gpu/runtime.js';
import { ropeCosSin, ropeInvFreq, type RopeScaling } from '../model/rope.js';

/** [positions, headDim/2] pairs (cos, sin) as f32. */
export function ropeTableData(invFreq: ArrayLike<number>, fromPos: number, toPos: number): Float32Array {
  const half = invFreq.length;
  const out = new Float32Array((toPos - fromPos) * half * 2);
  for (let pos = fromPos; pos < toPos; pos++) {
    for (let i = 0; i < half; i++) {
      const [c, s] = ropeCosSin(pos, invFreq[i]!);
      const o = ((pos - fromPos) * half + i) * 2;
      out[o] = c;
      out[o + 1] = s;
    }
  }
  return out;
}

export class RopeTable {
  private readonly invFreq: Float64Array;
  buffer: GPUBuffer;
  positions: number;

  constructor(
    private readonly rt: GpuRuntime,
    headDim: number,
    theta: number,
    scaling: RopeScaling | null,
    initialPositions = 1024,
  ) {
    this.invFreq = ropeInvFreq(headDim, theta, scaling);
    this.positions = initialPositions;
    this.buffer = rt.upload(ropeTableData(this.invFreq, 0, initialPositions), 'rope table');
  }

  /** Make positions 0..maxPos available (recreates the buffer when it grows). */
  ensure(maxPos: number): void {
    if (maxPos < this.positions) return;
    let n = this.positions;
    while (n <= maxPos) n *= 2;
    const next = this.rt.upload(ropeTableData(this.invFreq, 0, n), 'rope table');
    this.rt.destroyBuffer(this.buffer);
    this.buffer = next;
    this.positions = n;
  }

  destroy(): void {
    this.rt.destroyBuffer(this.buffer);
  }
}
