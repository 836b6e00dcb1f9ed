#!/usr/bin/env bash
# The one test command: installs missing Debian packages, configures, builds
# and runs every ctest label (unit, integration, mpi, gpu, slow), then an
# ASan/UBSan build over the unit, integration and MPI tests.
#
#   tests/run.sh                  everything (the sanitizer pass skips gpu and slow)
#   tests/run.sh -L unit          one label (ctest -L regex)
#   tests/run.sh --no-sanitize    skip the sanitizer pass
#   tests/run.sh --no-install     never call apt-get
#
# Environment: BUILD_DIR (default build), JOBS (default nproc), CI=true turns
# warnings into errors.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

LABEL=""
SANITIZE=1
INSTALL=1
while [ $# -gt 0 ]; do
  case "$1" in
    -L) LABEL="$2"; shift 2 ;;
    --no-sanitize) SANITIZE=0; shift ;;
    --no-install) INSTALL=0; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "tests/run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

# ---- dependencies ------------------------------------------------------------
# shellcheck source=launch/deps.sh
source "$ROOT/launch/deps.sh"
if [ "$INSTALL" = 1 ]; then grpo_install_deps; fi

JOBS=${JOBS:-$(nproc)}
BUILD_DIR=${BUILD_DIR:-build}
WERROR=OFF
if [ "${CI:-}" = "true" ]; then WERROR=ON; fi

# ---- main build: Release, CUDA compiled when nvcc exists (sm_90) --------------
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DGRPO_WERROR=$WERROR \
      -DGRPO_CUDA=AUTO -DCMAKE_CUDA_ARCHITECTURES=90 >"$BUILD_DIR.configure.log" 2>&1 \
  || { cat "$BUILD_DIR.configure.log"; exit 1; }
cmake --build "$BUILD_DIR" -j "$JOBS"

CTEST_ARGS=(--test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS")
if [ -n "$LABEL" ]; then CTEST_ARGS+=(-L "$LABEL"); fi
# OpenBLAS and OpenMP threads times parallel tests would oversubscribe the cores.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
ctest "${CTEST_ARGS[@]}"

# ---- sanitizer build: unit, integration and MPI tests under ASan + UBSan -------
if [ "$SANITIZE" = 1 ] && { [ -z "$LABEL" ] || [ "$LABEL" = unit ]; }; then
  SAN_DIR="$BUILD_DIR-asan"
  cmake -S . -B "$SAN_DIR" -DCMAKE_BUILD_TYPE=Debug -DGRPO_WERROR=$WERROR -DGRPO_CUDA=OFF \
        -DGRPO_BUILD_BENCH=OFF -DGRPO_SANITIZE=address,undefined >"$SAN_DIR.configure.log" 2>&1 \
    || { cat "$SAN_DIR.configure.log"; exit 1; }
  cmake --build "$SAN_DIR" -j "$JOBS"
  # OpenMPI and OpenBLAS keep allocations for the process lifetime: leak
  # detection is off here.
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$SAN_DIR" --output-on-failure -j "$JOBS" -LE 'gpu|slow'
fi
echo "tests/run.sh: all requested tests passed"
