/* Packed training batches: many sequences in one token stream.
 *
 * Every token carries a position id and an ancestor interval [tin, tout]:
 * token i attends to token j iff tin[j] <= tin[i] <= tout[j] (the model's
 * packed attention). A trajectory is inserted as a token trie: its sequences
 * share nodes where their prefixes agree, nodes are laid out in pre-order,
 * tin = pre-order index, tout = the last index of the node's subtree, and the
 * position id is the depth. A plain sequence is a trie with one path, which
 * gives ordinary causal packing; ThreadWeaver's P-GRPO trajectories (the
 * combined sequence plus one branch sequence per thread) give trie packing.
 *
 * Loss: a node is trained when any inserted sequence marks it; it is then
 * predicted once, from its parent's row (trie_labels: parent), or from the
 * previous row of the flat stream (shifted: the public ThreadWeaver collator's
 * behaviour, offered only as a parity switch).
 *
 * Capacity is planned once (max tokens and predictions per micro-batch); an
 * insertion that does not fit returns GRPO_EBUDGET and leaves the batch as it
 * was, so the caller can flush it and start the next micro-batch. */
#ifndef GRPO_TRAINER_PACK_H
#define GRPO_TRAINER_PACK_H

#include <stdint.h>

#include "core/error.h"

typedef enum trainer_trie_labels { TRAINER_LABELS_PARENT = 0, TRAINER_LABELS_SHIFTED = 1 } trainer_trie_labels;

typedef struct trainer_packed {
  int cap_tokens, cap_pred;
  trainer_trie_labels labels;
  /* the stream */
  int n_tokens;
  int32_t *ids, *pos, *tin, *tout;
  int32_t *token_seq;    /* which inserted trajectory (its seq_id) a token belongs to */
  /* predictions: logprob of pred_target[k] from the hidden state of row pred_row[k] */
  int n_pred;
  int32_t *pred_row, *pred_target, *pred_seq;
  /* scratch for building one trajectory's trie */
  int32_t *node_tok, *node_parent, *node_first, *node_next, *node_last, *node_order;
  uint8_t *node_loss;
} trainer_packed;

int trainer_packed_init(trainer_packed *p, int cap_tokens, int cap_pred, trainer_trie_labels labels,
                        grpo_error *err);
void trainer_packed_free(trainer_packed *p);
void trainer_packed_clear(trainer_packed *p);

/* Inserts one trajectory made of n_seqs token sequences (all starting with
 * the same first token: the shared prompt root). loss_masks[s][t] != 0 marks
 * token t of sequence s as trained (NULL: none of that sequence). The first
 * token can never be trained (it has no parent). seq_id tags its tokens and
 * predictions (e.g. the completion index, to look up its advantage). */
int trainer_pack_trajectory(trainer_packed *p, const int32_t *const *seqs, const int *lens,
                            const uint8_t *const *loss_masks, int n_seqs, int32_t seq_id,
                            grpo_error *err);

/* One plain sequence, trained where loss_mask says (causal packing). */
int trainer_pack_sequence(trainer_packed *p, const int32_t *tokens, int n, const uint8_t *loss_mask,
                          int32_t seq_id, grpo_error *err);

#endif
