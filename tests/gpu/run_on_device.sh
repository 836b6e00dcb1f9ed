#!/usr/bin/env bash
# The GPU checks of issue #10, for a session that is lent a GPU machine.
#
# Here (a machine with network), once:
#   bash ../shared/gpu/fetch-debs.sh .gpu/debs && cp ../shared/gpu/setup-on-device.sh .gpu/
#   grep -qx '/.gpu/' .git/info/exclude || echo /.gpu/ >> .git/info/exclude
# Then one device `run` per stage, each with carry [".gpu"] (a stage must fit
# in the 10-minute limit of one command; the build directory stays on a warm
# machine between calls, and a bare one rebuilds it first):
#   bash tests/gpu/run_on_device.sh test       # build + ctest -L gpu
#   bash tests/gpu/run_on_device.sh sanitize   # compute-sanitizer memcheck/racecheck on the op tests
#   bash tests/gpu/run_on_device.sh bench      # bench/gpu/run.sh (train MFU, decode roofline, peers)
# Logs go to $OUT (a few files: the device tool returns at most 8).
set -uo pipefail
cd "$(dirname "$0")/../.."
stage=${1:-test}
OUT=${OUT:-/tmp/grpo-gpu-out}
mkdir -p "$OUT"
BUILD=build-gpu
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$OUT/summary.txt"; }

if [ -f .gpu/setup-on-device.sh ]; then
  # shellcheck disable=SC1091
  source .gpu/setup-on-device.sh .gpu/debs >/dev/null
fi

build() {
  [ -f "$BUILD/CMakeCache.txt" ] && [ -x "$BUILD/cli/grpo" ] && return 0
  nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1
  log "configure + build ($BUILD)"
  local hdf5=/opt/grpo-deps/usr/include/hdf5/serial
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DGRPO_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
        -DMPI_C_COMPILER="$(command -v mpicc)" -DHDF5_C_INCLUDE_DIR="$hdf5" >"$OUT/build.log" 2>&1 &&
    cmake --build "$BUILD" -j "$(nproc)" >>"$OUT/build.log" 2>&1
  local rc=$?
  log "build rc=$rc ($(grep -E 'cuDNN|NCCL|CUDA backend' "$OUT/build.log" | tr '\n' ' '))"
  return $rc
}

case "$stage" in
  test)
    build || exit 1
    log "ctest -L gpu"
    ctest --test-dir "$BUILD" -L gpu --output-on-failure >"$OUT/ctest-gpu.log" 2>&1
    log "ctest -L gpu rc=$? ($(tail -3 "$OUT/ctest-gpu.log" | head -1))"
    ;;
  sanitize)
    build || exit 1
    : >"$OUT/sanitizer.log"
    for t in test_gpu_backend test_gpu_sampler test_gpu_cudnn_attn test_gpu_model; do
      exe=$(find "$BUILD/tests" -name "$t" -type f | head -1)
      [ -n "$exe" ] || continue
      for tool in memcheck racecheck; do
        [ "$tool" = racecheck ] && [ "$t" = test_gpu_model ] && continue
        log "compute-sanitizer --tool $tool $t"
        (cd "$(dirname "$exe")" && timeout 240 compute-sanitizer --tool "$tool" --error-exitcode 9 \
           "./$t") >>"$OUT/sanitizer.log" 2>&1
        log "  rc=$?"
      done
    done
    ;;
  bench)
    build || exit 1
    log "bench/gpu/run.sh"
    bash bench/gpu/run.sh "$BUILD" "$OUT" >"$OUT/bench.log" 2>&1
    log "bench rc=$?"
    ;;
  *)
    echo "usage: $0 test|sanitize|bench" >&2
    exit 2
    ;;
esac
