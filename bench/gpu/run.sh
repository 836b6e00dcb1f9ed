#!/usr/bin/env bash
# bench/gpu/run.sh: the GPU benchmarks of issue #10 on one device, with their
# peers in the same run, and a markdown block ready for bench/RESULTS.md.
#
#   bash bench/gpu/run.sh [BUILD_DIR [OUT_DIR]] [all | build | train | rollout | report]...
#                                                         (default build-gpu, $OUT, all)
#
#   build    build bench_gpu_train and bench_gpu_rollout in BUILD_DIR (configured
#            first, CUDA on, sm_90, when it has no CMakeCache.txt yet)
#   train    bench_gpu_train (bf16; f32 if bf16 activations are refused) and
#            bench/gpu_train/peer_torch.py at the same shapes and tokens
#   rollout  bench_gpu_rollout (batch 256, device sampling) and
#            bench/gpu_rollout/peer_generate.py (transformers.generate, or the
#            plain-torch static-cache loop when transformers is missing)
#   report   print RESULTS-block.md (date, device, commit, ratios grpo / peer)
#
# Each phase fits one 10-minute device command; `all` (about 5-8 minutes on
# an H100 once built) may too. One at a time:
#   bash bench/gpu/run.sh build; bash bench/gpu/run.sh train; bash bench/gpu/run.sh rollout report
# Results: BUILD_DIR/bench-out/ (one JSON, .txt and .err per program; kept
# between calls of a warm machine, build dirs being ignored by git). After
# every phase three files go to OUT_DIR when one is given (the device tool's
# $OUT, which returns only a few files): RESULTS-block.md, bench-gpu.json (all
# JSONs in one) and bench-gpu.log (every program's output).
#
# Environment: COMMIT (default: git rev-parse, else "unknown"), PY (python3),
# PEAK_TFLOPS / BW_TBS (default: from the device name: H100 SXM 989.4 / 3.35,
# H200 989.4 / 4.8, H100 PCIe 756.5 / 2.0, H100 NVL 835 / 3.9), TRAIN_ARGS /
# ROLLOUT_ARGS (extra arguments for both the C bench and its peer, so only
# flags both take: --batch --seq --layers --steps --warmup --tiny for train,
# --batch --groups --prompt --new --layers --tiny for rollout), WHEELS (a folder of wheels to pip-install transformers from
# when it is missing; default .gpu/wheels), TIMEOUT (seconds per program, 300).
set -u
cd "$(dirname "$0")/../.." || exit 1
phases=()
pos=()
for a in "$@"; do
  case "$a" in
    all | build | train | rollout | report) phases+=("$a") ;;
    -h | --help) sed -n '2,/^set -u/p' "$0" | grep '^#'; exit 0 ;;
    *) pos+=("$a") ;;
  esac
done
[ ${#phases[@]} -eq 0 ] && phases=(all)
BUILD=${pos[0]:-${BUILD:-build-gpu}}
OUTDIR=${pos[1]:-${OUT:-}}
RES=$BUILD/bench-out
PY=${PY:-python3}
WHEELS=${WHEELS:-.gpu/wheels}
TRAIN_ARGS=${TRAIN_ARGS:-}
ROLLOUT_ARGS=${ROLLOUT_ARGS:-}
TIMEOUT=${TIMEOUT:-300}
mkdir -p "$RES"

log() { echo "[run.sh $(date -u +%H:%M:%S)] $*" >&2; }

export_out() {
  [ -n "$OUTDIR" ] || return 0
  mkdir -p "$OUTDIR"
  "$PY" bench/gpu/report.py "$RES" --merged "$OUTDIR/bench-gpu.json" > "$OUTDIR/RESULTS-block.md"
  for f in "$RES"/*.txt "$RES"/*.err; do
    [ -f "$f" ] && { echo "==== $(basename "$f")"; cat "$f"; }
  done > "$OUTDIR/bench-gpu.log"
}

device_info() {
  local name="unknown"
  if command -v nvidia-smi >/dev/null 2>&1; then
    name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit \
      --format=csv 2>/dev/null > "$RES/nvidia-smi.csv" || true
  fi
  local peak=989.4 bw=3.35
  case "$name" in
    *H200*) peak=989.4; bw=4.8 ;;
    *H100*PCIe*) peak=756.5; bw=2.0 ;;
    *H100*NVL*) peak=835.0; bw=3.9 ;;
    *H100*) peak=989.4; bw=3.35 ;;
    *) log "device '$name' not in the table: peak 989.4 TFLOP/s, 3.35 TB/s (set PEAK_TFLOPS / BW_TBS)" ;;
  esac
  PEAK_TFLOPS=${PEAK_TFLOPS:-$peak}
  BW_TBS=${BW_TBS:-$bw}
  local commit=${COMMIT:-}
  if [ -z "$commit" ]; then
    commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [ "$commit" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
      commit="$commit+dirty"
    fi
  fi
  cat > "$RES/device.json" <<EOF
{"device_name": "$name", "peak_tflops": $PEAK_TFLOPS, "bw_tbs": $BW_TBS, "commit": "$commit",
 "date_utc": "$(date -u +%Y-%m-%d\ %H:%M)", "host": "$(hostname)"}
EOF
  log "device: $name, peak $PEAK_TFLOPS TFLOP/s, HBM $BW_TBS TB/s, commit $commit"
}

phase_build() {
  # the Debian libraries grpo links, brought along (shared/gpu/README.md)
  if ! command -v mpicc >/dev/null 2>&1 && [ -f .gpu/setup-on-device.sh ]; then
    # shellcheck disable=SC1091
    source .gpu/setup-on-device.sh .gpu/debs
  fi
  local extra=()
  command -v mpicc >/dev/null 2>&1 && extra+=("-DMPI_C_COMPILER=$(command -v mpicc)")
  [ -d /opt/grpo-deps/usr/include/hdf5/serial ] && extra+=("-DHDF5_C_INCLUDE_DIR=/opt/grpo-deps/usr/include/hdf5/serial")
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    log "configure $BUILD"
    cmake -S . -B "$BUILD" -DGRPO_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_BUILD_TYPE=Release \
      ${extra[@]+"${extra[@]}"} > "$RES/cmake-configure.log" 2>&1 || {
      tail -30 "$RES/cmake-configure.log"; return 1; }
    grep -E "grpo: (CUDA|cuDNN)" "$RES/cmake-configure.log" >&2
  fi
  log "build"
  cmake --build "$BUILD" -j"$(nproc)" --target bench_gpu_train bench_gpu_rollout > "$RES/cmake-build.log" 2>&1 || {
    grep -E "error" "$RES/cmake-build.log" | head -30; return 1; }
  log "built $BUILD/bench/gpu_train/bench_gpu_train $BUILD/bench/gpu_rollout/bench_gpu_rollout"
}

ensure_transformers() {
  if ! "$PY" -c "import transformers" >/dev/null 2>&1 && [ -d "$WHEELS" ]; then
    log "transformers missing: installing from $WHEELS (no index)"
    "$PY" -m pip install -q --no-index --find-links "$WHEELS" transformers >&2 || log "install failed: plain-torch peers"
  fi
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" >&2 || log "no torch: peers skipped"
}

# runs a C bench with bf16 activations, or f32 when the backend refuses bf16
run_c() {
  local name=$1 bin=$2; shift 2
  log "$name (bf16): $bin $*"
  rm -f "$RES/$name.json"
  if timeout "$TIMEOUT" "$bin" --act bf16 "$@" --json "$RES/$name.json" > "$RES/$name.txt" 2> "$RES/$name.err"; then
    cat "$RES/$name.txt"
    return 0
  fi
  cat "$RES/$name.err" >&2
  if grep -qi "bf16\|not yet\|not implemented\|unsupported" "$RES/$name.err"; then
    log "$name: bf16 activations refused; f32 instead (labelled act f32)"
    timeout "$TIMEOUT" "$bin" --act f32 "$@" --json "$RES/$name.json" > "$RES/$name.txt" 2> "$RES/$name.err" && { cat "$RES/$name.txt"; return 0; }
    cat "$RES/$name.err" >&2
  fi
  return 1
}

run_peer() {
  local name=$1; shift
  log "$name: $PY $*"
  rm -f "$RES/$name.json"
  if timeout "$TIMEOUT" "$PY" "$@" --json "$RES/$name.json" > /dev/null 2> "$RES/$name.err"; then
    grep -E "^peer_" "$RES/$name.err"
  else
    tail -20 "$RES/$name.err" >&2
    log "$name failed"
  fi
}

phase_train() {
  device_info
  ensure_transformers
  # shellcheck disable=SC2086
  run_c gpu_train "$BUILD/bench/gpu_train/bench_gpu_train" --device cuda --peak-tflops "$PEAK_TFLOPS" $TRAIN_ARGS \
    || log "gpu_train failed"
  # shellcheck disable=SC2086
  run_peer peer_torch bench/gpu_train/peer_torch.py --device cuda --peak-tflops "$PEAK_TFLOPS" $TRAIN_ARGS
  export_out
}

phase_rollout() {
  device_info
  ensure_transformers
  # shellcheck disable=SC2086
  run_c gpu_rollout "$BUILD/bench/gpu_rollout/bench_gpu_rollout" --device cuda --bw-tbs "$BW_TBS" \
    --peak-tflops "$PEAK_TFLOPS" $ROLLOUT_ARGS || log "gpu_rollout failed"
  # shellcheck disable=SC2086
  run_peer peer_generate bench/gpu_rollout/peer_generate.py --device cuda $ROLLOUT_ARGS
  export_out
}

phase_report() {
  [ -f "$RES/device.json" ] || device_info
  "$PY" bench/gpu/report.py "$RES" --merged "$RES/bench-gpu.json" > "$RES/RESULTS-block.md"
  cat "$RES/RESULTS-block.md"
  export_out
}

for phase in "${phases[@]}"; do
  case "$phase" in
    all) phase_build && phase_train && phase_rollout && phase_report ;;
    build) phase_build || exit 1 ;;
    train) phase_train ;;
    rollout) phase_rollout ;;
    report) phase_report ;;
  esac
done
