/* Process reward model (PRM) with the Qwen2.5-Math-PRM layout
 * (`Qwen2ForProcessRewardModel`): a decoder backbone (`model.*` tensors, no
 * lm_head) and a token-classification head
 *
 *   score.0  Linear(H, H) + bias  ->  ReLU  ->  score.2  Linear(H, 2) + bias
 *
 * read at the step separator token (`<extra_0>`, id 151651 in the Qwen2.5
 * vocabulary): step k's score is softmax(head logits at the k-th separator)[1],
 * the probability that the reasoning up to that step is correct. The input is
 * the PRM's own conversation, e.g. system + user + assistant content
 * "step1<extra_0>step2<extra_0>" in the PRM's chat template; the model is
 * causal, so tokens after the last separator do not change any score.
 *
 * The backbone runs through model_forward (model/transformer.h) with no
 * predictions, on the backend given to model_prm_create (the backbone's
 * weights are copied there when it is a device: model_params_bind); the head
 * stays on the host and is applied to the separator rows of the hidden
 * states model_forward copies back (f32, plain loops: 2*H*(H+2) flops per
 * step, negligible next to the backbone). Loading from a HF directory is ckpt_hf_load_prm
 * (checkpoints/hf_io.h): model/ does not read files of the checkpoint format. */
#ifndef GRPO_MODEL_PRM_H
#define GRPO_MODEL_PRM_H

#include <stdint.h>

#include "core/backend.h"
#include "core/error.h"
#include "model/params.h"

#define MODEL_PRM_SEP_TOKEN "<extra_0>"
#define MODEL_PRM_N_HEAD    4

/* HF names of the head tensors, in the order of model_prm_head's pointers. */
extern const char *const MODEL_PRM_HEAD_NAMES[MODEL_PRM_N_HEAD];

typedef struct model_prm_head {
  int hidden;   /* H */
  int n_labels; /* 2 */
  float *w0;    /* score.0.weight [H, H] (nn.Linear: [out, in]) */
  float *b0;    /* score.0.bias [H] */
  float *w2;    /* score.2.weight [n_labels, H] */
  float *b2;    /* score.2.bias [n_labels] */
  float *mem;   /* the one allocation the four point into; owned */
} model_prm_head;

/* Allocates a zeroed head. */
int model_prm_head_alloc(model_prm_head *h, int hidden, int n_labels, grpo_error *err);
void model_prm_head_free(model_prm_head *h);

/* Tensor i (0..MODEL_PRM_N_HEAD-1, MODEL_PRM_HEAD_NAMES order) of the head:
 * its data, ndim and shape, for loaders. */
float *model_prm_head_tensor(const model_prm_head *h, int i, int *ndim, int64_t shape[2]);

typedef struct model_prm model_prm;

/* Takes the backbone parameters and the head (moved: *backbone and *head are
 * left empty on success, untouched on failure) and plans the forward for
 * sequences of up to max_tokens tokens. The head must have n_labels == 2 and
 * hidden == the backbone's hidden size. */
int model_prm_create(model_prm **out, model_params *backbone, model_prm_head *head,
                     grpo_backend *be, int max_tokens, grpo_error *err);
void model_prm_free(model_prm *prm);

int model_prm_max_tokens(const model_prm *prm);
const model_config *model_prm_config(const model_prm *prm);

/* Step scores of one sequence: one forward over ids[0..n) (1 <= n <=
 * max_tokens, every id in the vocabulary), then scores[k] for the k-th
 * occurrence of sep_id. *n_scores = the number of separators; it is an error
 * (nothing past cap written) when that exceeds cap. logits: NULL or
 * [cap * 2], the head logits at each separator. */
int model_prm_step_scores(model_prm *prm, const int32_t *ids, int n, int32_t sep_id,
                          float *scores, float *logits, int cap, int *n_scores, grpo_error *err);

#endif
