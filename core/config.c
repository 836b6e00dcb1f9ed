/* The YAML experiment config: schema table, loader, validator and writers.
 * Everything here is driven by core/config_schema.def. */
#include "core/config.h"

#include <errno.h>
#include <iconv.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "core/log.h"

/* logging.level values are grpo_log_level values. */
_Static_assert(GRPO_CFG_LEVEL_DEBUG == (int)GRPO_LOG_DEBUG && GRPO_CFG_LEVEL_INFO == (int)GRPO_LOG_INFO &&
                   GRPO_CFG_LEVEL_WARN == (int)GRPO_LOG_WARN && GRPO_CFG_LEVEL_ERROR == (int)GRPO_LOG_ERROR,
               "logging.level must map onto grpo_log_level");

/* ---- the schema table ------------------------------------------------------ */

/* Member designator of a key: top-level keys sit directly in grpo_config. */
#define GRPO_CFG_MEMBER(sec, key) GRPO_CFG_MEMBER_##sec(key)
#define GRPO_CFG_MEMBER_top(key) key
#define GRPO_CFG_MEMBER_model(key) model.key
#define GRPO_CFG_MEMBER_tokenizer(key) tokenizer.key
#define GRPO_CFG_MEMBER_data(key) data.key
#define GRPO_CFG_MEMBER_rollout(key) rollout.key
#define GRPO_CFG_MEMBER_reward(key) reward.key
#define GRPO_CFG_MEMBER_trainer(key) trainer.key
#define GRPO_CFG_MEMBER_eval(key) eval.key
#define GRPO_CFG_MEMBER_optim(key) optim.key
#define GRPO_CFG_MEMBER_checkpoint(key) checkpoint.key
#define GRPO_CFG_MEMBER_distributed(key) distributed.key
#define GRPO_CFG_MEMBER_logging(key) logging.key

/* Enum value names, one array per enum key. */
#define GRPO_CFG_SECTION(sec, doc)
#define GRPO_CFG_SECTION_END(sec)
#define GRPO_CFG_BOOL(sec, key, def, doc)
#define GRPO_CFG_INT(sec, key, def, lo, hi, doc)
#define GRPO_CFG_FLOAT(sec, key, def, lo, hi, lo_open, doc)
#define GRPO_CFG_STRING(sec, key, def, doc)
#define GRPO_CFG_STRLIST(sec, key, doc)
#define GRPO_CFG_REWARDS(sec, key, doc)
#define GRPO_CFG_V(id, name) name,
#define GRPO_CFG_ENUM(sec, key, def, values, doc) \
  static const char *const enum_names_##sec##_##key[] = {values NULL};
#include "core/config_schema.def"
#undef GRPO_CFG_ENUM
#undef GRPO_CFG_BOOL
#undef GRPO_CFG_INT
#undef GRPO_CFG_FLOAT
#undef GRPO_CFG_STRING
#undef GRPO_CFG_STRLIST
#undef GRPO_CFG_REWARDS

#define KEY_COMMON(sec, key, type) \
  #sec "." #key, "", #key, type, offsetof(grpo_config, GRPO_CFG_MEMBER(sec, key))
#define GRPO_CFG_BOOL(sec, key, def, doc) \
  {KEY_COMMON(sec, key, GRPO_CFG_T_BOOL), (def) ? 1 : 0, 0, 1, 0, 0, 0, false, NULL, NULL, doc},
#define GRPO_CFG_INT(sec, key, def, lo, hi, doc) \
  {KEY_COMMON(sec, key, GRPO_CFG_T_INT), def, lo, hi, 0, 0, 0, false, NULL, NULL, doc},
#define GRPO_CFG_FLOAT(sec, key, def, lo, hi, lo_open, doc) \
  {KEY_COMMON(sec, key, GRPO_CFG_T_FLOAT), 0, 0, 0, def, lo, hi, lo_open, NULL, NULL, doc},
#define GRPO_CFG_STRING(sec, key, def, doc) \
  {KEY_COMMON(sec, key, GRPO_CFG_T_STRING), 0, 0, 0, 0, 0, 0, false, def, NULL, doc},
#define GRPO_CFG_ENUM(sec, key, def, values, doc)                                  \
  {KEY_COMMON(sec, key, GRPO_CFG_T_ENUM), def, 0, 0, 0, 0, 0, false, NULL,          \
   enum_names_##sec##_##key, doc},
#define GRPO_CFG_STRLIST(sec, key, doc) \
  {KEY_COMMON(sec, key, GRPO_CFG_T_STRLIST), 0, 0, 0, 0, 0, 0, false, NULL, NULL, doc},
#define GRPO_CFG_REWARDS(sec, key, doc) \
  {KEY_COMMON(sec, key, GRPO_CFG_T_REWARDS), 0, 0, 0, 0, 0, 0, false, NULL, NULL, doc},
/* Filled in place by schema_init(): path/section strings are fixed up there
 * because "top." must not prefix top-level keys. */
static grpo_config_key KEYS[GRPO_CFG_NUM_KEYS] = {
#include "core/config_schema.def"
};
#undef GRPO_CFG_BOOL
#undef GRPO_CFG_INT
#undef GRPO_CFG_FLOAT
#undef GRPO_CFG_STRING
#undef GRPO_CFG_ENUM
#undef GRPO_CFG_STRLIST
#undef GRPO_CFG_REWARDS
#undef GRPO_CFG_SECTION
#undef GRPO_CFG_SECTION_END

/* Sections in order, with their docs. */
typedef struct section_info {
  const char *name;
  const char *doc;
} section_info;
#define GRPO_CFG_SECTION(sec, doc) {#sec, doc},
#define GRPO_CFG_SECTION_END(sec)
#define GRPO_CFG_BOOL(sec, key, def, doc)
#define GRPO_CFG_INT(sec, key, def, lo, hi, doc)
#define GRPO_CFG_FLOAT(sec, key, def, lo, hi, lo_open, doc)
#define GRPO_CFG_STRING(sec, key, def, doc)
#define GRPO_CFG_ENUM(sec, key, def, values, doc)
#define GRPO_CFG_STRLIST(sec, key, doc)
#define GRPO_CFG_REWARDS(sec, key, doc)
static const section_info SECTIONS[] = {
#include "core/config_schema.def"
};
#undef GRPO_CFG_SECTION
#undef GRPO_CFG_SECTION_END
#undef GRPO_CFG_BOOL
#undef GRPO_CFG_INT
#undef GRPO_CFG_FLOAT
#undef GRPO_CFG_STRING
#undef GRPO_CFG_ENUM
#undef GRPO_CFG_STRLIST
#undef GRPO_CFG_REWARDS
#undef GRPO_CFG_V
#define N_SECTIONS (sizeof SECTIONS / sizeof SECTIONS[0])

/* Storage for the section names and paths split out of "sec.key". */
static char key_section[GRPO_CFG_NUM_KEYS][32];
static const char *key_paths[GRPO_CFG_NUM_KEYS];
static pthread_once_t schema_once = PTHREAD_ONCE_INIT;

/* Splits "sec.key" paths once; the table is constant afterwards. */
static void schema_setup(void) {
  for (int i = 0; i < GRPO_CFG_NUM_KEYS; i++) {
    grpo_config_key *k = &KEYS[i];
    if (strncmp(k->path, "top.", 4) == 0) {
      k->path += 4;
      key_section[i][0] = '\0';
    } else {
      size_t n = strcspn(k->path, ".");
      memcpy(key_section[i], k->path, n);
      key_section[i][n] = '\0';
    }
    k->section = key_section[i];
    key_paths[i] = k->path;
  }
}

static void schema_init(void) { pthread_once(&schema_once, schema_setup); }

const grpo_config_key *grpo_config_keys(void) {
  schema_init();
  return KEYS;
}

static int find_key_index(const char *path) {
  schema_init();
  for (int i = 0; i < GRPO_CFG_NUM_KEYS; i++)
    if (strcmp(KEYS[i].path, path) == 0) return i;
  return -1;
}

const grpo_config_key *grpo_config_find_key(const char *path) {
  int i = find_key_index(path);
  return i < 0 ? NULL : &KEYS[i];
}

static int find_section(const char *name) {
  for (size_t s = 0; s < N_SECTIONS; s++)
    if (strcmp(SECTIONS[s].name, name) == 0) return (int)s;
  return -1;
}

const char *grpo_config_enum_name(grpo_config_key_id id, int value) {
  schema_init();
  if ((int)id < 0 || id >= GRPO_CFG_NUM_KEYS || KEYS[id].type != GRPO_CFG_T_ENUM) return NULL;
  const char *const *names = KEYS[id].enum_names;
  for (int i = 0; names[i]; i++)
    if (i == value) return names[i];
  return NULL;
}

const char *grpo_config_origin(const grpo_config *cfg, grpo_config_key_id id) {
  if ((int)id < 0 || id >= GRPO_CFG_NUM_KEYS || !cfg->origin[id]) return "default";
  return cfg->origin[id];
}

/* ---- nearest name (optimal string alignment distance) ----------------------- */

#define NEAREST_MAX_LEN 128

static int osa_distance(const char *a, const char *b) {
  size_t n = strlen(a), m = strlen(b);
  if (n > NEAREST_MAX_LEN || m > NEAREST_MAX_LEN) return 1 << 20;
  int d[NEAREST_MAX_LEN + 1][NEAREST_MAX_LEN + 1];
  for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
  for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
  for (size_t i = 1; i <= n; i++) {
    for (size_t j = 1; j <= m; j++) {
      int cost = a[i - 1] == b[j - 1] ? 0 : 1;
      int v = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
      if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
        v = d[i - 2][j - 2] + 1;
      d[i][j] = v;
    }
  }
  return d[n][m];
}

const char *grpo_nearest_name(const char *word, const char *const *candidates, size_t n) {
  if (!word || strlen(word) > NEAREST_MAX_LEN) return NULL;
  const char *best = NULL;
  int best_d = 1 << 20;
  for (size_t i = 0; i < n; i++) {
    int d = osa_distance(word, candidates[i]);
    if (d < best_d) {
      best_d = d;
      best = candidates[i];
    }
  }
  /* A plausible typo: at most 2 edits, or a third of the word. */
  int len = (int)strlen(word);
  if (best && (best_d <= 2 || best_d * 3 <= len) && best_d < len) return best;
  return NULL;
}

/* Suggestion for an unknown key path: the same key name in another section
 * first (trainer.lr -> optim.lr), then the nearest full path. */
static const char *suggest_key(const char *path) {
  schema_init();
  const char *dot = strrchr(path, '.');
  if (dot) {
    for (int i = 0; i < GRPO_CFG_NUM_KEYS; i++)
      if (strcmp(KEYS[i].name, dot + 1) == 0) return KEYS[i].path;
  }
  return grpo_nearest_name(path, key_paths, GRPO_CFG_NUM_KEYS);
}

/* Suggestion for an unknown top-level name: a section or a top-level key. */
static const char *suggest_root(const char *name) {
  schema_init();
  const char *cands[GRPO_CFG_NUM_KEYS + N_SECTIONS];
  size_t n = 0;
  for (size_t s = 0; s < N_SECTIONS; s++) cands[n++] = SECTIONS[s].name;
  for (int i = 0; i < GRPO_CFG_NUM_KEYS; i++)
    if (KEYS[i].section[0] == '\0') cands[n++] = KEYS[i].path;
  const char *s = grpo_nearest_name(name, cands, n);
  if (!s) s = suggest_key(name);
  return s;
}

/* ---- values: init, free, copy, compare ------------------------------------- */

#define FIELD(cfg, k, T) ((T *)((char *)(cfg) + (k)->offset))
#define CFIELD(cfg, k, T) ((const T *)((const char *)(cfg) + (k)->offset))

static char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}

static char *xstrndup(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

static void strlist_free(grpo_strlist *l) {
  for (int i = 0; i < l->n; i++) free(l->items[i]);
  free(l->items);
  l->items = NULL;
  l->n = 0;
}

static void reward_fn_free(grpo_reward_fn *f) {
  free(f->name);
  free(f->where);
  for (int j = 0; j < f->n_options; j++) {
    free(f->options[j].key);
    free(f->options[j].value);
  }
  free(f->options);
  memset(f, 0, sizeof *f);
}

static void rewards_free(grpo_reward_fn_list *l) {
  for (int i = 0; i < l->n; i++) reward_fn_free(&l->items[i]);
  free(l->items);
  l->items = NULL;
  l->n = 0;
}

static void value_free(grpo_config *cfg, const grpo_config_key *k) {
  switch (k->type) {
    case GRPO_CFG_T_STRING:
      free(*FIELD(cfg, k, char *));
      *FIELD(cfg, k, char *) = NULL;
      break;
    case GRPO_CFG_T_STRLIST: strlist_free(FIELD(cfg, k, grpo_strlist)); break;
    case GRPO_CFG_T_REWARDS: rewards_free(FIELD(cfg, k, grpo_reward_fn_list)); break;
    default: break;
  }
}

void grpo_config_free(grpo_config *cfg) {
  if (!cfg) return;
  schema_init();
  for (int i = 0; i < GRPO_CFG_NUM_KEYS; i++) {
    value_free(cfg, &KEYS[i]);
    free(cfg->origin[i]);
    cfg->origin[i] = NULL;
  }
}

static int oom(grpo_error *err) { return GRPO_FAIL(err, GRPO_ENOMEM, "config: out of memory"); }

/* The default of reward.functions: the math verifier alone. */
static int rewards_default(grpo_reward_fn_list *l) {
  l->items = calloc(1, sizeof *l->items);
  if (!l->items) return -1;
  l->n = 1;
  l->items[0].name = xstrdup("math");
  l->items[0].weight = 1.0;
  return l->items[0].name ? 0 : -1;
}

int grpo_config_init(grpo_config *cfg, grpo_error *err) {
  schema_init();
  memset(cfg, 0, sizeof *cfg);
  for (int i = 0; i < GRPO_CFG_NUM_KEYS; i++) {
    const grpo_config_key *k = &KEYS[i];
    switch (k->type) {
      case GRPO_CFG_T_BOOL: *FIELD(cfg, k, bool) = k->int_def != 0; break;
      case GRPO_CFG_T_INT: *FIELD(cfg, k, int64_t) = k->int_def; break;
      case GRPO_CFG_T_FLOAT: *FIELD(cfg, k, double) = k->float_def; break;
      case GRPO_CFG_T_ENUM: *FIELD(cfg, k, int) = (int)k->int_def; break;
      case GRPO_CFG_T_STRING:
        if (!(*FIELD(cfg, k, char *) = xstrdup(k->str_def))) goto fail;
        break;
      case GRPO_CFG_T_STRLIST: break;
      case GRPO_CFG_T_REWARDS:
        if (rewards_default(FIELD(cfg, k, grpo_reward_fn_list))) goto fail;
        break;
    }
  }
  return GRPO_OK;
fail:
  grpo_config_free(cfg);
  return oom(err);
}

static int strlist_copy(grpo_strlist *dst, const grpo_strlist *src) {
  dst->n = 0;
  dst->items = NULL;
  if (src->n == 0) return 0;
  dst->items = calloc((size_t)src->n, sizeof *dst->items);
  if (!dst->items) return -1;
  for (int i = 0; i < src->n; i++) {
    if (!(dst->items[i] = xstrdup(src->items[i]))) {
      dst->n = i;
      return -1;
    }
  }
  dst->n = src->n;
  return 0;
}

static int rewards_copy(grpo_reward_fn_list *dst, const grpo_reward_fn_list *src) {
  dst->n = 0;
  dst->items = NULL;
  if (src->n == 0) return 0;
  dst->items = calloc((size_t)src->n, sizeof *dst->items);
  if (!dst->items) return -1;
  dst->n = src->n;
  for (int i = 0; i < src->n; i++) {
    const grpo_reward_fn *s = &src->items[i];
    grpo_reward_fn *d = &dst->items[i];
    d->weight = s->weight;
    d->line = s->line;
    d->column = s->column;
    if (!(d->name = xstrdup(s->name))) return -1;
    if (s->where && !(d->where = xstrdup(s->where))) return -1;
    if (s->n_options) {
      d->options = calloc((size_t)s->n_options, sizeof *d->options);
      if (!d->options) return -1;
      for (int j = 0; j < s->n_options; j++) {
        d->options[j].line = s->options[j].line;
        d->options[j].column = s->options[j].column;
        d->options[j].key = xstrdup(s->options[j].key);
        d->options[j].value = xstrdup(s->options[j].value);
        d->n_options = j + 1;
        if (!d->options[j].key || !d->options[j].value) return -1;
      }
    }
  }
  return 0;
}

int grpo_config_copy(grpo_config *dst, const grpo_config *src, grpo_error *err) {
  schema_init();
  memcpy(dst, src, sizeof *dst);
  /* Detach every owned pointer first so a failure frees only dst's copies. */
  for (int i = 0; i < GRPO_CFG_NUM_KEYS; i++) {
    const grpo_config_key *k = &KEYS[i];
    dst->origin[i] = NULL;
    if (k->type == GRPO_CFG_T_STRING) *FIELD(dst, k, char *) = NULL;
    if (k->type == GRPO_CFG_T_STRLIST) memset(FIELD(dst, k, grpo_strlist), 0, sizeof(grpo_strlist));
    if (k->type == GRPO_CFG_T_REWARDS)
      memset(FIELD(dst, k, grpo_reward_fn_list), 0, sizeof(grpo_reward_fn_list));
  }
  for (int i = 0; i < GRPO_CFG_NUM_KEYS; i++) {
    const grpo_config_key *k = &KEYS[i];
    if (src->origin[i] && !(dst->origin[i] = xstrdup(src->origin[i]))) goto fail;
    switch (k->type) {
      case GRPO_CFG_T_STRING:
        if (!(*FIELD(dst, k, char *) = xstrdup(*CFIELD(src, k, char *)))) goto fail;
        break;
      case GRPO_CFG_T_STRLIST:
        if (strlist_copy(FIELD(dst, k, grpo_strlist), CFIELD(src, k, grpo_strlist))) goto fail;
        break;
      case GRPO_CFG_T_REWARDS:
        if (rewards_copy(FIELD(dst, k, grpo_reward_fn_list), CFIELD(src, k, grpo_reward_fn_list)))
          goto fail;
        break;
      default: break;
    }
  }
  return GRPO_OK;
fail:
  grpo_config_free(dst);
  return oom(err);
}

static bool value_equal(const grpo_config *a, const grpo_config *b, const grpo_config_key *k) {
  switch (k->type) {
    case GRPO_CFG_T_BOOL: return *CFIELD(a, k, bool) == *CFIELD(b, k, bool);
    case GRPO_CFG_T_INT: return *CFIELD(a, k, int64_t) == *CFIELD(b, k, int64_t);
    case GRPO_CFG_T_FLOAT: {
      double x = *CFIELD(a, k, double), y = *CFIELD(b, k, double);
      return memcmp(&x, &y, sizeof x) == 0;
    }
    case GRPO_CFG_T_ENUM: return *CFIELD(a, k, int) == *CFIELD(b, k, int);
    case GRPO_CFG_T_STRING: return strcmp(*CFIELD(a, k, char *), *CFIELD(b, k, char *)) == 0;
    case GRPO_CFG_T_STRLIST: {
      const grpo_strlist *x = CFIELD(a, k, grpo_strlist), *y = CFIELD(b, k, grpo_strlist);
      if (x->n != y->n) return false;
      for (int i = 0; i < x->n; i++)
        if (strcmp(x->items[i], y->items[i]) != 0) return false;
      return true;
    }
    case GRPO_CFG_T_REWARDS: {
      const grpo_reward_fn_list *x = CFIELD(a, k, grpo_reward_fn_list);
      const grpo_reward_fn_list *y = CFIELD(b, k, grpo_reward_fn_list);
      if (x->n != y->n) return false;
      for (int i = 0; i < x->n; i++) {
        const grpo_reward_fn *f = &x->items[i], *g = &y->items[i];
        if (strcmp(f->name, g->name) != 0 || memcmp(&f->weight, &g->weight, sizeof f->weight) != 0 ||
            f->n_options != g->n_options)
          return false;
        for (int j = 0; j < f->n_options; j++)
          if (strcmp(f->options[j].key, g->options[j].key) != 0 ||
              strcmp(f->options[j].value, g->options[j].value) != 0)
            return false;
      }
      return true;
    }
  }
  return false;
}

const char *grpo_config_first_difference(const grpo_config *a, const grpo_config *b) {
  schema_init();
  for (int i = 0; i < GRPO_CFG_NUM_KEYS; i++)
    if (!value_equal(a, b, &KEYS[i])) return KEYS[i].path;
  return NULL;
}

bool grpo_config_equal(const grpo_config *a, const grpo_config *b) {
  return grpo_config_first_difference(a, b) == NULL;
}

/* ---- YAML text to a small tree (libyaml events) ---------------------------- */

#define MAX_CONFIG_BYTES (1u << 20)
#define MAX_DEPTH 32
#define MAX_CHILDREN 4096

typedef enum { N_SCALAR, N_SEQ, N_MAP } node_kind;

typedef struct ynode {
  node_kind kind;
  int line, col;    /* 1-based */
  char *text;       /* scalar */
  bool plain;       /* unquoted, untagged scalar: subject to null/bool/number rules */
  struct ynode **kids; /* seq: items; map: key, value, key, value, ... */
  int n, cap;
} ynode;

static void node_free(ynode *n) {
  if (!n) return;
  for (int i = 0; i < n->n; i++) node_free(n->kids[i]);
  free(n->kids);
  free(n->text);
  free(n);
}

static int node_add(ynode *parent, ynode *kid) {
  if (parent->n == parent->cap) {
    int cap = parent->cap ? parent->cap * 2 : 8;
    ynode **k = realloc(parent->kids, (size_t)cap * sizeof *k);
    if (!k) return -1;
    parent->kids = k;
    parent->cap = cap;
  }
  parent->kids[parent->n++] = kid;
  return 0;
}

static bool is_null_scalar(const ynode *n) {
  if (!n) return true;
  if (n->kind != N_SCALAR || !n->plain) return false;
  const char *t = n->text;
  return t[0] == '\0' || strcmp(t, "~") == 0 || strcmp(t, "null") == 0 ||
         strcmp(t, "Null") == 0 || strcmp(t, "NULL") == 0;
}

/* Line and column (1-based, in bytes) of a byte offset. */
static void offset_to_line_col(const char *buf, size_t len, size_t off, int *line, int *col) {
  int l = 1, c = 1;
  for (size_t i = 0; i < off && i < len; i++) {
    if (buf[i] == '\n') {
      l++;
      c = 1;
    } else {
      c++;
    }
  }
  *line = l;
  *col = c;
}

static bool line_has_tab(const char *buf, size_t len, int line0) {
  int l = 0;
  size_t i = 0;
  while (i < len && l < line0) {
    if (buf[i++] == '\n') l++;
  }
  for (; i < len && buf[i] != '\n'; i++)
    if (buf[i] == '\t') return true;
  return false;
}

/* Binary and encoding checks before libyaml sees the text, so a binary file
 * is named as such instead of as a syntax error somewhere in it. */
static int check_text(const char *buf, size_t len, const char *name, grpo_error *err) {
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)buf[i];
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
      int line, col;
      offset_to_line_col(buf, len, i, &line, &col);
      return GRPO_FAIL(err, GRPO_EPARSE,
                       "%s:%d:%d: binary file, not YAML text (byte 0x%02x at offset %zu)", name,
                       line, col, c, i);
    }
  }
  iconv_t cd = iconv_open("UTF-32LE", "UTF-8");
  if (cd == (iconv_t)-1) return GRPO_OK; /* no converter: libyaml still checks */
  char *in = (char *)buf;
  size_t in_left = len;
  char out_buf[4096];
  int rc = GRPO_OK;
  while (in_left > 0) {
    char *out = out_buf;
    size_t out_left = sizeof out_buf;
    if (iconv(cd, &in, &in_left, &out, &out_left) == (size_t)-1 && errno != E2BIG) {
      size_t off = (size_t)(in - buf);
      int line, col;
      offset_to_line_col(buf, len, off, &line, &col);
      rc = GRPO_FAIL(err, GRPO_EPARSE,
                     "%s:%d:%d: not valid UTF-8 text (bad byte 0x%02x at offset %zu); is this a "
                     "binary file?",
                     name, line, col, (unsigned char)buf[off], off);
      break;
    }
  }
  iconv_close(cd);
  return rc;
}

static int yaml_error(yaml_parser_t *p, const char *buf, size_t len, const char *name,
                      grpo_error *err) {
  if (p->error == YAML_MEMORY_ERROR) return oom(err);
  if (p->error == YAML_READER_ERROR) {
    int line, col;
    offset_to_line_col(buf, len, p->problem_offset, &line, &col);
    return GRPO_FAIL(err, GRPO_EPARSE, "%s:%d:%d: not valid YAML text: %s", name, line, col,
                     p->problem ? p->problem : "unreadable");
  }
  int line = (int)p->problem_mark.line + 1, col = (int)p->problem_mark.column + 1;
  const char *hint = "";
  if (line_has_tab(buf, len, (int)p->problem_mark.line))
    hint = " (tab characters cannot indent YAML; use spaces)";
  else if (p->problem && (strstr(p->problem, "expected key") || strstr(p->problem, "mapping values") ||
                          strstr(p->problem, "expected <block end>")))
    hint = " (check the indentation)";
  if (p->context)
    return GRPO_FAIL(err, GRPO_EPARSE, "%s:%d:%d: YAML syntax error: %s, %s at line %d%s", name,
                     line, col, p->problem ? p->problem : "error", p->context,
                     (int)p->context_mark.line + 1, hint);
  return GRPO_FAIL(err, GRPO_EPARSE, "%s:%d:%d: YAML syntax error: %s%s", name, line, col,
                   p->problem ? p->problem : "error", hint);
}

/* Parses text into *root (NULL when the stream holds no document). */
static int parse_tree(const char *buf, size_t len, const char *name, ynode **root,
                      grpo_error *err) {
  *root = NULL;
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p)) return oom(err);
  yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
  yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);
  ynode *stack[MAX_DEPTH];
  int depth = 0, docs = 0, rc = GRPO_OK;
  ynode *top = NULL;
  for (;;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&p, &ev)) {
      rc = yaml_error(&p, buf, len, name, err);
      break;
    }
    int line = (int)ev.start_mark.line + 1, col = (int)ev.start_mark.column + 1;
    yaml_event_type_t type = ev.type;
    ynode *node = NULL;
    if (type == YAML_STREAM_END_EVENT) {
      yaml_event_delete(&ev);
      break;
    }
    switch (type) {
      case YAML_DOCUMENT_START_EVENT:
        if (++docs > 1)
          rc = GRPO_FAIL(err, GRPO_EPARSE,
                         "%s:%d:%d: a config file holds one YAML document; found a second", name,
                         line, col);
        break;
      case YAML_ALIAS_EVENT:
        rc = GRPO_FAIL(err, GRPO_EPARSE, "%s:%d:%d: YAML aliases (*name) are not supported in configs",
                       name, line, col);
        break;
      case YAML_SCALAR_EVENT:
      case YAML_SEQUENCE_START_EVENT:
      case YAML_MAPPING_START_EVENT: {
        const yaml_char_t *tag = type == YAML_SCALAR_EVENT ? ev.data.scalar.tag
                                 : type == YAML_SEQUENCE_START_EVENT ? ev.data.sequence_start.tag
                                                                     : ev.data.mapping_start.tag;
        bool str_tag = tag && strcmp((const char *)tag, YAML_STR_TAG) == 0;
        if (tag && !(str_tag && type == YAML_SCALAR_EVENT)) {
          rc = GRPO_FAIL(err, GRPO_EPARSE, "%s:%d:%d: YAML tags (%s) are not supported in configs",
                         name, line, col, (const char *)tag);
          break;
        }
        node = calloc(1, sizeof *node);
        if (!node) {
          rc = oom(err);
          break;
        }
        node->line = line;
        node->col = col;
        if (type == YAML_SCALAR_EVENT) {
          node->kind = N_SCALAR;
          node->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !str_tag;
          node->text = xstrndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
          if (!node->text) {
            node_free(node);
            node = NULL;
            rc = oom(err);
            break;
          }
        } else {
          node->kind = type == YAML_SEQUENCE_START_EVENT ? N_SEQ : N_MAP;
        }
        ynode *parent = depth ? stack[depth - 1] : NULL;
        if (parent) {
          if (parent->n >= 2 * MAX_CHILDREN) {
            rc = GRPO_FAIL(err, GRPO_EPARSE, "%s:%d:%d: too many entries in one list or mapping",
                           name, line, col);
          } else if (parent->kind == N_MAP && parent->n % 2 == 0 && node->kind != N_SCALAR) {
            rc = GRPO_FAIL(err, GRPO_EPARSE, "%s:%d:%d: a mapping key must be a plain name", name,
                           line, col);
          } else if (parent->kind == N_MAP && parent->n % 2 == 0) {
            for (int i = 0; i < parent->n; i += 2) {
              if (strcmp(parent->kids[i]->text, node->text) == 0) {
                rc = GRPO_FAIL(err, GRPO_EPARSE,
                               "%s:%d:%d: duplicate key '%s' (first at line %d)", name, line, col,
                               node->text, parent->kids[i]->line);
                break;
              }
            }
          }
          if (rc == GRPO_OK && node_add(parent, node)) rc = oom(err);
          if (rc != GRPO_OK) {
            node_free(node);
            break;
          }
        } else if (!top) {
          top = node;
        } else {
          node_free(node);
          rc = GRPO_FAIL(err, GRPO_EPARSE, "%s:%d:%d: more than one top-level node", name, line, col);
          break;
        }
        if (node->kind != N_SCALAR) {
          if (depth == MAX_DEPTH) {
            rc = GRPO_FAIL(err, GRPO_EPARSE, "%s:%d:%d: nesting deeper than %d levels", name, line,
                           col, MAX_DEPTH);
            break;
          }
          stack[depth++] = node;
        }
        break;
      }
      case YAML_SEQUENCE_END_EVENT:
      case YAML_MAPPING_END_EVENT:
        if (depth > 0) depth--;
        break;
      default: break;
    }
    yaml_event_delete(&ev);
    if (rc != GRPO_OK) break;
  }
  yaml_parser_delete(&p);
  if (rc != GRPO_OK) {
    node_free(top);
    return rc;
  }
  *root = top;
  return GRPO_OK;
}

/* ---- applying a tree to the config ------------------------------------------ */

typedef struct apply_ctx {
  grpo_config *cfg;
  const char *name;     /* file name, for file:line:col */
  const char *override; /* the override argument, when applying one */
  int first_line[GRPO_CFG_NUM_KEYS]; /* where a key was set in this file (duplicates) */
} apply_ctx;

/* "run.yaml:3:5" or "override 'trainer.beta=x'". */
static void where(const apply_ctx *c, const ynode *n, char *buf, size_t size) {
  if (c->override)
    snprintf(buf, size, "override '%.200s'", c->override);
  else
    snprintf(buf, size, "%s:%d:%d", c->name, n ? n->line : 1, n ? n->col : 1);
}

__attribute__((format(printf, 5, 6))) static int fail_at(const apply_ctx *c, const ynode *n,
                                                          int code, grpo_error *err,
                                                          const char *fmt, ...) {
  char loc[512], msg[768];
  where(c, n, loc, sizeof loc);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return GRPO_FAIL(err, code, "%s: %s", loc, msg);
}

static const char *kind_name(const ynode *n) {
  if (is_null_scalar(n)) return "nothing";
  return n->kind == N_SEQ ? "a list" : n->kind == N_MAP ? "a mapping" : "a value";
}

static const char *type_name(grpo_config_type t) {
  switch (t) {
    case GRPO_CFG_T_BOOL: return "bool";
    case GRPO_CFG_T_INT: return "int";
    case GRPO_CFG_T_FLOAT: return "float";
    case GRPO_CFG_T_STRING: return "string";
    case GRPO_CFG_T_ENUM: return "enum";
    case GRPO_CFG_T_STRLIST: return "list of strings";
    case GRPO_CFG_T_REWARDS: return "list of {name, weight, options}";
  }
  return "?";
}

/* The expected value, for messages. */
static const char *type_phrase(grpo_config_type t) {
  switch (t) {
    case GRPO_CFG_T_BOOL: return "true or false";
    case GRPO_CFG_T_INT: return "an integer";
    case GRPO_CFG_T_FLOAT: return "a number";
    case GRPO_CFG_T_STRING: return "a string";
    case GRPO_CFG_T_ENUM: return "one of the listed names";
    case GRPO_CFG_T_STRLIST: return "a list of strings";
    case GRPO_CFG_T_REWARDS: return "a list of {name, weight, options}";
  }
  return "?";
}

static bool parse_bool(const char *t, bool *out) {
  if (!strcmp(t, "true") || !strcmp(t, "True") || !strcmp(t, "TRUE")) return *out = true, true;
  if (!strcmp(t, "false") || !strcmp(t, "False") || !strcmp(t, "FALSE")) return *out = false, true;
  return false;
}

/* Decimal integer, YAML 1.2 core style: [-+]?[0-9]+. */
static int parse_int(const char *t, int64_t *out) {
  const char *p = t;
  if (*p == '+' || *p == '-') p++;
  if (!*p) return -1;
  for (const char *q = p; *q; q++)
    if (*q < '0' || *q > '9') return -1;
  errno = 0;
  char *end;
  long long v = strtoll(t, &end, 10);
  if (errno == ERANGE) return 1;
  *out = v;
  return 0;
}

/* YAML 1.2 core float (also accepts 1e-6, which YAML 1.1 reads as text);
 * .inf and .nan are refused since no key takes them. */
static int parse_float(const char *t, double *out) {
  int digits = 0;
  for (const char *q = t; *q; q++) {
    if (*q >= '0' && *q <= '9')
      digits++;
    else if (!strchr("+-.eE", *q))
      return -1;
  }
  if (!digits) return -1;
  char *end;
  double v = strtod(t, &end);
  if (*end) return -1;
  if (!isfinite(v)) return 1;
  *out = v;
  return 0;
}

static void fmt_double(double v, char *buf, size_t size) {
  if (v == floor(v) && fabs(v) < 1e15) {
    snprintf(buf, size, "%.1f", v);
    return;
  }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, size, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) break;
  }
  if (!strpbrk(buf, ".eEn")) {
    size_t n = strlen(buf);
    if (n + 2 < size) memcpy(buf + n, ".0", 3);
  }
}

static void fmt_range(const grpo_config_key *k, char *buf, size_t size) {
  buf[0] = '\0';
  if (k->type == GRPO_CFG_T_INT) {
    if (k->int_max == INT64_MAX)
      snprintf(buf, size, ">= %" PRId64, k->int_min);
    else
      snprintf(buf, size, "[%" PRId64 ", %" PRId64 "]", k->int_min, k->int_max);
  } else if (k->type == GRPO_CFG_T_FLOAT) {
    char lo[40], hi[40];
    snprintf(lo, sizeof lo, "%g", k->float_min);
    snprintf(hi, sizeof hi, "%g", k->float_max);
    if (k->float_max >= DBL_MAX)
      snprintf(buf, size, "%s %s", k->float_min_open ? ">" : ">=", lo);
    else
      snprintf(buf, size, "%c%s, %s]", k->float_min_open ? '(' : '[', lo, hi);
  } else if (k->type == GRPO_CFG_T_ENUM) {
    size_t used = 0;
    for (int i = 0; k->enum_names[i]; i++) {
      int w = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", k->enum_names[i]);
      if (w < 0 || (size_t)w >= size - used) break;
      used += (size_t)w;
    }
  }
}

static int set_origin(apply_ctx *c, int id, const ynode *n, grpo_error *err) {
  char loc[512];
  where(c, n, loc, sizeof loc);
  char *s = xstrdup(loc);
  if (!s) return oom(err);
  free(c->cfg->origin[id]);
  c->cfg->origin[id] = s;
  return GRPO_OK;
}

static int scalar_text(apply_ctx *c, const grpo_config_key *k, const ynode *v, grpo_error *err,
                       const char **out) {
  if (is_null_scalar(v))
    return fail_at(c, v, GRPO_EINVAL, err, "%s: missing value (expected %s)", k->path,
                   type_phrase(k->type));
  if (v->kind != N_SCALAR)
    return fail_at(c, v, GRPO_EINVAL, err, "%s: expected %s, got %s", k->path,
                   type_phrase(k->type), kind_name(v));
  *out = v->text;
  return GRPO_OK;
}

static int set_strlist(apply_ctx *c, const grpo_config_key *k, const ynode *v, grpo_error *err) {
  grpo_strlist list = {0, NULL};
  if (!is_null_scalar(v)) {
    if (v->kind != N_SEQ)
      return fail_at(c, v, GRPO_EINVAL, err, "%s: expected a list of strings, e.g. [a, b]; got %s",
                     k->path, kind_name(v));
    if (v->n) {
      list.items = calloc((size_t)v->n, sizeof *list.items);
      if (!list.items) return oom(err);
    }
    for (int i = 0; i < v->n; i++) {
      const ynode *it = v->kids[i];
      if (it->kind != N_SCALAR || is_null_scalar(it)) {
        strlist_free(&list);
        return fail_at(c, it, GRPO_EINVAL, err, "%s[%d]: expected a string, got %s", k->path, i,
                       kind_name(it));
      }
      if (!(list.items[i] = xstrdup(it->text))) {
        strlist_free(&list);
        return oom(err);
      }
      list.n = i + 1;
    }
  }
  strlist_free(FIELD(c->cfg, k, grpo_strlist));
  *FIELD(c->cfg, k, grpo_strlist) = list;
  return GRPO_OK;
}

static int parse_reward_fn(apply_ctx *c, const grpo_config_key *k, int idx, const ynode *m,
                           grpo_reward_fn *f, grpo_error *err) {
  static const char *const fields[] = {"name", "weight", "options"};
  f->weight = 1.0;
  f->line = c->override ? 0 : m->line;
  f->column = c->override ? 0 : m->col;
  char loc[512], where_buf[600];
  where(c, m, loc, sizeof loc);
  snprintf(where_buf, sizeof where_buf, "%s: %s[%d]", loc, k->path, idx);
  if (!(f->where = xstrdup(where_buf))) return oom(err);
  if (m->kind != N_MAP)
    return fail_at(c, m, GRPO_EINVAL, err,
                   "%s[%d]: expected a mapping {name: ..., weight: ..., options: {...}}, got %s",
                   k->path, idx, kind_name(m));
  for (int i = 0; i < m->n; i += 2) {
    const ynode *key = m->kids[i], *val = m->kids[i + 1];
    if (!strcmp(key->text, "name")) {
      if (val->kind != N_SCALAR || is_null_scalar(val) || !val->text[0])
        return fail_at(c, val, GRPO_EINVAL, err, "%s[%d].name: expected a reward name", k->path,
                       idx);
      if (!(f->name = xstrdup(val->text))) return oom(err);
    } else if (!strcmp(key->text, "weight")) {
      int r = val->kind == N_SCALAR && val->plain ? parse_float(val->text, &f->weight) : -1;
      if (r != 0 || f->weight < 0 || f->weight > 1e6)
        return fail_at(c, val, GRPO_EINVAL, err,
                       "%s[%d].weight: expected a number in [0, 1e6], got '%s'", k->path,
                       idx, val->kind == N_SCALAR ? val->text : kind_name(val));
    } else if (!strcmp(key->text, "options")) {
      if (is_null_scalar(val)) continue;
      if (val->kind != N_MAP)
        return fail_at(c, val, GRPO_EINVAL, err, "%s[%d].options: expected a mapping, got %s",
                       k->path, idx, kind_name(val));
      if (val->n) {
        f->options = calloc((size_t)val->n / 2, sizeof *f->options);
        if (!f->options) return oom(err);
      }
      for (int j = 0; j < val->n; j += 2) {
        const ynode *ok = val->kids[j], *ov = val->kids[j + 1];
        if (ov->kind != N_SCALAR)
          return fail_at(c, ov, GRPO_EINVAL, err, "%s[%d].options.%s: expected a single value, got %s",
                         k->path, idx, ok->text, kind_name(ov));
        grpo_reward_option *o = &f->options[f->n_options++];
        o->key = xstrdup(ok->text);
        o->value = xstrdup(is_null_scalar(ov) ? "" : ov->text);
        o->line = c->override ? 0 : ov->line;
        o->column = c->override ? 0 : ov->col;
        if (!o->key || !o->value) return oom(err);
      }
    } else {
      const char *s = grpo_nearest_name(key->text, fields, 3);
      char hint[128] = "";
      if (s) snprintf(hint, sizeof hint, " (did you mean '%s'?)", s);
      return fail_at(c, key, GRPO_EINVAL, err,
                     "%s[%d]: unknown field '%s'%s; a reward function has name, weight and options",
                     k->path, idx, key->text, hint);
    }
  }
  if (!f->name)
    return fail_at(c, m, GRPO_EINVAL, err, "%s[%d]: missing 'name'", k->path, idx);
  return GRPO_OK;
}

static int set_rewards(apply_ctx *c, const grpo_config_key *k, const ynode *v, grpo_error *err) {
  grpo_reward_fn_list list = {0, NULL};
  if (!is_null_scalar(v)) {
    if (v->kind != N_SEQ)
      return fail_at(c, v, GRPO_EINVAL, err,
                     "%s: expected a list such as [{name: math, weight: 1.0}], got %s", k->path,
                     kind_name(v));
    if (v->n) {
      list.items = calloc((size_t)v->n, sizeof *list.items);
      if (!list.items) return oom(err);
    }
    for (int i = 0; i < v->n; i++) {
      list.n = i + 1;
      int rc = parse_reward_fn(c, k, i, v->kids[i], &list.items[i], err);
      for (int j = 0; rc == GRPO_OK && j < i; j++)
        if (!strcmp(list.items[j].name, list.items[i].name))
          rc = fail_at(c, v->kids[i], GRPO_EINVAL, err,
                       "%s[%d]: reward '%s' is already listed (entry %d); each name once, since it "
                       "names the metric rewards/%s/mean",
                       k->path, i, list.items[i].name, j, list.items[i].name);
      if (rc != GRPO_OK) {
        rewards_free(&list);
        return rc;
      }
    }
  }
  rewards_free(FIELD(c->cfg, k, grpo_reward_fn_list));
  *FIELD(c->cfg, k, grpo_reward_fn_list) = list;
  return GRPO_OK;
}

/* Validates node v for key id and stores it. */
static int set_value(apply_ctx *c, int id, const ynode *keynode, const ynode *v, grpo_error *err) {
  const grpo_config_key *k = &KEYS[id];
  if (!c->override) {
    if (c->first_line[id])
      return fail_at(c, keynode, GRPO_EINVAL, err, "duplicate key '%s' (first set at line %d)",
                     k->path, c->first_line[id]);
    c->first_line[id] = keynode->line;
  }
  const char *t = NULL;
  int rc = GRPO_OK;
  char range[256]; /* filled only for messages */
  switch (k->type) {
    case GRPO_CFG_T_BOOL: {
      bool b;
      if ((rc = scalar_text(c, k, v, err, &t))) return rc;
      if (!v->plain || !parse_bool(t, &b))
        return fail_at(c, v, GRPO_EINVAL, err, "%s: expected true or false, got '%s'%s", k->path, t,
                       v->plain ? " (YAML 1.1 yes/no/on/off are not accepted)" : " (quoted, so a string)");
      *FIELD(c->cfg, k, bool) = b;
      break;
    }
    case GRPO_CFG_T_INT: {
      int64_t x = 0;
      if ((rc = scalar_text(c, k, v, err, &t))) return rc;
      int r = v->plain ? parse_int(t, &x) : -1;
      if (r < 0) {
        double d;
        if (v->plain && parse_float(t, &d) == 0)
          return fail_at(c, v, GRPO_EINVAL, err, "%s: expected an integer, got '%s' (write it without a fraction or exponent)",
                         k->path, t);
        return fail_at(c, v, GRPO_EINVAL, err, "%s: expected an integer, got '%s'", k->path, t);
      }
      if (r > 0 || x < k->int_min || x > k->int_max) {
        fmt_range(k, range, sizeof range);
        return fail_at(c, v, GRPO_EINVAL, err, "%s: %s is out of range (allowed: %s)", k->path, t,
                       range);
      }
      *FIELD(c->cfg, k, int64_t) = x;
      break;
    }
    case GRPO_CFG_T_FLOAT: {
      double x = 0;
      if ((rc = scalar_text(c, k, v, err, &t))) return rc;
      int r = v->plain ? parse_float(t, &x) : -1;
      if (r < 0) return fail_at(c, v, GRPO_EINVAL, err, "%s: expected a number, got '%s'", k->path, t);
      if (r > 0 || x < k->float_min || x > k->float_max || (k->float_min_open && x == k->float_min)) {
        fmt_range(k, range, sizeof range);
        return fail_at(c, v, GRPO_EINVAL, err, "%s: %s is out of range (allowed: %s)", k->path, t,
                       range);
      }
      *FIELD(c->cfg, k, double) = x;
      break;
    }
    case GRPO_CFG_T_STRING: {
      const char *s = "";
      if (!is_null_scalar(v)) {
        if (v->kind != N_SCALAR)
          return fail_at(c, v, GRPO_EINVAL, err, "%s: expected a string, got %s", k->path,
                         kind_name(v));
        s = v->text;
      }
      char *copy = xstrdup(s);
      if (!copy) return oom(err);
      free(*FIELD(c->cfg, k, char *));
      *FIELD(c->cfg, k, char *) = copy;
      break;
    }
    case GRPO_CFG_T_ENUM: {
      if ((rc = scalar_text(c, k, v, err, &t))) return rc;
      int found = -1, count = 0;
      for (int i = 0; k->enum_names[i]; i++, count++)
        if (!strcmp(k->enum_names[i], t)) found = i;
      if (found < 0) {
        fmt_range(k, range, sizeof range);
        const char *s = grpo_nearest_name(t, k->enum_names, (size_t)count);
        char hint[128] = "";
        if (s) snprintf(hint, sizeof hint, " (did you mean '%s'?)", s);
        return fail_at(c, v, GRPO_EINVAL, err, "%s: '%s' is not one of: %s%s", k->path, t, range,
                       hint);
      }
      *FIELD(c->cfg, k, int) = found;
      break;
    }
    case GRPO_CFG_T_STRLIST:
      if ((rc = set_strlist(c, k, v, err))) return rc;
      break;
    case GRPO_CFG_T_REWARDS:
      if ((rc = set_rewards(c, k, v, err))) return rc;
      break;
  }
  return set_origin(c, id, c->override ? NULL : keynode, err);
}

static int unknown_key(apply_ctx *c, const ynode *keynode, const char *path, bool root,
                       grpo_error *err) {
  const char *s = root ? suggest_root(path) : suggest_key(path);
  char hint[160] = "";
  if (s) snprintf(hint, sizeof hint, " (did you mean '%s'?)", s);
  const char *what = root && find_section(path) < 0 && !strchr(path, '.') ? "unknown section or key" : "unknown key";
  return fail_at(c, keynode, GRPO_EINVAL, err, "%s '%.200s'%s", what, path, hint);
}

static int apply_root(apply_ctx *c, const ynode *root, grpo_error *err) {
  if (!root)
    return GRPO_FAIL(err, GRPO_EPARSE, "%s:1:1: empty config file (no settings)", c->name);
  if (is_null_scalar(root))
    return fail_at(c, root, GRPO_EPARSE, err, "empty config (the document holds no settings)");
  if (root->kind != N_MAP)
    return fail_at(c, root, GRPO_EPARSE, err,
                   "the top level must be a mapping of sections (model:, trainer:, ...), got %s",
                   kind_name(root));
  for (int i = 0; i < root->n; i += 2) {
    const ynode *key = root->kids[i], *val = root->kids[i + 1];
    int id = find_key_index(key->text);
    if (id >= 0) {
      int rc = set_value(c, id, key, val, err);
      if (rc) return rc;
      continue;
    }
    if (find_section(key->text) < 0) return unknown_key(c, key, key->text, true, err);
    if (is_null_scalar(val)) continue;
    if (val->kind != N_MAP)
      return fail_at(c, val, GRPO_EINVAL, err, "section '%s' must be a mapping of keys, got %s",
                     key->text, kind_name(val));
    for (int j = 0; j < val->n; j += 2) {
      const ynode *k2 = val->kids[j], *v2 = val->kids[j + 1];
      char path[512];
      snprintf(path, sizeof path, "%s.%s", key->text, k2->text);
      int id2 = find_key_index(path);
      if (id2 < 0 || KEYS[id2].section[0] == '\0') return unknown_key(c, k2, path, false, err);
      int rc = set_value(c, id2, k2, v2, err);
      if (rc) return rc;
    }
  }
  return GRPO_OK;
}

int grpo_config_merge_string(grpo_config *cfg, const char *text, size_t len, const char *name,
                             grpo_error *err) {
  schema_init();
  if (!name) name = "<config>";
  if (len > MAX_CONFIG_BYTES)
    return GRPO_FAIL(err, GRPO_EINVAL, "%s: %zu bytes is too large for a config (limit %u)", name,
                     len, MAX_CONFIG_BYTES);
  int rc = check_text(text, len, name, err);
  if (rc) return rc;
  ynode *root = NULL;
  if ((rc = parse_tree(text, len, name, &root, err))) return rc;
  apply_ctx *c = calloc(1, sizeof *c);
  if (!c) {
    node_free(root);
    return oom(err);
  }
  c->cfg = cfg;
  c->name = name;
  rc = apply_root(c, root, err);
  free(c);
  node_free(root);
  return rc;
}

int grpo_config_merge_file(grpo_config *cfg, const char *path, grpo_error *err) {
  struct stat st;
  if (stat(path, &st) != 0)
    return GRPO_FAIL(err, errno == ENOENT ? GRPO_ENOTFOUND : GRPO_EIO, "%s: cannot open config: %s",
                     path, strerror(errno));
  if (!S_ISREG(st.st_mode))
    return GRPO_FAIL(err, GRPO_EIO, "%s: not a regular file (a directory?)", path);
  if ((uintmax_t)st.st_size > MAX_CONFIG_BYTES)
    return GRPO_FAIL(err, GRPO_EINVAL, "%s: %jd bytes is too large for a config (limit %u)", path,
                     (intmax_t)st.st_size, MAX_CONFIG_BYTES);
  FILE *f = fopen(path, "rb");
  if (!f) return GRPO_FAIL(err, GRPO_EIO, "%s: cannot open config: %s", path, strerror(errno));
  char *buf = malloc((size_t)st.st_size + 1);
  if (!buf) {
    fclose(f);
    return oom(err);
  }
  size_t n = fread(buf, 1, (size_t)st.st_size + 1, f);
  int read_err = ferror(f);
  fclose(f);
  if (read_err) {
    free(buf);
    return GRPO_FAIL(err, GRPO_EIO, "%s: read error", path);
  }
  if (n > MAX_CONFIG_BYTES) n = MAX_CONFIG_BYTES + 1; /* grew while reading */
  int rc = grpo_config_merge_string(cfg, buf, n, path, err);
  free(buf);
  return rc;
}

bool grpo_config_is_override(const char *arg) {
  if (!arg || arg[0] == '-' || !strchr(arg, '=')) return false;
  size_t n = strcspn(arg, "=");
  for (size_t i = 0; i < n; i++) {
    char ch = arg[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '_' || ch == '.'))
      return false;
  }
  return n > 0;
}

int grpo_config_apply_override(grpo_config *cfg, const char *arg, grpo_error *err) {
  schema_init();
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg)
    return GRPO_FAIL(err, GRPO_EINVAL, "override '%.200s': expected section.key=value", arg);
  char key[256];
  size_t kn = (size_t)(eq - arg);
  if (kn >= sizeof key)
    return GRPO_FAIL(err, GRPO_EINVAL, "override '%.200s': key too long", arg);
  memcpy(key, arg, kn);
  key[kn] = '\0';
  apply_ctx c;
  memset(&c, 0, sizeof c);
  c.cfg = cfg;
  c.name = "override";
  c.override = arg;
  int id = find_key_index(key);
  if (id < 0 && find_section(key) >= 0)
    return GRPO_FAIL(err, GRPO_EINVAL,
                     "override '%.200s': '%s' is a section; set its keys one by one (%s.KEY=VALUE)",
                     arg, key, key);
  if (id < 0) return unknown_key(&c, NULL, key, !strchr(key, '.'), err);
  const char *val = eq + 1;
  size_t vlen = strlen(val);
  int rc = check_text(val, vlen, "value", err);
  ynode *root = NULL;
  if (rc == GRPO_OK) rc = parse_tree(val, vlen, "value", &root, err);
  if (rc) return grpo_error_prefix(err, "override '%.200s'", arg);
  ynode empty = {.kind = N_SCALAR, .plain = true, .text = (char *)""};
  rc = set_value(&c, id, NULL, root ? root : &empty, err);
  node_free(root);
  return rc;
}

/* ---- cross-key rules and derived defaults ------------------------------------ */

/* A rule between keys failed: the message names key `id`, placed where it
 * was set, else where the key that triggered the rule (`cause`) was set. */
__attribute__((format(printf, 5, 6))) static int fail_key(const grpo_config *cfg, int id, int cause,
                                                           grpo_error *err, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  const char *loc = cfg->origin[id] ? cfg->origin[id] : cfg->origin[cause] ? cfg->origin[cause] : "config";
  return GRPO_FAIL(err, GRPO_EINVAL, "%s: %s: %s", loc, KEYS[id].path, msg);
}

int grpo_config_finalize(grpo_config *cfg, grpo_error *err) {
  schema_init();
  if (!cfg->run_name[0]) return fail_key(cfg, GRPO_CFG_ID_top_run_name, GRPO_CFG_ID_top_run_name, err, "must not be empty");
  if (!cfg->output_dir[0]) {
    size_t n = strlen(cfg->run_name) + 6;
    char *dir = malloc(n);
    if (!dir) return oom(err);
    snprintf(dir, n, "runs/%s", cfg->run_name);
    free(cfg->output_dir);
    cfg->output_dir = dir;
  }
  if (cfg->trainer.epsilon_high < 0) cfg->trainer.epsilon_high = cfg->trainer.epsilon;
  if (cfg->trainer.delta != 0 && cfg->trainer.delta <= 1 + cfg->trainer.epsilon_high)
    return fail_key(cfg, GRPO_CFG_ID_trainer_delta, GRPO_CFG_ID_trainer_epsilon_high, err,
                    "must be 0 (off) or greater than 1 + epsilon_high (%g)",
                    1 + cfg->trainer.epsilon_high);
  if (cfg->trainer.dual_clip_c != 0 && cfg->trainer.dual_clip_c <= 1)
    return fail_key(cfg, GRPO_CFG_ID_trainer_dual_clip_c, GRPO_CFG_ID_trainer_dual_clip_c, err, "must be 0 (off) or greater than 1");
  if (cfg->trainer.importance_sampling_clip_min > cfg->trainer.importance_sampling_clip_max)
    return fail_key(cfg, GRPO_CFG_ID_trainer_importance_sampling_clip_min, GRPO_CFG_ID_trainer_importance_sampling_clip_max, err,
                    "must not exceed importance_sampling_clip_max (%g)",
                    cfg->trainer.importance_sampling_clip_max);
  if (cfg->distributed.mode == GRPO_CFG_MODE_DISAGGREGATED && cfg->distributed.rollout_ranks < 1)
    return fail_key(cfg, GRPO_CFG_ID_distributed_rollout_ranks, GRPO_CFG_ID_distributed_mode, err,
                    "distributed.mode disaggregated needs at least 1 rollout rank");
  if (cfg->distributed.off_policy_steps && cfg->distributed.mode != GRPO_CFG_MODE_DISAGGREGATED)
    return fail_key(cfg, GRPO_CFG_ID_distributed_off_policy_steps, GRPO_CFG_ID_distributed_mode, err,
                    "needs distributed.mode disaggregated");
  if (!cfg->model.path[0]) {
    if (cfg->model.num_heads % cfg->model.num_kv_heads)
      return fail_key(cfg, GRPO_CFG_ID_model_num_kv_heads, GRPO_CFG_ID_model_num_heads, err, "must divide model.num_heads (%" PRId64 ")",
                      cfg->model.num_heads);
    if (cfg->model.hidden_size % cfg->model.num_heads)
      return fail_key(cfg, GRPO_CFG_ID_model_hidden_size, GRPO_CFG_ID_model_num_heads, err,
                      "must be a multiple of model.num_heads (%" PRId64 ")", cfg->model.num_heads);
  }
  if (cfg->data.arith_min_ops > cfg->data.arith_max_ops)
    return fail_key(cfg, GRPO_CFG_ID_data_arith_min_ops, GRPO_CFG_ID_data_arith_max_ops, err,
                    "must not exceed data.arith_max_ops (%" PRId64 ")", cfg->data.arith_max_ops);
  if (!cfg->data.arith_ops[0] ||
      strspn(cfg->data.arith_ops, "+-*/") != strlen(cfg->data.arith_ops))
    return fail_key(cfg, GRPO_CFG_ID_data_arith_ops, GRPO_CFG_ID_data_arith_ops, err,
                    "'%s' must be one or more of + - * /", cfg->data.arith_ops);
  if (cfg->rollout.min_thinking_tokens && cfg->rollout.max_thinking_tokens &&
      cfg->rollout.min_thinking_tokens > cfg->rollout.max_thinking_tokens)
    return fail_key(cfg, GRPO_CFG_ID_rollout_min_thinking_tokens, GRPO_CFG_ID_rollout_max_thinking_tokens, err,
                    "must not exceed rollout.max_thinking_tokens (%" PRId64 ")",
                    cfg->rollout.max_thinking_tokens);
  if (!cfg->checkpoint.resume[0])
    return fail_key(cfg, GRPO_CFG_ID_checkpoint_resume, GRPO_CFG_ID_checkpoint_resume, err, "must be auto, never or a checkpoint path");
  return GRPO_OK;
}

int grpo_config_load(grpo_config *cfg, const char *path, int n_overrides,
                     const char *const *overrides, grpo_error *err) {
  int rc = grpo_config_init(cfg, err);
  if (rc) return rc;
  if (path) rc = grpo_config_merge_file(cfg, path, err);
  for (int i = 0; rc == GRPO_OK && i < n_overrides; i++)
    rc = grpo_config_apply_override(cfg, overrides[i], err);
  if (rc == GRPO_OK) rc = grpo_config_finalize(cfg, err);
  if (rc) grpo_config_free(cfg);
  return rc;
}

/* ---- writing YAML (libyaml emitter) ------------------------------------------ */

typedef struct sbuf {
  char *p;
  size_t n, cap;
  bool failed;
} sbuf;

static int sbuf_put(sbuf *b, const char *s, size_t n) {
  if (b->failed) return -1;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->failed = true;
      return -1;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
  return 0;
}

static int sbuf_puts(sbuf *b, const char *s) { return sbuf_put(b, s, strlen(s)); }

__attribute__((format(printf, 2, 3))) static int sbuf_printf(sbuf *b, const char *fmt, ...) {
  char small[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return -1;
  if ((size_t)n < sizeof small) return sbuf_put(b, small, (size_t)n);
  char *big = malloc((size_t)n + 1);
  if (!big) return b->failed = true, -1;
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  int rc = sbuf_put(b, big, (size_t)n);
  free(big);
  return rc;
}

static int emitter_write(void *data, unsigned char *buffer, size_t size) {
  return sbuf_put(data, (const char *)buffer, size) == 0;
}

/* Strings that a YAML reader would take for null, a bool or a number are
 * quoted, so every reader (PyYAML, h5py users) sees a string. */
static bool needs_quotes(const char *s) {
  if (!s[0]) return true;
  static const char *const special[] = {"~", "null", "Null", "NULL", "true", "True", "TRUE",
                                        "false", "False", "FALSE", "yes", "Yes", "YES", "no", "No",
                                        "NO", "on", "On", "ON", "off", "Off", "OFF", "y", "Y", "n",
                                        "N", ".inf", ".nan"};
  for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
    if (!strcmp(s, special[i])) return true;
  double d;
  int64_t x;
  return parse_float(s, &d) >= 0 || parse_int(s, &x) >= 0;
}

typedef struct emit {
  yaml_emitter_t em;
  bool ok;
} emit;

static void ev_scalar(emit *e, const char *s, yaml_scalar_style_t style) {
  yaml_event_t ev;
  if (!e->ok) return;
  if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1, 1, style) ||
      !yaml_emitter_emit(&e->em, &ev))
    e->ok = false;
}

static void ev_str(emit *e, const char *s) {
  ev_scalar(e, s, needs_quotes(s) ? YAML_SINGLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE);
}

static void ev_plain(emit *e, const char *s) { ev_scalar(e, s, YAML_ANY_SCALAR_STYLE); }

static void ev_simple(emit *e, yaml_event_type_t type, bool flow) {
  yaml_event_t ev;
  int ok = 0;
  if (!e->ok) return;
  switch (type) {
    case YAML_MAPPING_START_EVENT:
      ok = yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
                                               flow ? YAML_FLOW_MAPPING_STYLE : YAML_BLOCK_MAPPING_STYLE);
      break;
    case YAML_MAPPING_END_EVENT: ok = yaml_mapping_end_event_initialize(&ev); break;
    case YAML_SEQUENCE_START_EVENT:
      ok = yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
                                                flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE);
      break;
    case YAML_SEQUENCE_END_EVENT: ok = yaml_sequence_end_event_initialize(&ev); break;
    case YAML_STREAM_START_EVENT: ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING); break;
    case YAML_STREAM_END_EVENT: ok = yaml_stream_end_event_initialize(&ev); break;
    case YAML_DOCUMENT_START_EVENT: ok = yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1); break;
    case YAML_DOCUMENT_END_EVENT: ok = yaml_document_end_event_initialize(&ev, 1); break;
    default: break;
  }
  if (!ok || !yaml_emitter_emit(&e->em, &ev)) e->ok = false;
}

/* The value of key k. flow: lists on one line (used by --defaults and docs). */
static void emit_value(emit *e, const grpo_config *cfg, const grpo_config_key *k, bool flow) {
  char num[64];
  switch (k->type) {
    case GRPO_CFG_T_BOOL: ev_plain(e, *CFIELD(cfg, k, bool) ? "true" : "false"); break;
    case GRPO_CFG_T_INT:
      snprintf(num, sizeof num, "%" PRId64, *CFIELD(cfg, k, int64_t));
      ev_plain(e, num);
      break;
    case GRPO_CFG_T_FLOAT:
      fmt_double(*CFIELD(cfg, k, double), num, sizeof num);
      ev_plain(e, num);
      break;
    case GRPO_CFG_T_ENUM: {
      int v = *CFIELD(cfg, k, int);
      const char *name = grpo_config_enum_name((grpo_config_key_id)(k - KEYS), v);
      ev_str(e, name ? name : "?");
      break;
    }
    case GRPO_CFG_T_STRING: ev_str(e, *CFIELD(cfg, k, char *)); break;
    case GRPO_CFG_T_STRLIST: {
      const grpo_strlist *l = CFIELD(cfg, k, grpo_strlist);
      ev_simple(e, YAML_SEQUENCE_START_EVENT, true);
      for (int i = 0; i < l->n; i++) ev_str(e, l->items[i]);
      ev_simple(e, YAML_SEQUENCE_END_EVENT, true);
      break;
    }
    case GRPO_CFG_T_REWARDS: {
      const grpo_reward_fn_list *l = CFIELD(cfg, k, grpo_reward_fn_list);
      ev_simple(e, YAML_SEQUENCE_START_EVENT, flow || l->n == 0);
      for (int i = 0; i < l->n; i++) {
        const grpo_reward_fn *f = &l->items[i];
        ev_simple(e, YAML_MAPPING_START_EVENT, flow);
        ev_plain(e, "name");
        ev_str(e, f->name);
        ev_plain(e, "weight");
        fmt_double(f->weight, num, sizeof num);
        ev_plain(e, num);
        ev_plain(e, "options");
        ev_simple(e, YAML_MAPPING_START_EVENT, true);
        for (int j = 0; j < f->n_options; j++) {
          ev_str(e, f->options[j].key);
          /* Option values are YAML scalars kept as text: written plain when
           * that reads back the same, quoted otherwise (by libyaml). */
          const char *ov = f->options[j].value;
          ynode probe = {.kind = N_SCALAR, .plain = true, .text = (char *)ov};
          ev_scalar(e, ov, is_null_scalar(&probe) ? YAML_SINGLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE);
        }
        ev_simple(e, YAML_MAPPING_END_EVENT, true);
        ev_simple(e, YAML_MAPPING_END_EVENT, flow);
      }
      ev_simple(e, YAML_SEQUENCE_END_EVENT, flow || l->n == 0);
      break;
    }
  }
}

static int emit_begin(emit *e, sbuf *out) {
  memset(e, 0, sizeof *e);
  if (!yaml_emitter_initialize(&e->em)) return -1;
  e->ok = true;
  yaml_emitter_set_output(&e->em, emitter_write, out);
  yaml_emitter_set_unicode(&e->em, 1);
  yaml_emitter_set_width(&e->em, -1);
  yaml_emitter_set_indent(&e->em, 2);
  ev_simple(e, YAML_STREAM_START_EVENT, false);
  ev_simple(e, YAML_DOCUMENT_START_EVENT, false);
  ev_simple(e, YAML_MAPPING_START_EVENT, false);
  return 0;
}

static int emit_end(emit *e) {
  ev_simple(e, YAML_MAPPING_END_EVENT, false);
  ev_simple(e, YAML_DOCUMENT_END_EVENT, false);
  ev_simple(e, YAML_STREAM_END_EVENT, false);
  if (e->ok && !yaml_emitter_flush(&e->em)) e->ok = false;
  yaml_emitter_delete(&e->em);
  return e->ok ? 0 : -1;
}

int grpo_config_to_yaml(const grpo_config *cfg, char **out, size_t *len, grpo_error *err) {
  schema_init();
  sbuf b = {0};
  emit e;
  if (emit_begin(&e, &b)) return oom(err);
  const char *open_section = NULL;
  for (int i = 0; i < GRPO_CFG_NUM_KEYS; i++) {
    const grpo_config_key *k = &KEYS[i];
    if (k->section[0] && (!open_section || strcmp(open_section, k->section) != 0)) {
      if (open_section) ev_simple(&e, YAML_MAPPING_END_EVENT, false);
      ev_plain(&e, k->section);
      ev_simple(&e, YAML_MAPPING_START_EVENT, false);
      open_section = k->section;
    }
    ev_plain(&e, k->name);
    emit_value(&e, cfg, k, false);
  }
  if (open_section) ev_simple(&e, YAML_MAPPING_END_EVENT, false);
  if (emit_end(&e) || b.failed) {
    free(b.p);
    return GRPO_FAIL(err, GRPO_EFORMAT, "config: writing YAML failed: %s",
                     e.em.problem ? e.em.problem : "out of memory");
  }
  *out = b.p;
  if (len) *len = b.n;
  return GRPO_OK;
}

int grpo_config_write_file(const grpo_config *cfg, const char *path, grpo_error *err) {
  char *text = NULL;
  size_t n = 0;
  int rc = grpo_config_to_yaml(cfg, &text, &n, err);
  if (rc) return rc;
  size_t plen = strlen(path) + 5;
  char *tmp = malloc(plen);
  if (!tmp) {
    free(text);
    return oom(err);
  }
  snprintf(tmp, plen, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    rc = GRPO_FAIL(err, GRPO_EIO, "%s: cannot write: %s", tmp, strerror(errno));
  } else {
    size_t w = fwrite(text, 1, n, f);
    int bad = w != n;
    if (fclose(f) != 0) bad = 1;
    if (bad)
      rc = GRPO_FAIL(err, GRPO_EIO, "%s: write failed: %s", tmp, strerror(errno));
    else if (rename(tmp, path) != 0)
      rc = GRPO_FAIL(err, GRPO_EIO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    if (rc) remove(tmp);
  }
  free(tmp);
  free(text);
  return rc;
}

/* "key: value" for one key as libyaml writes it (flow style), without the
 * trailing newline. */
static int value_line(const grpo_config *cfg, const grpo_config_key *k, char **out) {
  sbuf b = {0};
  emit e;
  if (emit_begin(&e, &b)) return -1;
  ev_plain(&e, k->name);
  emit_value(&e, cfg, k, true);
  if (emit_end(&e) || b.failed) {
    free(b.p);
    return -1;
  }
  while (b.n && (b.p[b.n - 1] == '\n')) b.p[--b.n] = '\0';
  *out = b.p;
  return 0;
}

static const char *section_doc(const char *name) {
  int s = find_section(name);
  return s < 0 ? "" : SECTIONS[s].doc;
}

static void type_desc(const grpo_config_key *k, char *buf, size_t size) {
  char range[256];
  fmt_range(k, range, sizeof range);
  if (k->type == GRPO_CFG_T_ENUM)
    snprintf(buf, size, "one of: %s", range);
  else if (range[0])
    snprintf(buf, size, "%s, %s", type_name(k->type), range);
  else
    snprintf(buf, size, "%s", type_name(k->type));
}

int grpo_config_defaults_yaml(char **out, grpo_error *err) {
  schema_init();
  grpo_config def;
  int rc = grpo_config_init(&def, err);
  if (rc) return rc;
  sbuf b = {0};
  sbuf_puts(&b,
            "# grpo experiment config: every key with its default (`grpo config --defaults`).\n"
            "# Generated from core/config_schema.def. This file loads as-is; copy the keys you change.\n");
  const char *open_section = NULL;
  for (int i = 0; i < GRPO_CFG_NUM_KEYS; i++) {
    const grpo_config_key *k = &KEYS[i];
    const char *indent = k->section[0] ? "  " : "";
    if (k->section[0] && (!open_section || strcmp(open_section, k->section) != 0)) {
      sbuf_printf(&b, "\n# %s\n%s:\n", section_doc(k->section), k->section);
      open_section = k->section;
    } else if (!k->section[0] && i == 0) {
      sbuf_puts(&b, "\n# Top-level keys.\n");
    }
    char *line = NULL;
    if (value_line(&def, k, &line)) {
      b.failed = true;
      break;
    }
    char tdesc[512];
    type_desc(k, tdesc, sizeof tdesc);
    sbuf_printf(&b, "%s# %s\n%s%s  # %s\n", indent, k->doc, indent, line, tdesc);
    free(line);
  }
  grpo_config_free(&def);
  if (b.failed) {
    free(b.p);
    return oom(err);
  }
  *out = b.p;
  return GRPO_OK;
}

/* Markdown table cell text: pipes, angle brackets and stars escaped. */
static void md_text(sbuf *b, const char *s) {
  for (; *s; s++) {
    switch (*s) {
      case '|': sbuf_puts(b, "\\|"); break;
      case '<': sbuf_puts(b, "&lt;"); break;
      case '>': sbuf_puts(b, "&gt;"); break;
      case '*': sbuf_puts(b, "\\*"); break;
      case '\n': sbuf_puts(b, " "); break;
      default: sbuf_put(b, s, 1);
    }
  }
}

/* Inline code span; pipes must still be escaped inside GFM tables. */
static void md_code(sbuf *b, const char *s) {
  bool tick = strchr(s, '`') != NULL;
  sbuf_puts(b, tick ? "`` " : "`");
  for (; *s; s++) {
    if (*s == '|')
      sbuf_puts(b, "\\|");
    else
      sbuf_put(b, s, 1);
  }
  sbuf_puts(b, tick ? " ``" : "`");
}

int grpo_config_markdown(char **out, grpo_error *err) {
  schema_init();
  grpo_config def;
  int rc = grpo_config_init(&def, err);
  if (rc) return rc;
  sbuf b = {0};
  sbuf_puts(&b,
            "# Configuration reference\n"
            "\n"
            "<!-- Generated by `grpo config --markdown` from core/config_schema.def; do not edit.\n"
            "     Regenerate with: build/cli/grpo config --markdown > docs/config.md -->\n"
            "\n"
            "A run is described by one YAML file with the sections below; every key is optional\n"
            "and has the default shown. `grpo config --defaults` prints all of them as a YAML file\n"
            "that loads as-is.\n"
            "\n"
            "```yaml\n"
            "run_name: gsm8k-grpo\n"
            "model:\n"
            "  path: /models/Qwen2.5-0.5B-Instruct\n"
            "rollout:\n"
            "  num_generations: 8\n"
            "trainer:\n"
            "  loss_type: dapo\n"
            "  beta: 0.0\n"
            "reward:\n"
            "  functions:\n"
            "    - {name: math, weight: 1.0}\n"
            "    - {name: format, weight: 0.1}\n"
            "```\n"
            "\n"
            "- **Overrides.** Any key can be set on the command line after the file:\n"
            "  `grpo train run.yaml trainer.beta=0.04 optim.lr=1e-6 data.eval_paths=[a.jsonl,b.jsonl]`.\n"
            "  The value is read as YAML and checked like a value in the file.\n"
            "- **Checking.** `grpo config run.yaml [overrides]` validates a file and prints the\n"
            "  resolved config. Unknown keys (with the nearest valid key), wrong types, values out\n"
            "  of range, unknown enum values, duplicate keys, tabs and indentation errors are\n"
            "  reported as `file:line:column: message`.\n"
            "- **Values.** Booleans are `true`/`false`; integers are decimal; floats may use\n"
            "  exponents (`1e-6`); strings may be quoted. Anchors, aliases and tags are not accepted.\n"
            "- **Resolved config.** Each run writes the config with every default filled in to\n"
            "  `<output_dir>/config.yaml` and into every checkpoint; loading it gives the same run.\n");
  const char *open_section = "\x01";
  for (int i = 0; i < GRPO_CFG_NUM_KEYS; i++) {
    const grpo_config_key *k = &KEYS[i];
    if (strcmp(open_section, k->section) != 0) {
      if (k->section[0]) {
        sbuf_printf(&b, "\n## `%s`\n\n", k->section);
        md_text(&b, section_doc(k->section));
        sbuf_puts(&b, "\n");
      } else {
        sbuf_puts(&b, "\n## Top level\n\nKeys at the top of the file, outside every section.\n");
      }
      sbuf_puts(&b, "\n| key | type | default | allowed | description |\n|---|---|---|---|---|\n");
      open_section = k->section;
    }
    char *line = NULL;
    if (value_line(&def, k, &line)) {
      b.failed = true;
      break;
    }
    const char *value = line + strlen(k->name) + 1;
    while (*value == ' ') value++;
    char range[256];
    fmt_range(k, range, sizeof range);
    sbuf_puts(&b, "| ");
    md_code(&b, k->path);
    sbuf_printf(&b, " | %s | ", k->type == GRPO_CFG_T_REWARDS ? "list" : type_name(k->type));
    md_code(&b, value);
    sbuf_puts(&b, " | ");
    if (k->type == GRPO_CFG_T_ENUM) {
      for (int j = 0; k->enum_names[j]; j++) {
        if (j) sbuf_puts(&b, ", ");
        md_code(&b, k->enum_names[j]);
      }
    } else {
      md_text(&b, range);
    }
    sbuf_puts(&b, " | ");
    md_text(&b, k->doc);
    sbuf_puts(&b, " |\n");
    free(line);
  }
  grpo_config_free(&def);
  if (b.failed) {
    free(b.p);
    return oom(err);
  }
  *out = b.p;
  return GRPO_OK;
}
