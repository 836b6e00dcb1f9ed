/* The YAML experiment config: schema, loading, overrides, errors with
 * file:line:column, the resolved-YAML round trip and docs/config.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "test.h"

static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  size_t got = fread(buf, 1, (size_t)n, f);
  fclose(f);
  buf[got] = '\0';
  if (len) *len = got;
  return buf;
}

static const char *tmp_path(const char *name) {
  static char buf[512];
  const char *dir = getenv("TMPDIR");
  snprintf(buf, sizeof buf, "%s/grpo_test_config_%d_%s", dir ? dir : "/tmp", (int)getpid(), name);
  return buf;
}

static void write_bytes(const char *path, const char *data, size_t n) {
  FILE *f = fopen(path, "wb");
  fwrite(data, 1, n, f);
  fclose(f);
}

/* Loads a file expecting failure; returns the message (static). */
static const char *load_error(const char *path, const char *const *over, int n_over, int *code) {
  static grpo_error err;
  grpo_error_clear(&err);
  grpo_config cfg;
  int rc = grpo_config_load(&cfg, path, n_over, over, &err);
  if (rc == GRPO_OK) grpo_config_free(&cfg);
  if (code) *code = rc;
  return rc == GRPO_OK ? "(loaded without error)" : err.msg;
}

/* ---- the schema ---------------------------------------------------------------- */

TEST(schema_is_well_formed) {
  const grpo_config_key *keys = grpo_config_keys();
  int seen_section = 0;
  const char *prev_section = "";
  for (int i = 0; i < GRPO_CFG_NUM_KEYS; i++) {
    const grpo_config_key *k = &keys[i];
    CHECK_MSG(k->doc && strlen(k->doc) > 10, "%s has no doc", k->path);
    for (int j = 0; j < i; j++) CHECK_MSG(strcmp(keys[j].path, k->path) != 0, "%s twice", k->path);
    CHECK(grpo_config_find_key(k->path) == k);
    /* Top-level keys first, then each section in one block (the writers rely on it). */
    if (k->section[0]) seen_section = 1;
    CHECK_MSG(!(seen_section && !k->section[0]), "top-level key %s after a section", k->path);
    if (strcmp(prev_section, k->section) != 0) {
      for (int j = 0; j < i; j++)
        CHECK_MSG(strcmp(keys[j].section, k->section) != 0, "section %s split", k->section);
      prev_section = k->section;
    }
    if (k->type == GRPO_CFG_T_INT) {
      CHECK(k->int_min <= k->int_def && k->int_def <= k->int_max);
    } else if (k->type == GRPO_CFG_T_FLOAT) {
      CHECK_MSG(k->float_min <= k->float_def && k->float_def <= k->float_max &&
                    !(k->float_min_open && k->float_def == k->float_min),
                "%s default out of range", k->path);
    } else if (k->type == GRPO_CFG_T_ENUM) {
      int n = 0;
      while (k->enum_names[n]) n++;
      CHECK(n >= 2 && k->int_def >= 0 && k->int_def < n);
    }
  }
  CHECK(grpo_config_find_key("trainer.nope") == NULL);
}

/* Scripts and docs depend on these names and types (DESIGN.md "Configuration"). */
TEST(fixed_keys_exist) {
  static const struct {
    const char *path;
    grpo_config_type type;
  } fixed[] = {
      {"seed", GRPO_CFG_T_INT}, {"run_name", GRPO_CFG_T_STRING}, {"output_dir", GRPO_CFG_T_STRING},
      {"rollout.num_generations", GRPO_CFG_T_INT}, {"rollout.max_completion_length", GRPO_CFG_T_INT},
      {"rollout.temperature", GRPO_CFG_T_FLOAT}, {"rollout.top_p", GRPO_CFG_T_FLOAT},
      {"rollout.top_k", GRPO_CFG_T_INT}, {"rollout.min_p", GRPO_CFG_T_FLOAT},
      {"rollout.repetition_penalty", GRPO_CFG_T_FLOAT}, {"rollout.parallel_threads", GRPO_CFG_T_BOOL},
      {"trainer.max_steps", GRPO_CFG_T_INT}, {"trainer.prompts_per_step", GRPO_CFG_T_INT},
      {"trainer.loss_type", GRPO_CFG_T_ENUM}, {"trainer.scale_rewards", GRPO_CFG_T_ENUM},
      {"trainer.beta", GRPO_CFG_T_FLOAT}, {"trainer.epsilon", GRPO_CFG_T_FLOAT},
      {"trainer.epsilon_high", GRPO_CFG_T_FLOAT}, {"trainer.num_iterations", GRPO_CFG_T_INT},
      {"trainer.mask_truncated_completions", GRPO_CFG_T_BOOL}, {"optim.lr", GRPO_CFG_T_FLOAT},
      {"optim.weight_decay", GRPO_CFG_T_FLOAT}, {"optim.warmup_steps", GRPO_CFG_T_INT},
      {"optim.schedule", GRPO_CFG_T_ENUM}, {"optim.max_grad_norm", GRPO_CFG_T_FLOAT},
      {"checkpoint.every_steps", GRPO_CFG_T_INT}, {"checkpoint.keep_last", GRPO_CFG_T_INT},
      {"checkpoint.resume", GRPO_CFG_T_STRING}, {"distributed.mode", GRPO_CFG_T_ENUM},
      {"distributed.rollout_ranks", GRPO_CFG_T_INT}, {"model.device", GRPO_CFG_T_ENUM},
      {"reward.functions", GRPO_CFG_T_REWARDS}, {"logging.tensorboard", GRPO_CFG_T_BOOL},
  };
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
    const grpo_config_key *k = grpo_config_find_key(fixed[i].path);
    CHECK_MSG(k && k->type == fixed[i].type, "%s missing or wrong type", fixed[i].path);
  }
  CHECK_STR(grpo_config_enum_name(GRPO_CFG_ID_trainer_loss_type, GRPO_CFG_LOSS_DR_GRPO), "dr_grpo");
  CHECK_STR(grpo_config_enum_name(GRPO_CFG_ID_trainer_scale_rewards, GRPO_CFG_SCALE_BATCH), "batch");
  CHECK_STR(grpo_config_enum_name(GRPO_CFG_ID_distributed_mode, GRPO_CFG_MODE_DISAGGREGATED),
            "disaggregated");
  CHECK_STR(grpo_config_enum_name(GRPO_CFG_ID_trainer_kl_estimator, GRPO_CFG_KL_K3_PLUS), "k3+");
  CHECK(grpo_config_enum_name(GRPO_CFG_ID_trainer_beta, 0) == NULL);
  CHECK(grpo_config_enum_name(GRPO_CFG_ID_trainer_loss_type, 99) == NULL);
}

TEST(defaults) {
  grpo_config cfg;
  grpo_error err;
  CHECK(grpo_config_load(&cfg, NULL, 0, NULL, &err) == GRPO_OK);
  CHECK_EQ_INT(cfg.seed, 42);
  CHECK_STR(cfg.run_name, "grpo");
  CHECK_STR(cfg.output_dir, "runs/grpo"); /* derived by finalize */
  CHECK_EQ_INT(cfg.rollout.num_generations, 8);
  CHECK_EQ_INT(cfg.rollout.max_completion_length, 512);
  CHECK_NEAR(cfg.rollout.temperature, 1.0, 0);
  CHECK_EQ_INT(cfg.trainer.loss_type, GRPO_CFG_LOSS_DAPO); /* TRL's default */
  CHECK_EQ_INT(cfg.trainer.scale_rewards, GRPO_CFG_SCALE_GROUP);
  CHECK_NEAR(cfg.trainer.beta, 0.0, 0);
  CHECK_NEAR(cfg.trainer.epsilon_high, 0.2, 0); /* = epsilon when unset */
  CHECK(cfg.trainer.importance_sampling_correction);
  CHECK_EQ_INT(cfg.trainer.kl_estimator, GRPO_CFG_KL_K3);
  CHECK_NEAR(cfg.optim.lr, 1e-6, 0);
  CHECK_STR(cfg.checkpoint.resume, "auto");
  CHECK_EQ_INT(cfg.distributed.mode, GRPO_CFG_MODE_COLOCATED);
  CHECK_EQ_INT(cfg.model.device, GRPO_CFG_DEVICE_CPU);
  CHECK_EQ_INT(cfg.reward.multi_objective_aggregation, GRPO_CFG_AGG_SUM_THEN_NORMALIZE);
  CHECK_EQ_INT(cfg.data.arith_min_ops, 2);
  CHECK_EQ_INT(cfg.data.arith_max_ops, 3);
  CHECK_EQ_INT(cfg.reward.functions.n, 1);
  CHECK_STR(cfg.reward.functions.items[0].name, "math");
  CHECK_NEAR(cfg.reward.functions.items[0].weight, 1.0, 0);
  CHECK_EQ_INT(cfg.data.eval_paths.n, 0);
  CHECK_STR(grpo_config_origin(&cfg, GRPO_CFG_ID_trainer_beta), "default");
  grpo_config_free(&cfg);
}

/* ---- loading a good file ---------------------------------------------------------- */

TEST(full_file_loads_typed_values) {
  grpo_config cfg;
  grpo_error err;
  grpo_error_clear(&err);
  int rc = grpo_config_load(&cfg, "tests/config/good/full.yaml", 0, NULL, &err);
  CHECK_MSG(rc == GRPO_OK, "%s", err.msg);
  if (rc) return;
  CHECK_EQ_INT(cfg.seed, 7);
  CHECK_STR(cfg.output_dir, "runs/unit-test");
  CHECK_EQ_INT(cfg.model.device, GRPO_CFG_DEVICE_CUDA);
  CHECK_EQ_INT(cfg.model.num_kv_heads, 1);
  CHECK_NEAR(cfg.model.rope_theta, 1e6, 0);
  CHECK_EQ_INT(cfg.tokenizer.kind, GRPO_CFG_TOKENIZER_BYTE);
  CHECK_STR(cfg.tokenizer.prompt_template, "Q: {question}\nA:");
  CHECK_EQ_INT(cfg.data.task, GRPO_CFG_TASK_ARITHMETIC);
  CHECK_EQ_INT(cfg.data.eval_paths.n, 2);
  if (cfg.data.eval_paths.n == 2) CHECK_STR(cfg.data.eval_paths.items[1], "../shared/data/math500/test.jsonl");
  CHECK_EQ_INT(cfg.rollout.stop_strings.n, 2);
  if (cfg.rollout.stop_strings.n == 2) CHECK_STR(cfg.rollout.stop_strings.items[1], "\n\n\n");
  CHECK_NEAR(cfg.rollout.temperature, 0.7, 0);
  CHECK_EQ_INT(cfg.rollout.top_k, 50);
  CHECK(cfg.rollout.parallel_threads);
  CHECK_EQ_INT(cfg.reward.functions.n, 2);
  if (cfg.reward.functions.n == 2) {
    const grpo_reward_fn *f = &cfg.reward.functions.items[1];
    CHECK_STR(f->name, "pgrpo_acceleration");
    CHECK_NEAR(f->weight, 0.5, 0);
    CHECK_EQ_INT(f->n_options, 2);
    CHECK_EQ_INT(f->line, 28); /* where the entry starts, for the reward module's errors */
    CHECK_STR(f->where, "tests/config/good/full.yaml:28:7: reward.functions[1]");
    if (f->n_options == 2) {
      CHECK_STR(f->options[0].key, "form");
      CHECK_STR(f->options[0].value, "paper");
      CHECK_STR(f->options[1].value, "0.5");
      CHECK_EQ_INT(f->options[1].line, 30);
    }
  }
  CHECK_EQ_INT(cfg.trainer.loss_type, GRPO_CFG_LOSS_DR_GRPO);
  CHECK_EQ_INT(cfg.trainer.scale_rewards, GRPO_CFG_SCALE_NONE);
  CHECK_NEAR(cfg.trainer.beta, 0.04, 0);
  CHECK_NEAR(cfg.trainer.epsilon_high, 0.28, 0);
  CHECK_EQ_INT(cfg.trainer.kl_estimator, GRPO_CFG_KL_K3_PLUS);
  CHECK(cfg.trainer.mask_truncated_completions);
  CHECK_NEAR(cfg.optim.lr, 5e-6, 0);
  CHECK_EQ_INT(cfg.optim.schedule, GRPO_CFG_SCHEDULE_COSINE);
  CHECK_STR(cfg.checkpoint.resume, "never");
  CHECK_EQ_INT(cfg.distributed.rollout_ranks, 2);
  CHECK_EQ_INT(cfg.logging.level, GRPO_CFG_LEVEL_DEBUG);
  CHECK(cfg.logging.tensorboard);
  CHECK_STR(grpo_config_origin(&cfg, GRPO_CFG_ID_trainer_beta), "tests/config/good/full.yaml:34:3");
  CHECK_STR(grpo_config_origin(&cfg, GRPO_CFG_ID_optim_weight_decay), "default");
  grpo_config_free(&cfg);
}

/* ---- round trips -------------------------------------------------------------------- */

static void check_round_trip(const grpo_config *cfg) {
  grpo_error err;
  char *text = NULL;
  CHECK(grpo_config_to_yaml(cfg, &text, NULL, &err) == GRPO_OK);
  if (!text) return;
  grpo_config back;
  CHECK(grpo_config_init(&back, &err) == GRPO_OK);
  int rc = grpo_config_merge_string(&back, text, strlen(text), "resolved", &err);
  CHECK_MSG(rc == GRPO_OK, "%s\n%s", err.msg, text);
  if (rc == GRPO_OK) rc = grpo_config_finalize(&back, &err);
  const char *diff = grpo_config_first_difference(cfg, &back);
  CHECK_MSG(diff == NULL, "resolved YAML reloads differently at %s", diff);
  char *again = NULL;
  CHECK(grpo_config_to_yaml(&back, &again, NULL, &err) == GRPO_OK);
  if (again) CHECK_STR(again, text);
  free(again);
  free(text);
  grpo_config_free(&back);
}

TEST(resolved_yaml_round_trips) {
  grpo_config cfg;
  grpo_error err;
  CHECK(grpo_config_load(&cfg, NULL, 0, NULL, &err) == GRPO_OK);
  check_round_trip(&cfg);
  grpo_config_free(&cfg);

  CHECK(grpo_config_load(&cfg, "tests/config/good/full.yaml", 0, NULL, &err) == GRPO_OK);
  check_round_trip(&cfg);
  grpo_config_free(&cfg);

  /* Strings a YAML reader would take for something else, odd floats, empty
   * lists and option values that look like null must survive too. */
  static const char *const tricky[] = {
      "run_name='null'", "tokenizer.system_prompt='true'", "tokenizer.prompt_template=\"a: {question} # x\"",
      "data.train_path='123'", "data.arith_ops='*'", "optim.lr=1.2345678901234567e-7",
      "trainer.beta=0.1", "trainer.epsilon=0.3", "model.rope_theta=1000000000000000000000.0",
      "rollout.stop_strings=['', '~', \"\\t\", 'a''b', '\\u00e9']", "data.eval_paths=[]",
      "reward.functions=[{name: format, weight: 0.25, options: {a: null, b: 'null', c: '', d: x y, e: '[1]'}}]",
  };
  grpo_error_clear(&err);
  int rc = grpo_config_load(&cfg, NULL, (int)(sizeof tricky / sizeof tricky[0]), tricky, &err);
  CHECK_MSG(rc == GRPO_OK, "%s", err.msg);
  if (rc) return;
  CHECK_STR(cfg.run_name, "null"); /* quoted: the text, not null */
  CHECK_STR(cfg.tokenizer.system_prompt, "true");
  CHECK_STR(cfg.tokenizer.prompt_template, "a: {question} # x");
  CHECK_EQ_INT(cfg.rollout.stop_strings.n, 5);
  CHECK_STR(cfg.reward.functions.items[0].options[0].value, "");
  CHECK_STR(cfg.reward.functions.items[0].options[1].value, "null");
  check_round_trip(&cfg);

  /* write_file + merge_file. */
  const char *path = tmp_path("resolved.yaml");
  CHECK(grpo_config_write_file(&cfg, path, &err) == GRPO_OK);
  grpo_config back;
  rc = grpo_config_load(&back, path, 0, NULL, &err);
  CHECK_MSG(rc == GRPO_OK, "%s", err.msg);
  if (rc == GRPO_OK) {
    CHECK(grpo_config_equal(&cfg, &back));
    grpo_config_free(&back);
  }
  remove(path);
  grpo_config_free(&cfg);
}

TEST(defaults_yaml_loads_to_defaults) {
  grpo_error err;
  char *text = NULL;
  CHECK(grpo_config_defaults_yaml(&text, &err) == GRPO_OK);
  if (!text) return;
  /* Every key appears with its doc. */
  const grpo_config_key *keys = grpo_config_keys();
  for (int i = 0; i < GRPO_CFG_NUM_KEYS; i++) CHECK_MSG(strstr(text, keys[i].doc), "%s doc missing", keys[i].path);
  CHECK(strstr(text, "  beta: 0.0  # float, [0, 1e+06]") != NULL);
  CHECK(strstr(text, "  loss_type: dapo  # one of: grpo, bnpo, dr_grpo, dapo") != NULL);
  grpo_config a, b;
  CHECK(grpo_config_load(&a, NULL, 0, NULL, &err) == GRPO_OK);
  CHECK(grpo_config_init(&b, &err) == GRPO_OK);
  int rc = grpo_config_merge_string(&b, text, strlen(text), "defaults", &err);
  CHECK_MSG(rc == GRPO_OK, "%s", err.msg);
  CHECK(grpo_config_finalize(&b, &err) == GRPO_OK);
  CHECK(grpo_config_equal(&a, &b));
  grpo_config_free(&a);
  grpo_config_free(&b);
  free(text);
}

TEST(copy_and_compare) {
  grpo_config a, b;
  grpo_error err;
  CHECK(grpo_config_load(&a, "tests/config/good/full.yaml", 0, NULL, &err) == GRPO_OK);
  CHECK(grpo_config_copy(&b, &a, &err) == GRPO_OK);
  CHECK(grpo_config_equal(&a, &b));
  CHECK_STR(grpo_config_origin(&b, GRPO_CFG_ID_top_seed), "tests/config/good/full.yaml:2:1");
  b.rollout.top_k = 51;
  CHECK_STR(grpo_config_first_difference(&a, &b), "rollout.top_k");
  b.rollout.top_k = a.rollout.top_k;
  free(b.reward.functions.items[1].options[0].value);
  b.reward.functions.items[1].options[0].value = strdup("code");
  CHECK_STR(grpo_config_first_difference(&a, &b), "reward.functions");
  grpo_config_free(&a);
  grpo_config_free(&b);
}

/* ---- overrides ----------------------------------------------------------------------- */

TEST(overrides) {
  static const char *const over[] = {
      "trainer.beta=0.04", "optim.lr=1e-6", "trainer.loss_type=grpo", "rollout.parallel_threads=true",
      "seed=3", "data.eval_paths=[a.jsonl, b.jsonl]", "reward.functions=[{name: math}, {name: format, weight: 0.1}]",
      "run_name=my run", "output_dir=",
  };
  grpo_config cfg;
  grpo_error err;
  grpo_error_clear(&err);
  int rc = grpo_config_load(&cfg, "tests/config/good/full.yaml", (int)(sizeof over / sizeof over[0]), over, &err);
  CHECK_MSG(rc == GRPO_OK, "%s", err.msg);
  if (rc) return;
  CHECK_NEAR(cfg.trainer.beta, 0.04, 0);
  CHECK_NEAR(cfg.optim.lr, 1e-6, 0);
  CHECK_EQ_INT(cfg.trainer.loss_type, GRPO_CFG_LOSS_GRPO);
  CHECK_EQ_INT(cfg.seed, 3);
  CHECK_EQ_INT(cfg.data.eval_paths.n, 2);
  CHECK_EQ_INT(cfg.reward.functions.n, 2);
  CHECK_NEAR(cfg.reward.functions.items[1].weight, 0.1, 0);
  CHECK_STR(cfg.output_dir, "runs/my run"); /* emptied, so derived again */
  CHECK_STR(grpo_config_origin(&cfg, GRPO_CFG_ID_trainer_beta), "override 'trainer.beta=0.04'");
  grpo_config_free(&cfg);

  CHECK(grpo_config_is_override("trainer.beta=0.1"));
  CHECK(grpo_config_is_override("seed=1"));
  CHECK(!grpo_config_is_override("run.yaml"));
  CHECK(!grpo_config_is_override("--ckpt=x"));
  CHECK(!grpo_config_is_override("dir/a=b.yaml"));
  CHECK(!grpo_config_is_override("=1"));
}

TEST(override_errors_name_the_override) {
  static const struct {
    const char *arg;
    const char *msg;
  } cases[] = {
      {"trainer.beta=abc", "override 'trainer.beta=abc': trainer.beta: expected a number, got 'abc'"},
      {"trainr.beta=1", "override 'trainr.beta=1': unknown key 'trainr.beta' (did you mean 'trainer.beta'?)"},
      {"trainer.lr=1", "override 'trainer.lr=1': unknown key 'trainer.lr' (did you mean 'optim.lr'?)"},
      {"sed=1", "override 'sed=1': unknown section or key 'sed' (did you mean 'seed'?)"},
      {"rollout.top_p=2", "override 'rollout.top_p=2': rollout.top_p: 2 is out of range (allowed: (0, 1])"},
      {"trainer.loss_type=dpo", "override 'trainer.loss_type=dpo': trainer.loss_type: 'dpo' is not one of: grpo, bnpo, dr_grpo, dapo (did you mean 'dapo'?)"},
      {"trainer.beta=", "override 'trainer.beta=': trainer.beta: missing value (expected a number)"},
      {"trainer.beta=[1", "override 'trainer.beta=[1': value:2:1: YAML syntax error"},
      {"rollout.num_generations=4.0", "override 'rollout.num_generations=4.0': rollout.num_generations: expected an integer"},
      {"trainer", "override 'trainer': expected section.key=value"},
      {"trainer={beta: 1}", "override 'trainer={beta: 1}': 'trainer' is a section; set its keys one by one"},
      {"distributed.mode=disaggregated", "override 'distributed.mode=disaggregated': distributed.rollout_ranks: distributed.mode disaggregated needs at least 1 rollout rank"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int code = 0;
    const char *msg = load_error(NULL, &cases[i].arg, 1, &code);
    CHECK_MSG(code != GRPO_OK && strncmp(msg, cases[i].msg, strlen(cases[i].msg)) == 0,
              "%s\n  got:  %s\n  want: %s", cases[i].arg, msg, cases[i].msg);
  }
}

/* ---- bad files: each error with file:line:column ----------------------------------------- */

TEST(bad_files) {
  static const struct {
    const char *file;
    const char *msg; /* after "tests/config/bad/" */
  } cases[] = {
      {"unknown_key.yaml", "unknown_key.yaml:3:3: unknown key 'trainer.bta' (did you mean 'trainer.beta'?)"},
      {"wrong_section.yaml", "wrong_section.yaml:4:3: unknown key 'trainer.lr' (did you mean 'optim.lr'?)"},
      {"unknown_section.yaml", "unknown_section.yaml:2:1: unknown section or key 'trainr' (did you mean 'trainer'?)"},
      {"wrong_type_int.yaml", "wrong_type_int.yaml:2:20: rollout.num_generations: expected an integer, got 'eight'"},
      {"wrong_type_fraction.yaml", "wrong_type_fraction.yaml:2:20: rollout.num_generations: expected an integer, got '8.5'"},
      {"wrong_type_bool.yaml", "wrong_type_bool.yaml:2:31: trainer.mask_truncated_completions: expected true or false, got 'yes'"},
      {"wrong_type_list.yaml", "wrong_type_list.yaml:2:9: trainer.beta: expected a number, got a list"},
      {"wrong_type_strlist.yaml", "wrong_type_strlist.yaml:2:15: data.eval_paths: expected a list of strings"},
      {"out_of_range.yaml", "out_of_range.yaml:2:10: rollout.top_p: 1.5 is out of range (allowed: (0, 1])"},
      {"out_of_range_open.yaml", "out_of_range_open.yaml:2:10: rollout.top_p: 0 is out of range (allowed: (0, 1])"},
      {"out_of_range_int.yaml", "out_of_range_int.yaml:2:20: rollout.num_generations: 0 is out of range (allowed: [1, 65536])"},
      {"int_overflow.yaml", "int_overflow.yaml:1:7: seed: 99999999999999999999999 is out of range (allowed: >= 0)"},
      {"non_finite.yaml", "non_finite.yaml:2:9: trainer.beta: expected a number, got '.inf'"},
      {"bad_enum.yaml", "bad_enum.yaml:2:14: trainer.loss_type: 'ppo' is not one of: grpo, bnpo, dr_grpo, dapo"},
      {"bad_enum_typo.yaml", "bad_enum_typo.yaml:2:18: trainer.scale_rewards: 'grop' is not one of: group, batch, none (did you mean 'group'?)"},
      {"duplicate_key.yaml", "duplicate_key.yaml:4:3: duplicate key 'beta' (first at line 2)"},
      {"duplicate_section.yaml", "duplicate_section.yaml:5:1: duplicate key 'trainer' (first at line 1)"},
      {"duplicate_dotted.yaml", "duplicate_dotted.yaml:3:1: duplicate key 'trainer.beta' (first set at line 2)"},
      {"tab.yaml", "tab.yaml:2:1: YAML syntax error: "},
      {"indent_deeper.yaml", "indent_deeper.yaml:3:12: YAML syntax error: mapping values are not allowed in this context"},
      {"indent_shallower.yaml", "indent_shallower.yaml:3:2: YAML syntax error: did not find expected key"},
      {"comments_only.yaml", "comments_only.yaml:1:1: empty config file"},
      {"not_a_mapping.yaml", "not_a_mapping.yaml:1:1: the top level must be a mapping of sections"},
      {"section_not_mapping.yaml", "section_not_mapping.yaml:1:10: section 'trainer' must be a mapping of keys"},
      {"reward_unknown_field.yaml", "reward_unknown_field.yaml:4:7: reward.functions[0]: unknown field 'wieght' (did you mean 'weight'?)"},
      {"reward_no_name.yaml", "reward_no_name.yaml:3:7: reward.functions[0]: missing 'name'"},
      {"reward_negative_weight.yaml", "reward_negative_weight.yaml:4:15: reward.functions[0].weight: expected a number in [0, 1e6], got '-1'"},
      {"reward_duplicate.yaml", "reward_duplicate.yaml:4:7: reward.functions[1]: reward 'math' is already listed"},
      {"alias.yaml", "alias.yaml:3:10: YAML aliases (*name) are not supported"},
      {"tag.yaml", "tag.yaml:1:7: YAML tags (tag:yaml.org,2002:float) are not supported"},
      {"two_documents.yaml", "two_documents.yaml:2:1: a config file holds one YAML document"},
      {"cross_disaggregated.yaml", "cross_disaggregated.yaml:2:3: distributed.rollout_ranks: distributed.mode disaggregated needs at least 1 rollout rank"},
      {"cross_arith_ops.yaml", "cross_arith_ops.yaml:3:3: data.arith_ops: '+%' must be one or more of + - * /"},
      {"cross_dual_clip.yaml", "cross_dual_clip.yaml:2:3: trainer.dual_clip_c: must be 0 (off) or greater than 1"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char path[256], want[512];
    snprintf(path, sizeof path, "tests/config/bad/%s", cases[i].file);
    snprintf(want, sizeof want, "tests/config/bad/%s", cases[i].msg);
    int code = 0;
    const char *msg = load_error(path, NULL, 0, &code);
    CHECK_MSG(code != GRPO_OK && strncmp(msg, want, strlen(want)) == 0, "%s\n  got:  %s\n  want: %s",
              cases[i].file, msg, want);
  }
  /* The tab error says what to do. */
  CHECK(strstr(load_error("tests/config/bad/tab.yaml", NULL, 0, NULL), "use spaces") != NULL);
}

TEST(unreadable_inputs) {
  int code = 0;
  const char *msg = load_error("tests/config/bad/does_not_exist.yaml", NULL, 0, &code);
  CHECK_EQ_INT(code, GRPO_ENOTFOUND);
  CHECK_STR(msg, "tests/config/bad/does_not_exist.yaml: cannot open config: No such file or directory");

  msg = load_error("tests/config/bad", NULL, 0, &code);
  CHECK(code != GRPO_OK && strstr(msg, "not a regular file") != NULL);

  const char *path = tmp_path("case.yaml");
  write_bytes(path, "", 0);
  msg = load_error(path, NULL, 0, &code);
  CHECK(code == GRPO_EPARSE && strstr(msg, ":1:1: empty config file") != NULL);

  static const char elf[] = "\x7f" "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0>\0";
  write_bytes(path, elf, sizeof elf - 1);
  msg = load_error(path, NULL, 0, &code);
  CHECK_MSG(code == GRPO_EPARSE && strstr(msg, ":1:1: binary file, not YAML text (byte 0x7f at offset 0)"), "%s", msg);

  static const char nul[] = "seed: 1\ntrainer:\n  beta: 0\0.1\n";
  write_bytes(path, nul, sizeof nul - 1);
  msg = load_error(path, NULL, 0, &code);
  CHECK_MSG(code == GRPO_EPARSE && strstr(msg, ":3:10: binary file, not YAML text (byte 0x00 at offset 26)"), "%s", msg);

  static const char latin1[] = "seed: 1\nrun_name: caf\xe9\n";
  write_bytes(path, latin1, sizeof latin1 - 1);
  msg = load_error(path, NULL, 0, &code);
  CHECK_MSG(code == GRPO_EPARSE && strstr(msg, ":2:14: not valid UTF-8 text"), "%s", msg);

  static const char utf8[] = "run_name: caf\xc3\xa9\n";
  write_bytes(path, utf8, sizeof utf8 - 1);
  grpo_config cfg;
  grpo_error err;
  int rc = grpo_config_load(&cfg, path, 0, NULL, &err);
  CHECK(rc == GRPO_OK);
  if (rc == GRPO_OK) {
    CHECK_STR(cfg.run_name, "caf\xc3\xa9");
    grpo_config_free(&cfg);
  }
  remove(path);
}

TEST(value_syntax) {
  grpo_config cfg;
  grpo_error err;
  static const char text[] =
      "trainer: {beta: .5, epsilon: 2e-1, max_steps: +10}\noptim: {lr: 1.0E-5}\n"
      "logging:\n  tensorboard: True\n  progress: FALSE\n";
  CHECK(grpo_config_init(&cfg, &err) == GRPO_OK);
  int rc = grpo_config_merge_string(&cfg, text, sizeof text - 1, "inline", &err);
  CHECK_MSG(rc == GRPO_OK, "%s", err.msg);
  CHECK_NEAR(cfg.trainer.beta, 0.5, 0);
  CHECK_NEAR(cfg.trainer.epsilon, 0.2, 0);
  CHECK_EQ_INT(cfg.trainer.max_steps, 10);
  CHECK_NEAR(cfg.optim.lr, 1e-5, 0);
  CHECK(cfg.logging.tensorboard && !cfg.logging.progress);
  /* A quoted number is a string, not a number. */
  static const char quoted[] = "trainer:\n  beta: \"0.1\"\n";
  rc = grpo_config_merge_string(&cfg, quoted, sizeof quoted - 1, "q.yaml", &err);
  CHECK(rc != GRPO_OK && strstr(err.msg, "q.yaml:2:9: trainer.beta: expected a number, got '0.1'"));
  /* No value on a string key is the empty string; on a number it is an error. */
  static const char nulls[] = "model:\n  path:\n  ref_path: ~\n";
  CHECK(grpo_config_merge_string(&cfg, nulls, sizeof nulls - 1, "n", &err) == GRPO_OK);
  CHECK_STR(cfg.model.path, "");
  CHECK_STR(cfg.model.ref_path, "");
  static const char null_num[] = "seed:\n";
  rc = grpo_config_merge_string(&cfg, null_num, sizeof null_num - 1, "n.yaml", &err);
  CHECK(rc != GRPO_OK && strstr(err.msg, "n.yaml:1:6: seed: missing value (expected an integer)"));
  /* A section may be empty. */
  static const char empty_section[] = "trainer:\nseed: 5\n";
  CHECK(grpo_config_merge_string(&cfg, empty_section, sizeof empty_section - 1, "e", &err) == GRPO_OK);
  CHECK_EQ_INT(cfg.seed, 5);
  grpo_config_free(&cfg);
}

TEST(nearest_name) {
  static const char *const names[] = {"trainer.beta", "trainer.epsilon", "optim.lr"};
  CHECK_STR(grpo_nearest_name("trainer.bta", names, 3), "trainer.beta");
  CHECK_STR(grpo_nearest_name("trainer.btea", names, 3), "trainer.beta"); /* transposition */
  CHECK_STR(grpo_nearest_name("trainer.epsilonn", names, 3), "trainer.epsilon");
  CHECK(grpo_nearest_name("completely_different", names, 3) == NULL);
  CHECK(grpo_nearest_name("x", names, 3) == NULL);
}

/* ---- docs/config.md ---------------------------------------------------------------------- */

TEST(docs_config_md_is_current) {
  grpo_error err;
  char *md = NULL;
  CHECK(grpo_config_markdown(&md, &err) == GRPO_OK);
  if (!md) return;
  const grpo_config_key *keys = grpo_config_keys();
  for (int i = 0; i < GRPO_CFG_NUM_KEYS; i++) {
    char cell[256];
    snprintf(cell, sizeof cell, "| `%s` |", keys[i].path);
    CHECK_MSG(strstr(md, cell), "%s missing from the markdown", keys[i].path);
  }
  char *committed = read_all("docs/config.md", NULL);
  CHECK_MSG(committed != NULL, "docs/config.md missing");
  CHECK_MSG(committed && strcmp(committed, md) == 0,
            "docs/config.md is out of date: run build/cli/grpo config --markdown > docs/config.md");
  free(committed);
  free(md);
}

int main(void) {
  RUN(schema_is_well_formed);
  RUN(fixed_keys_exist);
  RUN(defaults);
  RUN(full_file_loads_typed_values);
  RUN(resolved_yaml_round_trips);
  RUN(defaults_yaml_loads_to_defaults);
  RUN(copy_and_compare);
  RUN(overrides);
  RUN(override_errors_name_the_override);
  RUN(bad_files);
  RUN(unreadable_inputs);
  RUN(value_syntax);
  RUN(nearest_name);
  RUN(docs_config_md_is_current);
  return test_summary();
}
