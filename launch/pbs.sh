#!/usr/bin/env bash
# PBS Pro / Torque template for grpo: multi-node, one rank per GPU,
# checkpoint on SIGTERM (qdel, preemption, walltime with kill_delay) and rerun.
#
#   qsub -v CONFIG=configs/qwen2.5-0.5b-gsm8k.yaml launch/pbs.sh
#
# PBS sends SIGTERM before SIGKILL (kill_delay); grpo writes a checkpoint at
# the next step and exits 0; the job is marked rerunnable (-r y) and
# checkpoint.resume: auto continues from checkpoints/latest on the rerun.
#PBS -N grpo
#PBS -l select=2:ncpus=64:ngpus=8:mpiprocs=8
#PBS -l walltime=24:00:00
#PBS -r y
#PBS -j oe
#PBS -o logs/
set -uo pipefail
cd "${PBS_O_WORKDIR:-$(dirname "$0")/..}"
mkdir -p logs
CONFIG=${CONFIG:-configs/qwen2.5-0.5b-gsm8k.yaml}
GRPO_RUN=${GRPO_RUN:-launch/grpo-run}
NP=$( [ -n "${PBS_NODEFILE:-}" ] && wc -l <"$PBS_NODEFILE" || echo 1 )
GPUS=${GPUS_PER_NODE:-8}
echo "grpo: PBS job ${PBS_JOBID:-?} with $NP ranks, config $CONFIG"
"$GRPO_RUN" -n "$NP" --gpus-per-node "$GPUS" -- train "$CONFIG" checkpoint.resume=auto "$@" &
child=$!
trap 'kill -USR1 $child 2>/dev/null' USR1
trap 'kill -USR1 $child 2>/dev/null' TERM  # mpirun would SIGKILL after SIGTERM; USR1 reaches grpo
status=0
while :; do
  wait "$child" && status=0 || status=$?
  kill -0 "$child" 2>/dev/null || break
done
echo "grpo: exited with status $status"
exit "$status"
