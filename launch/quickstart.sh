#!/usr/bin/env bash
# The README's first command: install missing Debian packages, build a
# Release binary, then run the built-in experiment (configs/quickstart.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
source launch/deps.sh
grpo_install_deps
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >build.configure.log 2>&1 || { cat build.configure.log; exit 1; }
cmake --build build -j "$(nproc)"
if [ ! -f configs/quickstart.yaml ]; then
  echo "quickstart: grpo is built (build/cli/grpo), but the built-in experiment is not ready yet:"
  echo "it arrives with the quickstart issue (SFT warm-up + GRPO on synthetic arithmetic)."
  exit 2
fi
exec build/cli/grpo train configs/quickstart.yaml "$@"
