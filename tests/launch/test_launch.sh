#!/usr/bin/env bash
# The launch scripts' logic without Slurm or PBS: scheduler variables set by
# hand, grpo replaced by a stub that records its arguments and the signal it
# gets. Prints "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
check() { if eval "$2"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $1" >&2; fi; }

# a stand-in for grpo-run: records its arguments, waits for a signal, exits 0 on USR1
cat >"$tmp/stub" <<'STUB'
#!/usr/bin/env bash
printf '%s ' "$@" >"$STUB_DIR/args"
trap 'echo USR1 >"$STUB_DIR/signal"; exit 0' USR1
trap 'echo TERM >"$STUB_DIR/signal"; exit 0' TERM
for _ in $(seq 1 300); do sleep 0.1; done
exit 3
STUB
chmod +x "$tmp/stub"
printf '#!/bin/sh\necho "$@" >"$STUB_DIR/scontrol.out"\n' >"$tmp/scontrol"
chmod +x "$tmp/scontrol"
export STUB_DIR=$tmp

wait_for() { for _ in $(seq 1 100); do [ -e "$1" ] && return 0; sleep 0.05; done; return 1; }

# 1. grpo-run builds the mpirun line from the Slurm allocation
out=$(SLURM_NTASKS=16 SLURM_NTASKS_PER_NODE='8(x2)' OMP_NUM_THREADS= launch/grpo-run --dry-run --gpus-per-node 8 -- train run.yaml x=1)
check "grpo-run: 16 ranks" '[[ "$out" == *"-np 16"* ]]'
check "grpo-run: one rank per GPU" '[[ "$out" == *"--map-by ppr:8:node"* ]]'
check "grpo-run: GPU per local rank" '[[ "$out" == *"CUDA_VISIBLE_DEVICES"* ]]'
check "grpo-run: arguments passed" '[[ "$out" == *"train run.yaml x=1"* ]]'
check "grpo-run: no root by default" '[[ "$out" != *"allow-run-as-root"* ]]'
out=$(launch/grpo-run --dry-run -n 2 --allow-root -- sft r.yaml)
check "grpo-run: root only when asked" '[[ "$out" == *"--allow-run-as-root"* ]]'
launch/grpo-run --bind sideways -- train r.yaml >/dev/null 2>&1
check "grpo-run: bad option rejected" '[ $? -eq 2 ]'

# 2. Slurm: USR1 before the time limit reaches grpo, then the job requeues
rm -f "$tmp/args" "$tmp/signal" "$tmp/scontrol.out"
SLURM_JOB_ID=4242 SLURM_GPUS_PER_NODE=h100:4 GRPO_RUN="$tmp/stub" SCONTROL="$tmp/scontrol" \
  CONFIG=configs/quickstart.yaml bash launch/slurm.sbatch trainer.max_steps=7 >"$tmp/slurm.log" 2>&1 &
batch=$!
wait_for "$tmp/args"
kill -USR1 "$batch"
wait "$batch"
status=$?
check "slurm: exit 0 after the checkpoint" '[ $status -eq 0 ]'
check "slurm: grpo got SIGUSR1" 'grep -q USR1 "$tmp/signal"'
check "slurm: resume=auto and overrides passed" 'grep -q "train configs/quickstart.yaml checkpoint.resume=auto trainer.max_steps=7" "$tmp/args"'
check "slurm: GPUs per node parsed" 'grep -q -- "--gpus-per-node 4" "$tmp/args"'
check "slurm: requeued" 'grep -q "requeue 4242" "$tmp/scontrol.out"'

# 3. PBS: SIGTERM (qdel / walltime) becomes a checkpoint too; ranks from the node file
rm -f "$tmp/args" "$tmp/signal"
printf 'n1\nn1\nn2\nn2\n' >"$tmp/nodes"
PBS_NODEFILE="$tmp/nodes" GPUS_PER_NODE=2 GRPO_RUN="$tmp/stub" bash launch/pbs.sh >"$tmp/pbs.log" 2>&1 &
batch=$!
wait_for "$tmp/args"
kill -TERM "$batch"
wait "$batch"
status=$?
check "pbs: exit 0" '[ $status -eq 0 ]'
check "pbs: grpo got SIGUSR1 for SIGTERM" 'grep -q USR1 "$tmp/signal"'
check "pbs: 4 ranks from the node file" 'grep -q -- "-n 4 --gpus-per-node 2" "$tmp/args"'

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
