/* Question/answer datasets from JSONL files, with the field mapping of each
 * benchmark layout declared once here.
 *
 *   task_dataset ds;
 *   task_format fmt;
 *   task_format_builtin("gsm8k", &fmt);          // or fill a custom mapping
 *   task_dataset_load(&ds, "data/gsm8k/test.jsonl", &fmt, &err);
 *   ds.items[i].question, ds.items[i].gold
 *
 * A row that cannot be used (invalid JSON, a missing or empty field) is
 * skipped with a logged reason naming file:line, and counted in ds.skipped. */
#ifndef GRPO_TASKS_DATASET_H
#define GRPO_TASKS_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* How the gold answer is obtained from a row. */
typedef enum task_gold_rule {
  TASK_GOLD_FIELD = 0,   /* the answer field as is (strings; numbers printed; lists joined) */
  TASK_GOLD_GSM8K = 1,   /* the text after the last "####" of the answer field */
  TASK_GOLD_LAST_BOXED = 2, /* the content of the last \boxed{...} of the answer field */
} task_gold_rule;

typedef struct task_format {
  char name[32];
  char id_field[32];        /* may be empty: the row number is the id */
  char question_field[32];
  char answer_field[32];
  task_gold_rule gold_rule;
  char solution_field[32];  /* optional worked solution (SFT); may be empty */
} task_format;

typedef struct task_item {
  char *id;
  char *question;
  char *gold;      /* the reference answer the verifier compares with */
  char *solution;  /* worked solution, or NULL */
  int line;        /* 1-based line in the source file */
} task_item;

typedef struct task_dataset {
  char path[512];
  task_item *items;
  size_t n;
  size_t skipped;   /* rows that could not be used */
} task_dataset;

/* Fills *fmt with the mapping of a known layout: gsm8k, math500, aime24,
 * amc23, minerva_math, olympiadbench. Returns GRPO_ENOTFOUND otherwise. */
int task_format_builtin(const char *name, task_format *fmt);
/* Comma-separated names of the built-in layouts (for messages and docs). */
const char *task_format_names(void);

int task_dataset_load(task_dataset *ds, const char *path, const task_format *fmt,
                      grpo_error *err);
/* Same from memory; `name` is used in messages. Keeps no pointer to buf. */
int task_dataset_load_buffer(task_dataset *ds, const char *name, const char *buf, size_t len,
                             const task_format *fmt, grpo_error *err);
void task_dataset_free(task_dataset *ds);

/* Extracts the gold answer from an answer text by rule into a new string
 * (caller frees). Returns NULL when the rule finds nothing. */
char *task_extract_gold(const char *answer, task_gold_rule rule);

/* A deterministic pass over a dataset: each epoch is a Philox permutation of
 * (seed, epoch), so (epoch, index) is all the state a checkpoint needs. */
typedef struct task_cursor {
  uint64_t seed;
  uint32_t epoch;
  uint32_t index;     /* next position within the epoch's permutation */
  int shuffle;        /* 0: file order */
  size_t n;           /* dataset size */
  uint32_t *perm;     /* permutation of the current epoch */
  uint32_t perm_epoch;
} task_cursor;

/* n > 0. Returns GRPO_OK or GRPO_ENOMEM. */
int task_cursor_init(task_cursor *c, size_t n, uint64_t seed, int shuffle);
/* Restores a saved position (from a checkpoint). */
void task_cursor_seek(task_cursor *c, uint32_t epoch, uint32_t index);
/* Writes the next `count` item indices to out, wrapping into new epochs. */
void task_cursor_next(task_cursor *c, size_t count, uint32_t *out);
void task_cursor_free(task_cursor *c);

/* Renders a prompt template: "{question}" is replaced by the question,
 * "{{" and "}}" are literal braces. Returns the length written (excluding the
 * NUL) or -1 when the template has an unknown placeholder or out is too
 * small (err says which). */
long task_prompt_render(const char *tmpl, const char *question, char *out, size_t cap,
                        grpo_error *err);

#endif
