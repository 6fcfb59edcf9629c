#!/usr/bin/env bash
# The CUDA backend's checks on a lent GPU machine, in two halves because that machine has the CUDA
# toolkit but none of ember's other dependencies and no network:
#   scripts/device-check.sh pack   here: builds ember and cuda_tests with CUDA and gathers them, the
#                                  shared libraries the GPU image may lack and stories260K into
#                                  build/devpack.tar.xz (carried to the device: `carry` it)
#   scripts/device-check.sh run    there: the cuda tests, then `ember bench` on synthetic
#                                  llama-3.2-1b / 3b (Q4_0, Q8_0, F16, Q4_K_M) and smollm-135m; ~7 minutes
# Options of run: --tests-only, --bench-only, --quick (1B only, fewer repetitions).
# Results go to $OUT (the device tool's folder) or build/devpack/out.
set -euo pipefail
cd "$(dirname "$0")/.."
pack=build/devpack

do_pack() {
  local build=${BUILD_DIR:-build/cuda}
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEMBER_CUDA=ON -DEMBER_BUILD_BENCH=OFF >/dev/null
  ninja -C "$build" bin/ember tests/cuda_tests
  rm -rf "$pack"
  mkdir -p "$pack/lib" "$pack/data/models"
  cp "$build/bin/ember" "$build/tests/cuda_tests" "$pack/"
  strip "$pack/ember" "$pack/cuda_tests"
  # Every shared library but glibc's, the C++ runtime's and CUDA's (the GPU image has those, newer).
  # cuBLAS is no link dependency: the binaries dlopen libcublas.so.<major> from LD_LIBRARY_PATH.
  ldd "$pack/ember" "$pack/cuda_tests" | awk '/=> \// {print $3}' | sort -u |
    grep -v -E '/(libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s|libcuda|libcudart)\.so' |
    while read -r lib; do cp -L "$lib" "$pack/lib/"; done
  if [ -d ../shared/data/models/stories260K ]; then
    cp -r ../shared/data/models/stories260K "$pack/data/models/"
  fi
  # Compressed: the checkout and what it carries travel in 64 MiB.
  tar -C build -cJf "$pack.tar.xz" devpack
  du -sh "$pack" "$pack.tar.xz"
}

do_run() {
  local tests=1 bench=1 quick=0
  for a in "$@"; do
    case "$a" in
      --tests-only) bench=0 ;;
      --bench-only) tests=0 ;;
      --quick) quick=1 ;;
      *) echo "device-check: unknown option $a" >&2; exit 2 ;;
    esac
  done
  [ -d "$pack" ] || tar -C build -xJf "$pack.tar.xz"
  local out=${OUT:-$pack/out}
  mkdir -p "$out"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv,noheader || true
  # Only ember's own programs see the carried libraries (the system's tools keep the system's).
  local libs="$PWD/$pack/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
  ember() { LD_LIBRARY_PATH="$libs" "$pack/ember" "$@"; }
  export EMBER_SHARED_DATA="$PWD/$pack/data"
  export EMBER_CLI_PATH="$PWD/$pack/ember"  # for the tests that run `ember` (cuda_cli_test)
  local status=0
  if [ "$tests" = 1 ]; then
    echo "== cuda tests"
    local rc=0
    LD_LIBRARY_PATH="$libs" "$pack/cuda_tests" --gtest_brief=1 >"$out/cuda_tests.log" 2>&1 || rc=$?
    grep -E "^\[  (FAILED|PASSED) |FAILED|Failure|error" "$out/cuda_tests.log" || true
    [ "$rc" = 0 ] || { echo "cuda_tests failed (exit $rc)"; status=1; }
    grep -E "^cuda " "$out/cuda_tests.log" | tail -60 || true
  fi
  if [ "$bench" = 1 ]; then
    echo "== bench"
    local models=/tmp/ember-models reps=5
    mkdir -p "$models"
    local presets="llama-3.2-1b llama-3.2-3b"
    [ "$quick" = 1 ] && presets="llama-3.2-1b" && reps=3
    local files=()
    for p in smollm-135m $presets; do
      for t in Q4_0 Q8_0 F16 Q4_K_M; do
        [ "$p" = smollm-135m ] && [ "$t" != Q8_0 ] && continue
        local f="$models/$p-$t.gguf"
        [ -f "$f" ] || ember synth --preset "$p" --type "$t" --no-vocab -o "$f" >/dev/null
        files+=("$f")
      done
    done
    for f in "${files[@]}"; do
      local pp=2048
      case "$f" in *smollm*) pp=512 ;; esac
      ember bench -m "$f" --device cuda -p "$pp" -n 128 -u 2048 -r "$reps" -o md 2>&1 |
        tee -a "$out/bench.md" | grep -E "^\| " | grep -v -E "^\| model" || status=1
    done
    # Decode without CUDA graphs on the smallest model, where launch overhead shows most (A/B).
    echo "== smollm-135m decode without CUDA graphs (EMBER_CUDA_GRAPHS=0)"
    EMBER_CUDA_GRAPHS=0 ember bench -m "$models/smollm-135m-Q8_0.gguf" --device cuda -p 512 -n 128 -u 2048 -r "$reps" \
      -o md 2>&1 |
      tee -a "$out/bench.md" | grep -E "^\| " | grep -v -E "^\| model" || status=1
    # Decode returning the greedy token chosen on the GPU instead of the logits row (A/B).
    echo "== smollm-135m and llama-3.2-1b Q4_0 decode, greedy token on the GPU (--decode-output token)"
    ember bench -m "$models/smollm-135m-Q8_0.gguf" -m "$models/llama-3.2-1b-Q4_0.gguf" --device cuda -p 0 -n 128 \
      -r "$reps" --decode-output token -o md 2>&1 |
      tee -a "$out/bench.md" | grep -E "^\| " | grep -v -E "^\| model" || status=1
    # Prefill with the per-row attention kernel instead of the tiled tensor-core one (A/B).
    echo "== llama-3.2-1b F16 prefill without tiled attention (EMBER_CUDA_TILED_ATTENTION=0)"
    EMBER_CUDA_TILED_ATTENTION=0 ember bench -m "$models/llama-3.2-1b-F16.gguf" --device cuda -p 2048 -n 16 -u 2048 \
      -r "$reps" -o md 2>&1 |
      tee -a "$out/bench.md" | grep -E "^\| " | grep -v -E "^\| model" || status=1
    # Prefill of the Q4_0, Q8_0 and Q4_K_M files through the int8 GEMM instead of f16 cuBLAS (A/B;
    # the table above is the cuBLAS path, the default; every Q4_K_M matrix runs it).
    echo "== llama-3.2-1b Q4_0, Q8_0 and Q4_K_M prefill through the int8 GEMM (EMBER_CUDA_INT8_GEMM=1)"
    EMBER_CUDA_INT8_GEMM=1 ember bench -m "$models/llama-3.2-1b-Q4_0.gguf" -m "$models/llama-3.2-1b-Q8_0.gguf" \
      -m "$models/llama-3.2-1b-Q4_K_M.gguf" --device cuda -p 2048 -n 16 -u 2048 -r "$reps" -o md 2>&1 |
      tee -a "$out/bench.md" | grep -E "^\| " | grep -v -E "^\| model" || status=1
    # A mixture of experts: decode through the per-entry expert GEMVs (graphed), prefill grouped by expert.
    echo "== qwen3moe-1.4b Q4_K_M (64 experts of 384, 8 per token)"
    local moe="$models/qwen3moe-1.4b-Q4_K_M.gguf"
    [ -f "$moe" ] || ember synth --preset qwen3moe-1.4b --type Q4_K_M --no-vocab -o "$moe" >/dev/null
    ember bench -m "$moe" --device cuda -p 2048 -n 128 -u 2048 -r "$reps" -o md 2>&1 |
      tee -a "$out/bench.md" | grep -E "^\| " | grep -v -E "^\| model" || status=1
  fi
  return $status
}

case "${1:-}" in
  pack) do_pack ;;
  run) shift; do_run "$@" ;;
  *) echo "usage: scripts/device-check.sh pack | run [--tests-only|--bench-only|--quick]" >&2; exit 2 ;;
esac
