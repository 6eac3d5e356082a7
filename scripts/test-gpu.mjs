#!/usr/bin/env node
// The GPU tier: the Vitest 'gpu' project once per configuration, serially, each in its own
// processes (one device per test file):
//   all-features   Dawn on Mesa's lavapipe with everything it offers (shader-f16, subgroups 8)
//   no-f16         the same adapter, shader-f16 ignored (f16 weights unpacked from u32)
//   no-subgroups   the same adapter, subgroups ignored (shared-memory lane trees)
//   swiftshader    Chromium's SwiftShader Vulkan driver (no f16, subgroups of 4), ~10x slower:
//                  kernels, models and runner-level files only. The engine files (engine-core,
//                  engine-api), calibration timing and per-step CPU overhead test logic above the
//                  same kernels, which the three lavapipe legs cover and which the browser tier
//                  runs on SwiftShader anyway (the demo's engine in Chromium); they cost ~160 s here.
// It never skips: a missing driver fails with what to install.
// Usage: node scripts/test-gpu.mjs [config ...]   (default: all four)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';

const SWIFTSHADER_ICD = process.env.WEBSLO_SWIFTSHADER_ICD ?? '/usr/lib/chromium/vk_swiftshader_icd.json';
const CONFIGS = ['all-features', 'no-f16', 'no-subgroups', 'swiftshader'];
/** Test files the SwiftShader leg leaves to the lavapipe legs and the browser tier (see above). */
const SWIFTSHADER_SKIPS = ['engine-core', 'engine-api', 'calibrate', 'step-overhead'];
const chosen = process.argv.slice(2);
for (const c of chosen) {
  if (!CONFIGS.includes(c)) {
    console.error(`unknown GPU config '${c}' (valid: ${CONFIGS.join(', ')})`);
    process.exit(2);
  }
}
const configs = chosen.length ? chosen : CONFIGS;
mkdirSync('test-results', { recursive: true });

let failed = false;
for (const config of configs) {
  const env = { ...process.env, WEBSLO_GPU_CONFIG: config };
  if (config === 'swiftshader') {
    if (!existsSync(SWIFTSHADER_ICD)) {
      console.error(`[test-gpu] ${SWIFTSHADER_ICD} is missing: install Debian's chromium (bash scripts/setup-debian.sh), or set WEBSLO_SWIFTSHADER_ICD`);
      process.exit(1);
    }
    env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    delete env.VK_DRIVER_FILES;
  }
  console.log(`\n[test-gpu] ===== config: ${config} =====`);
  const exclude = config === 'swiftshader' ? SWIFTSHADER_SKIPS.flatMap((f) => ['--exclude', `test/gpu/${f}.test.ts`]) : [];
  const r = spawnSync('npx', ['vitest', 'run', '--project', 'gpu', ...exclude, '--reporter=default', '--reporter=json', `--outputFile.json=test-results/gpu-${config}.json`], {
    stdio: 'inherit',
    env,
  });
  if (r.status !== 0) {
    failed = true;
    console.error(`[test-gpu] config ${config} failed (exit ${r.status ?? r.signal})`);
  }
}
process.exit(failed ? 1 : 0);
