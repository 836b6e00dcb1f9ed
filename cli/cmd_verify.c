#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "reward/math_verify.h"

static const char USAGE[] =
"usage: grpo verify --gold G --pred P\n"
    "       grpo verify --jsonl FILE\n"
    "\n"
    "Checks whether the prediction P is mathematically equivalent to the gold\n"
    "answer G and prints the verdict with both parsed forms. With --jsonl,\n"
    "scores rows with gold and pred fields, one JSON verdict per row:\n"
    "{\"correct\": bool, \"result\": ..., \"rule\": ..., \"pred_answer\": ..., \"reason\": ...}\n"
    "or {\"error\": ...} for a row that cannot be read (the run goes on).\n";

static void print_verdict(const reward_math_verdict *v) {
  printf("verdict: %s\n", reward_math_result_name(v->result));
  printf("rule:    %s\n", reward_math_rule_name(v->rule));
  printf("gold:    %s\n", v->gold_answer);
  printf("  form:  %s\n", v->gold_form);
  printf("pred:    %s\n", v->pred_answer);
  printf("  form:  %s\n", v->pred_form);
  printf("reason:  %s\n", v->reason);
  printf("steps:   %ld\n", v->steps);
}

static void emit(cJSON *o) {
  char *s = cJSON_PrintUnformatted(o);
  if (s) {
    fputs(s, stdout);
    fputc('\n', stdout);
    free(s);
  } else {
    fputs("{\"error\": \"out of memory\"}\n", stdout);
  }
  cJSON_Delete(o);
}

static void emit_error(const char *path, long line, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s:%ld: %s", path, line, what);
  cJSON *o = cJSON_CreateObject();
  if (!o) return;
  cJSON_AddStringToObject(o, "error", msg);
  emit(o);
}

static int run_jsonl(const char *path, const reward_math_options *opt) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
  if (!f) {
    fprintf(stderr, "grpo verify: cannot open %s\n", path);
    return 1;
  }
  char *line = NULL;
  size_t cap = 0;
  long lineno = 0;
  long n = 0, correct = 0, errors = 0;
  ssize_t len;
  while ((len = getline(&line, &cap, f)) >= 0) {
    lineno++;
    int blank = 1;
    for (ssize_t i = 0; i < len; i++)
      if (line[i] != ' ' && line[i] != '\n' && line[i] != '\r' && line[i] != '\t') blank = 0;
    if (blank) continue;
    cJSON *row = cJSON_ParseWithLength(line, (size_t)len);
    if (!row || !cJSON_IsObject(row)) {
      emit_error(path, lineno, "not a JSON object");
      cJSON_Delete(row);
      errors++;
      continue;
    }
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(row, "gold");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(row, "pred");
    if (!cJSON_IsString(g) || !cJSON_IsString(p)) {
      emit_error(path, lineno, "missing string field \"gold\" or \"pred\"");
      cJSON_Delete(row);
      errors++;
      continue;
    }
    reward_math_verdict v;
    grpo_error err = {0};
    if (reward_math_verify(g->valuestring, p->valuestring, opt, &v, &err) != GRPO_OK) {
      emit_error(path, lineno, err.msg);
      cJSON_Delete(row);
      errors++;
      continue;
    }
    cJSON *o = cJSON_CreateObject();
    if (o) {
      cJSON_AddBoolToObject(o, "correct", v.correct);
      cJSON_AddStringToObject(o, "result", reward_math_result_name(v.result));
      cJSON_AddStringToObject(o, "rule", reward_math_rule_name(v.rule));
      cJSON_AddStringToObject(o, "gold_answer", v.gold_answer);
      cJSON_AddStringToObject(o, "pred_answer", v.pred_answer);
      cJSON_AddStringToObject(o, "gold_form", v.gold_form);
      cJSON_AddStringToObject(o, "pred_form", v.pred_form);
      cJSON_AddStringToObject(o, "reason", v.reason);
      const cJSON *e = cJSON_GetObjectItemCaseSensitive(row, "expected");
      if (cJSON_IsBool(e)) cJSON_AddBoolToObject(o, "expected", cJSON_IsTrue(e));
      emit(o);
    }
    n++;
    correct += v.correct;
    cJSON_Delete(row);
  }
  free(line);
  if (f != stdin) fclose(f);
  fprintf(stderr, "grpo verify: %ld rows, %ld correct, %ld unreadable\n", n, correct, errors);
  return 0;
}

int cmd_verify(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) {
    fputs(USAGE, stdout);
    return 0;
  }
  const char *gold = NULL, *pred = NULL, *jsonl = NULL;
  reward_math_options opt;
  reward_math_options_default(&opt);
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--gold") == 0 && i + 1 < argc) gold = argv[++i];
    else if (strcmp(argv[i], "--pred") == 0 && i + 1 < argc) pred = argv[++i];
    else if (strcmp(argv[i], "--jsonl") == 0 && i + 1 < argc) jsonl = argv[++i];
    else if (strcmp(argv[i], "--allow-set-relation") == 0) opt.allow_set_relation = 1;
    else if (strcmp(argv[i], "--no-rounded") == 0) opt.allow_rounded = 0;
    else if (strcmp(argv[i], "--require-think") == 0) opt.require_think_close = 1;
    else {
      fprintf(stderr, "grpo verify: unknown or incomplete argument '%s'\n%s", argv[i], USAGE);
      return 2;
    }
  }
  if (jsonl) return run_jsonl(jsonl, &opt);
  if (!gold || !pred) {
    fputs(USAGE, stderr);
    return 2;
  }
  reward_math_verdict v;
  grpo_error err = {0};
  if (reward_math_verify(gold, pred, &opt, &v, &err) != GRPO_OK) {
    fprintf(stderr, "grpo verify: %s\n", err.msg);
    return 1;
  }
  print_verdict(&v);
  return 0;
}
