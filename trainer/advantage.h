/* Group-relative advantages (GRPO, Dr. GRPO, DAPO, P-GRPO).
 *
 * Rewards come as a [n_samples, n_funcs] matrix, samples grouped
 * consecutively (group g = samples [g*G, (g+1)*G)). A NaN entry means the
 * function could not score the sample; a sample no function scored is
 * "unscorable": it is left out of the group statistics and gets advantage 0
 * (TRL's rule), never a made-up reward.
 *
 * Aggregation (TRL multi_objective_aggregation):
 *   sum_then_normalize  r = sum_k w_k r_k; A = (r - mean_group(r)) / (std + eps)
 *   normalize_then_sum  each r_k normalised per group, summed with weights,
 *                       then normalised over the batch
 * Scaling (TRL scale_rewards): group std, batch std, or none (Dr. GRPO and
 * P-GRPO mean-centring). std is unbiased (torch.std, TRL/verl) or population
 * (ThreadWeaver Eq. 1). */
#ifndef GRPO_TRAINER_ADVANTAGE_H
#define GRPO_TRAINER_ADVANTAGE_H

#include <stddef.h>

typedef enum trainer_scale { TRAINER_SCALE_GROUP = 0, TRAINER_SCALE_BATCH = 1, TRAINER_SCALE_NONE = 2 } trainer_scale;
typedef enum trainer_std { TRAINER_STD_UNBIASED = 0, TRAINER_STD_POPULATION = 1 } trainer_std;
typedef enum trainer_aggregation {
  TRAINER_SUM_THEN_NORMALIZE = 0,
  TRAINER_NORMALIZE_THEN_SUM = 1,
} trainer_aggregation;

typedef struct trainer_adv_options {
  trainer_scale scale;
  trainer_std std_kind;
  trainer_aggregation aggregation;
  double eps;              /* added to the std (TRL 1e-4) */
} trainer_adv_options;

typedef struct trainer_adv_stats {
  double reward_mean, reward_std;   /* over scorable samples (reward, reward_std metrics) */
  double frac_reward_zero_std;      /* groups whose scorable rewards are all equal */
  int n_unscorable;
} trainer_adv_stats;

/* rewards [n_groups*G, n_funcs] row-major, weights [n_funcs]. Writes the
 * total reward per sample (NaN when unscorable) to total (may be NULL) and
 * the advantage per sample to adv. scratch holds n_groups*G*(n_funcs+1)
 * doubles (planned once by the caller). */
void trainer_advantages(const float *rewards, int n_groups, int G, int n_funcs,
                        const float *weights, const trainer_adv_options *opt, float *total,
                        float *adv, double *scratch, trainer_adv_stats *stats);

/* A sample's weighted total over the reward functions that scored it
 * (rewards[n_funcs], NaN = did not score); NaN when none did. */
double trainer_total_reward(const float *rewards, const float *weights, int n_funcs);

/* 1 when the group's scorable rewards are all equal (or fewer than 2): the
 * groups DAPO's dynamic sampling drops. */
int trainer_group_is_degenerate(const float *total_rewards_of_group, int G);

#endif
