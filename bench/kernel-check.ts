// A standalone kernel correctness check at real sizes for a new adapter (no Vitest; bundled for the
// GPU machine like gpu-check): the matmul kernels (matvec and tiled, f32, f16 and q4 weights) against
// the float64 reference within the reduction-order error bound, matvec and tiled bitwise equal, at
// decode/prefill shapes of real models and one weight binding over 128 MiB (a whole LM head) where
// the device allows it; paged attention against the float64 reference at several contexts (KV
// scattered over pages in reverse order); argmax over a real vocabulary. Inputs are filled on the
// GPU and read back, so the reference sees exactly what the kernels read. Reports the subgroup size
// and storage binding the device granted; PASS/FAIL per check; exits 1 on any failure.
//
// Options: --quick (small sizes: a local smoke run on a software adapter).

import { describeCapabilities, GpuRuntime } from '../src/gpu/index.js';
import { LayerKernels } from '../src/kernels/layers.js';
import { MatmulKernels, weightBytes, type MatmulPath, type WeightDType } from '../src/kernels/matmul.js';
import { fromF16Array } from '../src/numeric/half.js';
import { dequantizeQ4, q4Bytes } from '../src/model/quantize-q4.js';
import { matmulAbsReference, matmulErrorBound, matmulReference } from '../src/reference/matmul.js';
import { argmaxRef, attentionRef } from '../src/reference/ops.js';
import { attentionCase, kvCacheBytes, PAGE_SIZE, setupAttention } from './attention.js';
import { gpuFill, shapeConfig, WEIGHT_HALF_WIDTH } from './synthetic-model.js';

const ATTENTION_TOLERANCE = 1e-4;

interface Outcome {
  ok: boolean;
  detail: string;
}

export async function main(args: string[]): Promise<number> {
  const start = performance.now();
  const quick = args.includes('--quick');
  const rt = await GpuRuntime.create({ maxInFlightSubmits: 2 });
  const caps = rt.capabilities;
  const lim = caps.limits;
  const binding = Math.min(lim.maxStorageBufferBindingSize, lim.maxBufferSize);
  console.log(`adapter: ${describeCapabilities(caps)}`);
  console.log(
    `granted: subgroups ${caps.features.subgroups ? `${caps.subgroupMinSize}-${caps.subgroupMaxSize}` : 'none'}, reduce lanes ${caps.reduceLanes}, ` +
      `max storage binding ${(lim.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB, max buffer ${(lim.maxBufferSize / 2 ** 20).toFixed(0)} MiB${quick ? '; --quick sizes' : ''}`,
  );
  let failed = 0;
  let passed = 0;
  const check = async (name: string, f: () => Promise<Outcome | null>): Promise<void> => {
    const t0 = performance.now();
    let o: Outcome | null;
    try {
      o = await f();
    } catch (e) {
      o = { ok: false, detail: `error: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}` };
    }
    const s = ((performance.now() - t0) / 1000).toFixed(1);
    if (o === null) return;
    if (o.ok) passed++;
    else failed++;
    console.log(`${o.ok ? 'PASS' : 'FAIL'} ${name.padEnd(40)} ${o.detail} (${s} s)`);
  };
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const readF32 = async (b: GPUBuffer): Promise<Float32Array> => new Float32Array(await rt.read(b));

  // 1. Matmul: decode (1 row, 8 rows), prefill (64 rows) shapes, and one big binding.
  const shapes = quick
    ? [
        { M: 1, N: 256, K: 1536 },
        { M: 8, N: 512, K: 1536 },
        { M: 64, N: 256, K: 256 },
      ]
    : [
        { M: 1, N: 1536, K: 1536 },
        { M: 8, N: 8960, K: 1536 },
        { M: 64, N: 2048, K: 1536 },
      ];
  const big = { M: 1, N: 151936, K: 1536 }; // Qwen2.5-1.5B's LM head: 890 MiB f32, 445 MiB f16
  // Every reduction-lane count the benchmarks sweep, each on its own device (the lane count is a
  // device-wide constant): subgroup shuffles run wherever the subgroup holds whole lane groups.
  for (const lanes of [caps.reduceLanes, ...(quick ? [32] : [8, 16, 32]).filter((l) => l !== caps.reduceLanes)]) {
    const tag = `lanes ${lanes}`;
    let lrt: GpuRuntime;
    try {
      lrt = lanes === caps.reduceLanes ? rt : await GpuRuntime.create({ maxInFlightSubmits: 2, reduceLanes: lanes });
    } catch (e) {
      await check(`matmul ${tag}`, async () => ({ ok: false, detail: `no device with ${lanes} reduce lanes: ${e instanceof Error ? e.message : String(e)}` }));
      continue;
    }
    for (const dtype of ['f32', 'f16', 'q4'] as WeightDType[]) {
      let k: MatmulKernels;
      // The 'wide' tiled geometry may not fit a device's workgroup storage at high lane counts.
      let kw: MatmulKernels | null = null;
      let wideNote = '';
      try {
        k = await MatmulKernels.create(lrt, dtype, false, 'compact');
        kw = await MatmulKernels.create(lrt, dtype, false, 'wide').catch((e: unknown) => {
          wideNote = `; wide: not available (${e instanceof Error ? e.message : String(e)})`;
          return null;
        });
      } catch (e) {
        await check(`matmul ${dtype} ${tag}`, async () => ({ ok: false, detail: `kernels not created: ${e instanceof Error ? e.message : String(e)}` }));
        continue;
      }
      const cases = [...shapes.map((s) => ({ ...s, big: false })), ...(lanes === caps.reduceLanes ? [{ ...big, big: true }] : [])];
      for (const c of cases) {
        const wBytes = dtype === 'q4' ? q4Bytes(c.N, c.K) : c.N * c.K * weightBytes(dtype);
        await check(`matmul ${dtype} ${tag} ${c.M}x${c.N}x${c.K}${c.big ? ` (${(wBytes / 2 ** 20).toFixed(0)} MiB binding)` : ''}`, async () => {
          if (c.big && (quick || wBytes > binding)) {
            console.log(
              `skip matmul ${dtype} ${c.M}x${c.N}x${c.K}: ${quick ? '--quick' : `a ${(wBytes / 2 ** 20).toFixed(0)} MiB binding exceeds this device's ${(binding / 2 ** 20).toFixed(0)} MiB`}`,
            );
            return null;
          }
          const w = lrt.createBuffer(wBytes, usage, 'W');
          const x = lrt.createBuffer(4 * c.M * c.K, usage, 'X');
          const y = lrt.createBuffer(4 * c.M * c.N, usage, 'Y');
          try {
            await gpuFill(lrt, [w], dtype, 0, WEIGHT_HALF_WIDTH, 11);
            await gpuFill(lrt, [x], 'f32', 0, 1, 12);
            const raw = await lrt.read(w);
            // q4: the reference multiplies by the dequantized float64 weights.
            const wv = dtype === 'q4' ? dequantizeQ4(new Uint8Array(raw), c.N, c.K) : dtype === 'f16' ? fromF16Array(new Uint16Array(raw)) : new Float32Array(raw);
            const xv = new Float32Array(await lrt.read(x));
            const ref = matmulReference(xv, wv, c);
            const abs = matmulAbsReference(xv, wv, c);
            const got: Partial<Record<MatmulPath, Float32Array>> = {};
            let worst = 0;
            let bad = 0;
            const wide: Float32Array[] = [];
            for (const path of kw ? (['matvec', 'tiled', 'wide'] as const) : (['matvec', 'tiled'] as const)) {
              const step = lrt.beginStep('check');
              (path === 'wide' ? kw! : k).record(step, x, w, y, c, path === 'wide' ? 'tiled' : path);
              await step.submit();
              const out = new Float32Array(await lrt.read(y));
              if (path === 'wide') wide.push(out);
              else got[path] = out;
              for (let i = 0; i < ref.length; i++) {
                const r = Math.abs(out[i]! - ref[i]!) / matmulErrorBound(c.K, lanes, abs[i]!);
                if (!(r <= 1)) bad++;
                worst = Math.max(worst, Number.isNaN(r) ? Infinity : r);
              }
            }
            const a = new Uint32Array(got.matvec!.buffer);
            const b = new Uint32Array(got.tiled!.buffer);
            const wb = wide.length ? new Uint32Array(wide[0]!.buffer) : b;
            const differ = a.reduce((n, v, i) => n + (v === b[i] && v === wb[i] ? 0 : 1), 0);
            return {
              ok: bad === 0 && differ === 0,
              detail: `worst error ${worst.toFixed(3)} of the bound, ${bad} outside; matvec vs tiled (compact${kw ? ', wide' : ''}): ${differ === 0 ? 'bitwise equal' : `${differ} outputs differ`}${wideNote}`,
            };
          } finally {
            for (const b of [w, x, y]) lrt.destroyBuffer(b);
          }
        });
      }
    }
    if (lrt !== rt) {
      const errors = lrt.takeErrors();
      if (errors.length) await check(`matmul ${tag}: GPU errors`, async () => ({ ok: false, detail: errors.join('; ').slice(0, 300) }));
      lrt.destroy();
    }
  }

  // 2. Paged attention at real head shapes.
  const layers = await LayerKernels.create(rt, ['f32']);
  const contexts = quick ? [64, 1300] : [64, 1000, 4096, 16384];
  for (const shape of ['qwen2.5-1.5b', 'llama-3.2-3b'] as const) {
    for (const ctx of contexts) {
      const c = attentionCase(shape, shapeConfig(shape), ctx, 2);
      await check(`attention ${shape} B=2 ctx ${ctx}`, async () => {
        if (kvCacheBytes(c) > binding) return { ok: false, detail: 'the KV exceeds the storage binding' };
        const s = await setupAttention(rt, layers, c, 100 + ctx);
        try {
          const step = rt.beginStep('check');
          s.record(step);
          await step.submit();
          const [q, k, v, out] = [await readF32(s.q), await readF32(s.k), await readF32(s.v), await readF32(s.out)];
          const kvDim = c.kvHeads * c.headDim;
          const kv = (t: number, pos: number, kvh: number): { k: Float32Array; v: Float32Array } => {
            const page = s.blockTables[t * s.maxBlocks + Math.floor(pos / PAGE_SIZE)]!;
            const base = (page * PAGE_SIZE + (pos % PAGE_SIZE)) * kvDim + kvh * c.headDim;
            return { k: k.subarray(base, base + c.headDim), v: v.subarray(base, base + c.headDim) };
          };
          const ref = attentionRef(q, s.positions, c.heads, c.kvHeads, c.headDim, kv);
          let worst = 0;
          for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Number.isNaN(out[i]!) ? Infinity : Math.abs(out[i]! - ref[i]!));
          // The one-workgroup form over the same inputs (same fill seed) must give the same bits.
          const whole = await setupAttention(rt, layers, { ...c, form: 'whole' }, 100 + ctx);
          let same: boolean;
          try {
            const step2 = rt.beginStep('check whole');
            whole.record(step2);
            await step2.submit();
            const outWhole = await readF32(whole.out);
            same = new Uint32Array(outWhole.buffer).every((b, i) => b === new Uint32Array(out.buffer)[i]);
          } finally {
            whole.destroy();
          }
          return { ok: worst <= ATTENTION_TOLERANCE && same, detail: `max |out - ref| ${worst.toExponential(2)} (tol ${ATTENTION_TOLERANCE}); split vs whole: ${same ? 'bitwise equal' : 'DIFFER'}` };
        } finally {
          s.destroy();
        }
      });
    }
  }

  // 2b. The decode path's fused RMSNorm (matvec NORM) against the rmsnorm pass then matvec: bitwise.
  for (const M of [1, 8]) {
    const K = quick ? 256 : 1536;
    const N = quick ? 128 : 2048;
    await check(`fused rmsnorm + matvec f16 ${M}x${N}x${K}`, async () => {
      const k = await MatmulKernels.create(rt, 'f16', false, 'auto', { fusedNorm: true });
      const x = rt.createBuffer(4 * M * K, usage, 'X');
      const nw = rt.createBuffer(4 * K, usage, 'norm w');
      const w = rt.createBuffer(N * K * 2, usage, 'W');
      const h = rt.createBuffer(4 * M * K, usage, 'h');
      const y1 = rt.createBuffer(4 * M * N, usage, 'y1');
      const y2 = rt.createBuffer(4 * M * N, usage, 'y2');
      try {
        await gpuFill(rt, [x], 'f32', 0, 2, 21);
        await gpuFill(rt, [nw], 'f32', 1, 0.5, 22);
        await gpuFill(rt, [w], 'f16', 0, WEIGHT_HALF_WIDTH, 23);
        const step = rt.beginStep('check');
        layers.rmsnorm(step, x, nw, h, M, K, 1e-6);
        k.record(step, h, w, y1, { M, N, K }, 'matvec');
        k.record(step, x, w, y2, { M, N, K, norm: { weight: nw, eps: 1e-6 } }, 'matvec');
        await step.submit();
        const a = new Uint32Array(await rt.read(y1));
        const b = new Uint32Array(await rt.read(y2));
        const differ = a.reduce((n, v, i) => n + (v === b[i] ? 0 : 1), 0);
        return { ok: differ === 0, detail: differ === 0 ? 'bitwise equal to rmsnorm then matvec' : `${differ} of ${a.length} outputs differ` };
      } finally {
        for (const b of [x, nw, w, h, y1, y2]) rt.destroyBuffer(b);
      }
    });
  }

  // 3. Argmax over a real vocabulary (ties to the lowest id; a planted maximum per row).
  await check('argmax 4 rows x 151936', async () => {
    const rows = 4;
    const vocab = 151936;
    const logits = rt.createBuffer(4 * rows * vocab, usage, 'logits');
    const ids = rt.createBuffer(4 * rows, usage, 'ids');
    try {
      await gpuFill(rt, [logits], 'f32', 0, 10, 21);
      const step = rt.beginStep('check');
      // Row r gets its maximum duplicated at two ids (ties go to the lower).
      for (let r = 0; r < rows; r++) for (const id of [1000 + 37 * r, 150000 - r]) step.write(logits, 4 * (r * vocab + id), new Float32Array([100]));
      layers.argmax(step, logits, ids, rows, vocab, vocab, 0);
      await step.submit();
      const lv = await readF32(logits);
      const got = new Uint32Array(await rt.read(ids));
      const want = Array.from({ length: rows }, (_, r) => argmaxRef(lv, r * vocab, vocab));
      const ok = want.every((w, r) => w === got[r] && w === 1000 + 37 * r);
      return { ok, detail: `ids ${[...got].join(',')}, reference ${want.join(',')}` };
    } finally {
      rt.destroyBuffer(logits);
      rt.destroyBuffer(ids);
    }
  });

  const errors = rt.takeErrors();
  rt.destroy();
  if (errors.length) {
    console.log(`FAIL GPU errors: ${errors.join('; ')}`);
    failed++;
  }
  console.log(`kernel-check: ${passed} PASS, ${failed} FAIL (${((performance.now() - start) / 1000).toFixed(1)} s)`);
  return failed ? 1 : 0;
}
