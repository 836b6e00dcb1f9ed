/* Process-level settings the CPU backend needs before any thread starts. */
#ifndef GRPO_CORE_RUNTIME_H
#define GRPO_CORE_RUNTIME_H

/* OpenBLAS threads and OpenMP threads take turns on the same cores. With
 * libgomp's default active wait, idle OpenMP threads spin and steal the cores
 * from OpenBLAS (a decode step measured 3.6x slower: bench/rollout_cpu).
 * libgomp reads OMP_WAIT_POLICY once, when it loads, so when the variable is
 * unset this sets it to PASSIVE and re-executes the program (same pid, same
 * arguments; MPI has not started yet). A user's own setting is kept. Call it
 * first thing in main(). */
void grpo_runtime_init(char **argv);

#endif
