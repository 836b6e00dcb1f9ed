#include "trainer/pack.h"

#include <stdlib.h>
#include <string.h>

int trainer_packed_init(trainer_packed *p, int cap_tokens, int cap_pred, trainer_trie_labels labels,
                        grpo_error *err) {
  memset(p, 0, sizeof *p);
  if (cap_tokens <= 0 || cap_pred <= 0)
    return GRPO_FAIL(err, GRPO_EINVAL, "packed batch capacity must be > 0 (tokens %d, predictions %d)",
                     cap_tokens, cap_pred);
  p->cap_tokens = cap_tokens;
  p->cap_pred = cap_pred;
  p->labels = labels;
  size_t t = (size_t)cap_tokens, k = (size_t)cap_pred;
  p->ids = malloc(t * sizeof(int32_t));
  p->pos = malloc(t * sizeof(int32_t));
  p->tin = malloc(t * sizeof(int32_t));
  p->tout = malloc(t * sizeof(int32_t));
  p->token_seq = malloc(t * sizeof(int32_t));
  p->pred_row = malloc(k * sizeof(int32_t));
  p->pred_target = malloc(k * sizeof(int32_t));
  p->pred_seq = malloc(k * sizeof(int32_t));
  p->node_tok = malloc(t * sizeof(int32_t));
  p->node_parent = malloc(t * sizeof(int32_t));
  p->node_first = malloc(t * sizeof(int32_t));
  p->node_next = malloc(t * sizeof(int32_t));
  p->node_last = malloc(t * sizeof(int32_t));
  p->node_order = malloc(t * sizeof(int32_t));
  p->node_loss = malloc(t);
  if (!p->ids || !p->pos || !p->tin || !p->tout || !p->token_seq || !p->pred_row ||
      !p->pred_target || !p->pred_seq || !p->node_tok || !p->node_parent || !p->node_first ||
      !p->node_next || !p->node_last || !p->node_order || !p->node_loss) {
    trainer_packed_free(p);
    return GRPO_FAIL(err, GRPO_ENOMEM, "packed batch: out of memory for %d tokens", cap_tokens);
  }
  return GRPO_OK;
}

void trainer_packed_free(trainer_packed *p) {
  free(p->ids); free(p->pos); free(p->tin); free(p->tout); free(p->token_seq);
  free(p->pred_row); free(p->pred_target); free(p->pred_seq);
  free(p->node_tok); free(p->node_parent); free(p->node_first); free(p->node_next);
  free(p->node_last); free(p->node_order); free(p->node_loss);
  memset(p, 0, sizeof *p);
}

void trainer_packed_clear(trainer_packed *p) {
  p->n_tokens = 0;
  p->n_pred = 0;
}

int trainer_pack_trajectory(trainer_packed *p, const int32_t *const *seqs, const int *lens,
                            const uint8_t *const *loss_masks, int n_seqs, int32_t seq_id,
                            grpo_error *err) {
  if (n_seqs <= 0 || lens[0] <= 0)
    return GRPO_FAIL(err, GRPO_EINVAL, "trajectory %d: no tokens", seq_id);
  const int room = p->cap_tokens - p->n_tokens;
  /* Build the trie in node scratch (node 0 = the root token). */
  int n_nodes = 1;
  p->node_tok[0] = seqs[0][0];
  p->node_parent[0] = -1;
  p->node_first[0] = p->node_last[0] = p->node_next[0] = -1;
  p->node_loss[0] = 0;
  for (int s = 0; s < n_seqs; s++) {
    if (lens[s] <= 0) continue;
    if (seqs[s][0] != seqs[0][0])
      return GRPO_FAIL(err, GRPO_EINVAL,
                       "trajectory %d: sequence %d starts with token %d, not the shared root %d",
                       seq_id, s, seqs[s][0], seqs[0][0]);
    if (loss_masks && loss_masks[s] && loss_masks[s][0])
      return GRPO_FAIL(err, GRPO_EINVAL,
                       "trajectory %d: sequence %d trains its first token, which has no parent",
                       seq_id, s);
    int node = 0;
    for (int t = 1; t < lens[s]; t++) {
      int32_t tok = seqs[s][t];
      int child = p->node_first[node];
      while (child >= 0 && p->node_tok[child] != tok) child = p->node_next[child];
      if (child < 0) {
        if (n_nodes >= room)
          return GRPO_FAIL(err, GRPO_EBUDGET, "trajectory %d does not fit: %d tokens left in the batch",
                           seq_id, room);
        child = n_nodes++;
        p->node_tok[child] = tok;
        p->node_parent[child] = node;
        p->node_first[child] = p->node_last[child] = p->node_next[child] = -1;
        p->node_loss[child] = 0;
        /* children keep insertion order */
        if (p->node_last[node] < 0)
          p->node_first[node] = child;
        else
          p->node_next[p->node_last[node]] = child;
        p->node_last[node] = child;
      }
      if (loss_masks && loss_masks[s] && loss_masks[s][t]) p->node_loss[child] = 1;
      node = child;
    }
  }
  int n_loss = 0;
  for (int i = 0; i < n_nodes; i++) n_loss += p->node_loss[i];
  if (n_nodes > room || n_loss > p->cap_pred - p->n_pred)
    return GRPO_FAIL(err, GRPO_EBUDGET, "trajectory %d does not fit: %d tokens, %d predictions", seq_id,
                     n_nodes, n_loss);

  /* Pre-order walk without recursion: node_order[node] = flat index. The
   * parent chain (node_parent) lets the walk climb back up. */
  const int base = p->n_tokens;
  int idx = 0, node = 0, depth = 0;
  for (;;) {
    int flat = base + idx;
    p->node_order[node] = flat;
    p->ids[flat] = p->node_tok[node];
    p->pos[flat] = depth;
    p->tin[flat] = flat;
    p->token_seq[flat] = seq_id;
    idx++;
    if (p->node_first[node] >= 0) {
      node = p->node_first[node];
      depth++;
      continue;
    }
    /* leaf: close it and every ancestor whose children are done */
    for (;;) {
      p->tout[p->node_order[node]] = base + idx - 1;
      if (p->node_next[node] >= 0) {
        node = p->node_next[node];
        break;
      }
      node = p->node_parent[node];
      depth--;
      if (node < 0) break;
    }
    if (node < 0) break;
  }
  /* Predictions in flat order (node_first is free now: reuse it as the
   * flat-to-node map). */
  int32_t *node_at = p->node_first;
  for (int i = 0; i < n_nodes; i++) node_at[p->node_order[i] - base] = i;
  int k = p->n_pred;
  for (int f = 1; f < n_nodes; f++) {
    int i = node_at[f];
    if (!p->node_loss[i]) continue;
    int row = base + f;
    p->pred_row[k] = p->labels == TRAINER_LABELS_PARENT ? p->node_order[p->node_parent[i]] : row - 1;
    p->pred_target[k] = p->node_tok[i];
    p->pred_seq[k] = seq_id;
    k++;
  }
  p->n_pred = k;
  p->n_tokens = base + n_nodes;
  return GRPO_OK;
}

int trainer_pack_sequence(trainer_packed *p, const int32_t *tokens, int n, const uint8_t *loss_mask,
                          int32_t seq_id, grpo_error *err) {
  const int32_t *seqs[1] = {tokens};
  const uint8_t *masks[1] = {loss_mask};
  return trainer_pack_trajectory(p, seqs, &n, masks, 1, seq_id, err);
}
