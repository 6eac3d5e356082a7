#!/usr/bin/env bash
# The device-side benchmark run, for a lent GPU machine that has no node_modules and no network.
# It runs the bundles that `npm run bench:gpu:bundle` builds where the project's dependencies are
# installed (Vite is needed to build them, not to run them):
#
#   build:  npm run bench:gpu:bundle        # .devbundle/{gpu-check,kernel-check,run-all,calibrate}.mjs
#   run:    bash scripts/bench-gpu.sh       # needs node on PATH and node_modules/webgpu (or WEBGPU_DIR)
#
# Locally (software GPU, a minutes-long smoke run of the same phases on small shapes):
#   npm run bench:gpu:bundle && BENCH_GPU_QUICK=1 bash scripts/bench-gpu.sh
#
# Phases, each with its own timeout; a failed or timed-out phase does not stop the later ones:
#   1. gpu-check     the fixture models' logits against HF's references (PASS/FAIL per model)
#   2. kernel-check  matmul / attention / argmax against the float64 references at real sizes, with
#                    the device's real subgroup size and storage binding (PASS/FAIL per check)
#   3. bench         npm run bench (bench/run-all.ts): ceilings, kernel rows, attention decode over
#                    4k-32k contexts, forward decode/prefill of qwen2.5-1.5b and llama-3.2-3b shapes,
#                    the engine step's CPU overhead at 64 decodes; writes $OUT/bench/<adapter>.{json,md}
#   4. variants      bench/variants.ts: reduce lanes 4/8/16/32 x matvec at decode shapes, the tiled
#                    matmul's compact/wide geometries, and the forward step per lanes value; writes
#                    $OUT/bench/variants-<adapter>.{json,md} (the data to choose kernel defaults from)
#   5. calibrate     (named only) the scheduler's performance profile on a synthetic qwen2.5-1.5b f16
#                    with a self draft
#   6. peer          (named only: BENCH_GPU_PHASES=peer, a call of its own, ~4 min) bench/llama-cpp-peer.ts:
#                    webslo (f16, q4) beside llama.cpp (GGUF F16, Q4_0; its Vulkan build) on the same
#                    synthetic $SHAPE model, decode B=1/8/32 and 512-token prefill; writes
#                    $OUT/bench/peer-$SHAPE.{json,md}. llama.cpp comes from .devbundle/node-llama-cpp.tar.xz,
#                    unpacked into node_modules/ when that has none
# Each phase's output goes to stdout and to $OUT/<phase>.txt; the calibration profile to
# $OUT/profile-$TAG.json ($OUT unset: ${TMPDIR:-/tmp}/webslo-bench-gpu/). A summary table comes last.
# Exit status: the number of failed phases.
#
# Environment: OUT (output folder), BENCH_GPU_QUICK=1 (small local smoke run), BENCH_GPU_TAG (file
# name tag; default h200, or quick), BENCH_GPU_PHASES (default "gpu-check kernel-check bench
# variants"; calibrate, and kernels and forward, the older single benches, can be named too), T_CHECK
# T_KCHECK T_BENCH T_VARIANTS T_CALIBRATE T_KERNELS T_FORWARD T_PEER (phase timeouts, s), CALIBRATE_BUDGET_S
# (calibration sweep budget, s), SHAPE (calibrate and forward shape; default qwen2.5-1.5b).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 99
run_start=$(date +%s)

command -v node >/dev/null 2>&1 || { echo "bench-gpu: no node on PATH"; exit 98; }
for b in gpu-check kernel-check run-all variants kernels forward calibrate peer; do
  [ -f ".devbundle/$b.mjs" ] || { echo "bench-gpu: .devbundle/$b.mjs is missing: run npm run bench:gpu:bundle where Vite is installed and bring .devbundle"; exit 97; }
done
# `import 'webgpu'` must resolve from the bundles: node_modules/webgpu, or a copy of the npm package
# `webgpu` (index.js, package.json, dist/linux-x64/dawn.node) named by WEBGPU_DIR.
if [ ! -f node_modules/webgpu/index.js ]; then
  if [ -n "${WEBGPU_DIR:-}" ] && [ -f "$WEBGPU_DIR/index.js" ] && [ -f "$WEBGPU_DIR/dist/linux-x64/dawn.node" ]; then
    mkdir -p node_modules && cp -r "$WEBGPU_DIR" node_modules/webgpu
  else
    echo "bench-gpu: no node_modules/webgpu; set WEBGPU_DIR to a copy of the webgpu package with dist/linux-x64/dawn.node"
    exit 96
  fi
fi

QUICK=${BENCH_GPU_QUICK:-0}
[ "$QUICK" = 1 ] && TAG=${BENCH_GPU_TAG:-quick} || TAG=${BENCH_GPU_TAG:-h200}
OUT_DIR=${OUT:-${TMPDIR:-/tmp}/webslo-bench-gpu}
mkdir -p "$OUT_DIR"
SHAPE=${SHAPE:-qwen2.5-1.5b}
PHASES=${BENCH_GPU_PHASES:-gpu-check kernel-check bench variants}

if [ "$QUICK" = 1 ]; then
  T_CHECK=${T_CHECK:-180}; T_KCHECK=${T_KCHECK:-120}; T_BENCH=${T_BENCH:-420}; T_VARIANTS=${T_VARIANTS:-300}; T_KERNELS=${T_KERNELS:-120}; T_FORWARD=${T_FORWARD:-300}; T_CALIBRATE=${T_CALIBRATE:-300}
  BUDGET=${CALIBRATE_BUDGET_S:-60}
  CHECK_ARGS=(--max-prompt 37)
  KCHECK_ARGS=(--quick)
  BENCH_ARGS=()
  KERNELS_ARGS=(--size small --trials 2)
  FORWARD_ARGS=(--shape qwen2.5-0.5b --layers 2 --batches 1,4 --prefill 64 --trials 1)
  CALIBRATE_ARGS=(--shape qwen2.5-0.5b --dtype f16 --layers 2 --draft-layers 1 --prefill-chunks 16,64 --prefill-contexts 0
    --decode-batches 1,4 --decode-contexts 32 --verify-ks 1,2 --verify-batches 1 --repeats 1)
  T_PEER=${T_PEER:-300}
  PEER_ARGS=(--shape tiny --batches 1,4 --decode 16 --prefill 128 --repeat 1 --llama-gpu false --threads 1)
else
  # Budget on an H200 (the run before the new phases took 57 s): check 60 + kernel-check 60 +
  # bench 270 + variants 150 = 9 min at most, the timeouts included, under a 10-minute command
  # (calibrate: name it in BENCH_GPU_PHASES when the scheduler profile should be refreshed).
  T_CHECK=${T_CHECK:-60}; T_KCHECK=${T_KCHECK:-60}; T_BENCH=${T_BENCH:-270}; T_VARIANTS=${T_VARIANTS:-150}; T_KERNELS=${T_KERNELS:-60}; T_FORWARD=${T_FORWARD:-100}; T_CALIBRATE=${T_CALIBRATE:-120}
  BUDGET=${CALIBRATE_BUDGET_S:-60}
  CHECK_ARGS=()
  KCHECK_ARGS=()
  BENCH_ARGS=()
  KERNELS_ARGS=(--size large)
  FORWARD_ARGS=(--shape "$SHAPE" --dtype f16 --batches 1,8,32 --prefill 512)
  CALIBRATE_ARGS=(--shape "$SHAPE" --dtype f16)
  T_PEER=${T_PEER:-420}
  PEER_ARGS=(--shape "$SHAPE" --llama-gpu "${PEER_LLAMA_GPU:-vulkan}" --repeat 2)
fi
# CHECK_MODELS=a,b: only these fixtures (e.g. when the device copy must leave a large one behind).
[ -n "${CHECK_MODELS:-}" ] && CHECK_ARGS+=(--models "$CHECK_MODELS")

echo "bench-gpu: $(node --version) on $(uname -m); quick=$QUICK; out=$OUT_DIR; tag=$TAG; phases: $PHASES"
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null

declare -a SUMMARY=()
RAN=" "
failed=0
# run_phase NAME TIMEOUT_S BUNDLE ARGS...: stdout+stderr to the terminal and $OUT_DIR/NAME.txt.
run_phase() {
  local name=$1 secs=$2 bundle=$3
  shift 3
  case " $PHASES " in *" $name "*) ;; *) SUMMARY+=("$(printf '%-13s %-16s %6s' "$name" skipped -)"); return 0 ;; esac
  RAN+="$name "
  # No stale results: this phase's log and --out file go first.
  rm -f "$OUT_DIR/$name.txt"
  local prev=
  # (An --out folder, shared by bench and variants, stays: each writes its own file names there.)
  for a in "$@"; do [ "$prev" = --out ] && [ ! -d "$a" ] && rm -f "$a"; prev=$a; done
  echo
  echo "===== $name: node .devbundle/$bundle.mjs $* (timeout ${secs} s) ====="
  local t0 t1 rc status
  t0=$(date +%s%N)
  timeout -k 10 "$secs" node ".devbundle/$bundle.mjs" "$@" 2>&1 | grep --line-buffered -v 'artificially reduced from' | tee "$OUT_DIR/$name.txt"
  rc=${PIPESTATUS[0]}
  t1=$(date +%s%N)
  if [ "$rc" = 0 ]; then status=ok
  elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then status="TIMEOUT(rc=$rc)"; failed=$((failed + 1))
  else status="FAIL(rc=$rc)"; failed=$((failed + 1))
  fi
  local ds=$(( (t1 - t0) / 100000000 ))
  SUMMARY+=("$(printf '%-13s %-16s %4d.%d' "$name" "$status" $((ds / 10)) $((ds % 10)))")
  echo "===== $name: $status"
}

run_phase gpu-check "$T_CHECK" gpu-check ${CHECK_ARGS[@]+"${CHECK_ARGS[@]}"}
run_phase kernel-check "$T_KCHECK" kernel-check ${KCHECK_ARGS[@]+"${KCHECK_ARGS[@]}"}
case " $PHASES " in *" bench "*) rm -rf "$OUT_DIR/bench" ;; esac
run_phase bench "$T_BENCH" run-all ${BENCH_ARGS[@]+"${BENCH_ARGS[@]}"} --out "$OUT_DIR/bench"
run_phase variants "$T_VARIANTS" variants --out "$OUT_DIR/bench"
run_phase kernels "$T_KERNELS" kernels ${KERNELS_ARGS[@]+"${KERNELS_ARGS[@]}"} --out "$OUT_DIR/kernels-$TAG.json"
run_phase forward "$T_FORWARD" forward ${FORWARD_ARGS[@]+"${FORWARD_ARGS[@]}"} --out "$OUT_DIR/forward-$TAG.json"
case " $PHASES " in *" peer "*)
  if [ ! -f node_modules/node-llama-cpp/package.json ]; then
    [ -f .devbundle/node-llama-cpp.tar.xz ] && tar -xJf .devbundle/node-llama-cpp.tar.xz || echo "bench-gpu: no node_modules/node-llama-cpp and no .devbundle/node-llama-cpp.tar.xz: the peer phase will fail"
  fi
  mkdir -p "$OUT_DIR/bench" ;;
esac
run_phase peer "$T_PEER" peer ${PEER_ARGS[@]+"${PEER_ARGS[@]}"} --out "$OUT_DIR/bench"
run_phase calibrate "$T_CALIBRATE" calibrate ${CALIBRATE_ARGS[@]+"${CALIBRATE_ARGS[@]}"} --budget-s "$BUDGET" --out "$OUT_DIR/profile-$TAG.json"

# Summary: phase status, then the key lines of each phase's output.
key() { case "$RAN" in *" $1 "*) ;; *) return 0 ;; esac; echo "$1:"; [ -f "$OUT_DIR/$1.txt" ] && grep -E "$2" "$OUT_DIR/$1.txt" | head -n "${3:-20}" | cut -c1-220 | sed 's/^/  /'; }
echo
echo "===== summary ($(( $(date +%s) - run_start )) s in all; $failed failed phase(s)) ====="
printf '%-13s %-16s %6s\n' phase status seconds
printf '%s\n' "${SUMMARY[@]}"
key gpu-check '^(PASS|FAIL)|^     |^gpu-check:|^adapter:' 12
key kernel-check '^FAIL|^granted:|^kernel-check:' 12
key variants '^lanes ' 48
key kernels '^(matvec|tiled)|^bandwidth ceiling' 8
key forward '^[0-9]+ +[0-9]+ |^  [0-9.]+ ms, |^implied' 8
key peer '^\| |loaded in|wrote the' 16
key calibrate '^model: T|^R\^2|^k2|^profile:|^skipped' 6
case "$RAN" in *" bench "*) echo "bench:"; [ -f "$OUT_DIR/bench.txt" ] && sed -n '/^===== bench summary/,$p' "$OUT_DIR/bench.txt" | cut -c1-220 | sed 's/^/  /'; ls "$OUT_DIR"/bench/*.md 2>/dev/null | sed 's/^/  table: /' ;; esac
case "$RAN" in *" calibrate "*) [ -f "$OUT_DIR/profile-$TAG.json" ] && echo "profile: $OUT_DIR/profile-$TAG.json ($(wc -c < "$OUT_DIR/profile-$TAG.json") bytes)" ;; esac
exit "$failed"
