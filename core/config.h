/* The YAML experiment config (libyaml), typed.
 *
 * Every key is declared once in core/config_schema.def; from it come the
 * struct below (cfg->trainer.beta, cfg->rollout.num_generations, ...), the
 * parser and validator, the resolved-YAML writer, `grpo config --defaults`
 * and docs/config.md. Modules read fields directly, never by string.
 *
 *   grpo_config cfg;
 *   grpo_error err;
 *   if (grpo_config_load(&cfg, "run.yaml", n_over, overrides, &err)) { report err.msg; }
 *   ... cfg.trainer.beta, cfg.trainer.loss_type == GRPO_CFG_LOSS_DAPO ...
 *   grpo_config_free(&cfg);
 *
 * Errors name the place: "run.yaml:12:3: trainer.beta: ..." or
 * "override 'trainer.beta=x': ...". */
#ifndef GRPO_CORE_CONFIG_H
#define GRPO_CORE_CONFIG_H

#include <float.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* A list of strings (data.eval_paths, rollout.stop_strings). */
typedef struct grpo_strlist {
  int n;
  char **items;
} grpo_strlist;

/* One `options:` entry of a reward function. Values are YAML scalars kept as
 * text; the reward module parses them. line/column: where it was written
 * (0 when not from a file). */
typedef struct grpo_reward_option {
  char *key;
  char *value;
  int line, column;
} grpo_reward_option;

/* One entry of reward.functions: {name, weight, options}. The options map
 * one to one onto reward/registry.h's reward_spec, and `where` is its
 * message prefix ("run.yaml:14:5: reward.functions[1]"). */
typedef struct grpo_reward_fn {
  char *name;
  double weight; /* finite, >= 0 */
  int n_options;
  grpo_reward_option *options;
  int line, column;
  char *where; /* not part of the value (ignored by grpo_config_equal) */
} grpo_reward_fn;

typedef struct grpo_reward_fn_list {
  int n;
  grpo_reward_fn *items;
} grpo_reward_fn_list;

/* Named constants of every enum key, e.g. GRPO_CFG_LOSS_DAPO. */
#define GRPO_CFG_SECTION(sec, doc)
#define GRPO_CFG_SECTION_END(sec)
#define GRPO_CFG_BOOL(sec, key, def, doc)
#define GRPO_CFG_INT(sec, key, def, lo, hi, doc)
#define GRPO_CFG_FLOAT(sec, key, def, lo, hi, lo_open, doc)
#define GRPO_CFG_STRING(sec, key, def, doc)
#define GRPO_CFG_STRLIST(sec, key, doc)
#define GRPO_CFG_REWARDS(sec, key, doc)
#define GRPO_CFG_V(id, name) id,
#define GRPO_CFG_ENUM(sec, key, def, values, doc) enum { values };
#include "core/config_schema.def"
#undef GRPO_CFG_ENUM
#undef GRPO_CFG_V

/* Key ids in schema order: GRPO_CFG_ID_trainer_beta, GRPO_CFG_ID_top_seed. */
#define GRPO_CFG_ID_(sec, key) GRPO_CFG_ID_##sec##_##key,
#undef GRPO_CFG_BOOL
#undef GRPO_CFG_INT
#undef GRPO_CFG_FLOAT
#undef GRPO_CFG_STRING
#undef GRPO_CFG_STRLIST
#undef GRPO_CFG_REWARDS
#define GRPO_CFG_BOOL(sec, key, def, doc) GRPO_CFG_ID_(sec, key)
#define GRPO_CFG_INT(sec, key, def, lo, hi, doc) GRPO_CFG_ID_(sec, key)
#define GRPO_CFG_FLOAT(sec, key, def, lo, hi, lo_open, doc) GRPO_CFG_ID_(sec, key)
#define GRPO_CFG_STRING(sec, key, def, doc) GRPO_CFG_ID_(sec, key)
#define GRPO_CFG_ENUM(sec, key, def, values, doc) GRPO_CFG_ID_(sec, key)
#define GRPO_CFG_STRLIST(sec, key, doc) GRPO_CFG_ID_(sec, key)
#define GRPO_CFG_REWARDS(sec, key, doc) GRPO_CFG_ID_(sec, key)
typedef enum grpo_config_key_id {
#include "core/config_schema.def"
  GRPO_CFG_NUM_KEYS
} grpo_config_key_id;

/* The config struct: top-level keys, then one struct per section. */
#undef GRPO_CFG_SECTION
#undef GRPO_CFG_SECTION_END
#undef GRPO_CFG_BOOL
#undef GRPO_CFG_INT
#undef GRPO_CFG_FLOAT
#undef GRPO_CFG_STRING
#undef GRPO_CFG_ENUM
#undef GRPO_CFG_STRLIST
#undef GRPO_CFG_REWARDS
#define GRPO_CFG_SECTION(sec, doc) struct {
#define GRPO_CFG_SECTION_END(sec) } sec;
#define GRPO_CFG_BOOL(sec, key, def, doc) bool key;
#define GRPO_CFG_INT(sec, key, def, lo, hi, doc) int64_t key;
#define GRPO_CFG_FLOAT(sec, key, def, lo, hi, lo_open, doc) double key;
#define GRPO_CFG_STRING(sec, key, def, doc) char *key; /* never NULL */
#define GRPO_CFG_ENUM(sec, key, def, values, doc) int key;
#define GRPO_CFG_STRLIST(sec, key, doc) grpo_strlist key;
#define GRPO_CFG_REWARDS(sec, key, doc) grpo_reward_fn_list key;
typedef struct grpo_config {
#include "core/config_schema.def"
  /* Where each key got its value: "run.yaml:12:3", "override 'k=v'", or
   * NULL for the default. Not part of the config's value. */
  char *origin[GRPO_CFG_NUM_KEYS];
} grpo_config;
#undef GRPO_CFG_SECTION
#undef GRPO_CFG_SECTION_END
#undef GRPO_CFG_BOOL
#undef GRPO_CFG_INT
#undef GRPO_CFG_FLOAT
#undef GRPO_CFG_STRING
#undef GRPO_CFG_ENUM
#undef GRPO_CFG_STRLIST
#undef GRPO_CFG_REWARDS
#undef GRPO_CFG_ID_

/* ---- loading ---------------------------------------------------------------- */

/* Fills every key with its default. Free with grpo_config_free. */
int grpo_config_init(grpo_config *cfg, grpo_error *err);
void grpo_config_free(grpo_config *cfg);

/* Merges a YAML file (or text; `name` is used in messages) into cfg. Keys not
 * in the file keep their current values. Rejects unknown keys (naming the
 * nearest valid one), wrong types, out-of-range and bad enum values,
 * duplicate keys, YAML syntax errors, empty, missing and binary files. On
 * error cfg holds a mix of old and new values: free it. */
int grpo_config_merge_file(grpo_config *cfg, const char *path, grpo_error *err);
int grpo_config_merge_string(grpo_config *cfg, const char *text, size_t len, const char *name,
                             grpo_error *err);

/* Applies one "section.key=value" override; the value is parsed as YAML
 * (scalar, or flow list/mapping for list keys) and validated like file
 * values. Errors name the override. */
int grpo_config_apply_override(grpo_config *cfg, const char *arg, grpo_error *err);

/* True when arg looks like an override ("name.key=..." or "seed=..."), so
 * commands can tell overrides from file names. */
bool grpo_config_is_override(const char *arg);

/* Resolves derived defaults (output_dir, epsilon_high) and checks rules that
 * span keys (e.g. disaggregated needs rollout_ranks >= 1). Idempotent. */
int grpo_config_finalize(grpo_config *cfg, grpo_error *err);

/* init + merge_file (when path is not NULL) + overrides + finalize. On error
 * cfg is freed and err names the file, line and key. */
int grpo_config_load(grpo_config *cfg, const char *path, int n_overrides,
                     const char *const *overrides, grpo_error *err);

/* ---- writing ---------------------------------------------------------------- */

/* The whole config as YAML (malloc'd, NUL-terminated; *len may be NULL).
 * Loading this text gives a config equal to cfg. */
int grpo_config_to_yaml(const grpo_config *cfg, char **out, size_t *len, grpo_error *err);
/* Writes it to path (written to path.tmp then renamed). */
int grpo_config_write_file(const grpo_config *cfg, const char *path, grpo_error *err);

/* Every key with its default and documentation, as commented YAML that
 * itself loads to the defaults (`grpo config --defaults`). */
int grpo_config_defaults_yaml(char **out, grpo_error *err);
/* docs/config.md (`grpo config --markdown`). */
int grpo_config_markdown(char **out, grpo_error *err);

/* ---- comparing and copying ---------------------------------------------------- */

/* True when every key has the same value (origins are ignored). */
bool grpo_config_equal(const grpo_config *a, const grpo_config *b);
/* Names the first key that differs, or NULL when equal. */
const char *grpo_config_first_difference(const grpo_config *a, const grpo_config *b);
int grpo_config_copy(grpo_config *dst, const grpo_config *src, grpo_error *err);

/* ---- schema introspection ------------------------------------------------------ */

typedef enum grpo_config_type {
  GRPO_CFG_T_BOOL,
  GRPO_CFG_T_INT,
  GRPO_CFG_T_FLOAT,
  GRPO_CFG_T_STRING,
  GRPO_CFG_T_ENUM,
  GRPO_CFG_T_STRLIST,
  GRPO_CFG_T_REWARDS,
} grpo_config_type;

typedef struct grpo_config_key {
  const char *path;    /* "trainer.beta"; top-level keys have no dot */
  const char *section; /* "trainer"; "" for top-level keys */
  const char *name;    /* "beta" */
  grpo_config_type type;
  size_t offset;       /* of the field in grpo_config */
  int64_t int_def, int_min, int_max; /* bool/enum defaults use int_def */
  double float_def, float_min, float_max;
  bool float_min_open;
  const char *str_def;
  const char *const *enum_names; /* NULL-terminated */
  const char *doc;
} grpo_config_key;

/* The schema, in declaration order (GRPO_CFG_NUM_KEYS entries). */
const grpo_config_key *grpo_config_keys(void);
/* Looks a key up by path; NULL when unknown. */
const grpo_config_key *grpo_config_find_key(const char *path);
/* Name of an enum key's value: grpo_config_enum_name(GRPO_CFG_ID_trainer_loss_type,
 * cfg->trainer.loss_type) == "dapo". */
const char *grpo_config_enum_name(grpo_config_key_id id, int value);
/* Where a key got its value ("run.yaml:12:3", "override 'k=v'", "default"). */
const char *grpo_config_origin(const grpo_config *cfg, grpo_config_key_id id);

/* The candidate nearest to word by edit distance (with transpositions), or
 * NULL when none is close enough to be a plausible typo. Reused by modules
 * that validate names (reward functions, eval sets). */
const char *grpo_nearest_name(const char *word, const char *const *candidates, size_t n);

#endif
