#!/usr/bin/env bash
# The README's first command. Installs missing Debian packages, builds a
# Release binary, then runs the built-in experiment of configs/quickstart.yaml
# on NP ranks (default 2) of this machine:
#   1. grpo sft    supervised warm-up of a small random model on worked
#                  solutions of the synthetic arithmetic task
#   2. grpo train  GRPO with the math verifier as the reward
# Held-out accuracy is measured before and after GRPO (the mean of 4 samples
# at temperature 1 on a split disjoint from training). Everything goes to runs/quickstart/:
# sft/ and grpo/ (checkpoints, metrics.jsonl, config.yaml, summary.json,
# eval/ with the pass@k / maj@k table of the trained model) and
# summary.json with accuracy_before_grpo, accuracy_after_grpo, wall_seconds.
#
#   NP=4 ./launch/quickstart.sh          more ranks
#   ./launch/quickstart.sh trainer.max_steps=20   overrides for the GRPO run
set -euo pipefail
cd "$(dirname "$0")/.."
source launch/deps.sh
grpo_install_deps
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >build.configure.log 2>&1 || { cat build.configure.log; exit 1; }
cmake --build build -j "$(nproc)" --target grpo

NP=${NP:-2}
RUN=runs/quickstart
MPIRUN=(mpirun -np "$NP" --oversubscribe)
if [ "$(id -u)" = 0 ]; then
  # containers often run as root; Open MPI refuses that unless told
  echo "quickstart: running as root, passing --allow-run-as-root to mpirun"
  MPIRUN+=(--allow-run-as-root)
fi
# one OpenMP thread per rank: the ranks already fill the cores
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

rm -rf "$RUN"
mkdir -p "$RUN"
t0=$(date +%s)
echo "== 1/2 SFT warm-up"
"${MPIRUN[@]}" build/cli/grpo sft configs/quickstart.yaml output_dir="$RUN/sft"
echo "== 2/2 GRPO"
"${MPIRUN[@]}" build/cli/grpo train configs/quickstart.yaml model.path="$RUN/sft" \
  output_dir="$RUN/grpo" trainer.eval_on_start=true "$@"
t1=$(date +%s)

field() { sed -n "s/.*\"$1\": \([-0-9.e]*\).*/\1/p" "$RUN/grpo/summary.json" | head -1; }
before=$(field accuracy_first)
after=$(field accuracy_last)
cat >"$RUN/summary.json" <<JSON
{"accuracy_before_grpo": $before, "accuracy_after_grpo": $after, "wall_seconds": $((t1 - t0)),
 "sft_dir": "$RUN/sft", "grpo_dir": "$RUN/grpo"}
JSON
ln -sf grpo/metrics.jsonl "$RUN/metrics.jsonl"
echo "== test-time scaling of the trained model (grpo eval: 8 samples per held-out problem)"
"${MPIRUN[@]}" build/cli/grpo eval configs/quickstart.yaml --ckpt "$RUN/grpo/checkpoints" --sets arithmetic \
  --n 8 --k 1,2,4,8 --out "$RUN/grpo/eval" logging.progress=false
build/cli/grpo report "$RUN/grpo" >/dev/null && ln -sf grpo/report.html "$RUN/report.html"
echo
echo "held-out accuracy before GRPO: $before"
echo "held-out accuracy after GRPO:  $after"
echo "wall time: $((t1 - t0)) s; results in $RUN/ (charts: $RUN/report.html)"
