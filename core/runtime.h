/* Process-level settings the CPU backend needs before any thread starts. */
#ifndef GRPO_CORE_RUNTIME_H
#define GRPO_CORE_RUNTIME_H

/* Idle OpenMP threads must not spin on cores that others need. With
 * libgomp's default active wait they do: when OpenBLAS ran its own threads
 * beside OpenMP's, a decode step measured 3.6x slower (bench/rollout_cpu).
 * Since the backend keeps one thread pool (core/backend.h) a single process
 * runs as fast either way (re-measured 2026-11-25, 2 cores: decode 749-767
 * vs 735-776 tokens/s, fwd+bwd 620-647 vs 626-648 tokens/s, passive vs
 * active), but passive waiting still protects MPI ranks that share cores
 * and the sgemm peak yardstick of bench/ (halved under active waiting).
 * libgomp reads OMP_WAIT_POLICY once, when it loads, so when the variable is
 * unset this sets it to PASSIVE and re-executes the program (same pid, same
 * arguments; MPI has not started yet). A user's own setting is kept. Call it
 * first thing in main(). */
void grpo_runtime_init(char **argv);

#endif
