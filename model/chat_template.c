/* Chat templates: each kind re-states its Jinja template's logic in C. */
#include "model/chat_template.h"

#include <string.h>

#include "model/tokenizer_impl.h"

static const char QWEN2_SYSTEM[] = "You are a helpful assistant.";
static const char QWEN25_SYSTEM[] = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

static const struct {
  const char *name;
  model_chat_kind kind;
} NAMES[] = {
    {"raw", MODEL_CHAT_RAW},           {"chatml", MODEL_CHAT_CHATML},
    {"qwen2", MODEL_CHAT_QWEN2},       {"qwen2-base", MODEL_CHAT_QWEN2_BASE},
    {"qwen2.5", MODEL_CHAT_QWEN25},    {"qwen3", MODEL_CHAT_QWEN3},
    {"llama3", MODEL_CHAT_LLAMA3},
};
#define N_NAMES (sizeof NAMES / sizeof NAMES[0])

int model_chat_kind_from_name(const char *name, model_chat_kind *out, grpo_error *err) {
  for (size_t i = 0; i < N_NAMES; i++)
    if (strcmp(name, NAMES[i].name) == 0) {
      *out = NAMES[i].kind;
      return GRPO_OK;
    }
  return GRPO_FAIL(err, GRPO_EINVAL,
                   "unknown chat template \"%s\" (raw, chatml, qwen2, qwen2-base, qwen2.5, qwen3, llama3)",
                   name);
}

const char *model_chat_kind_name(model_chat_kind kind) {
  for (size_t i = 0; i < N_NAMES; i++)
    if (NAMES[i].kind == kind) return NAMES[i].name;
  return "?";
}

int model_chat_detect(const char *j, model_chat_kind *out, grpo_error *err) {
  if (strstr(j, "<|start_header_id|>")) *out = MODEL_CHAT_LLAMA3;
  else if (!strstr(j, "<|im_start|>"))
    return GRPO_FAIL(err, GRPO_EUNSUPPORTED,
                     "chat_template is not a supported format (ChatML/Qwen, Llama 3); set a template "
                     "name or a prompt_template");
  else if (strstr(j, "enable_thinking") || strstr(j, "reasoning_content")) *out = MODEL_CHAT_QWEN3;
  else if (strstr(j, QWEN25_SYSTEM)) *out = MODEL_CHAT_QWEN25;
  else if (strstr(j, QWEN2_SYSTEM))
    *out = strstr(j, "set system_message") ? MODEL_CHAT_QWEN2_BASE : MODEL_CHAT_QWEN2;
  else *out = MODEL_CHAT_CHATML;
  return GRPO_OK;
}

int model_chat_select(const model_tokenizer *tok, const char *name, model_chat_kind *out,
                      grpo_error *err) {
  if (name && strcmp(name, "auto") != 0) return model_chat_kind_from_name(name, out, err);
  const char *j = tok ? model_tokenizer_chat_template(tok) : NULL;
  if (!j)
    return GRPO_FAIL(err, GRPO_ENOTFOUND,
                     "the tokenizer has no chat_template in tokenizer_config.json; set a template "
                     "name or a prompt_template");
  return model_chat_detect(j, out, err);
}

/* ---- helpers ------------------------------------------------------------- */

typedef struct str {
  const char *s;
  size_t n;
} str;

static str S(const char *s) { return (str){s ? s : "", s ? strlen(s) : 0}; }

static int is_py_space(const unsigned char *s, size_t n, size_t *len) {
  /* Python str.isspace(): what Jinja's trim strips */
  unsigned c = s[0];
  *len = 1;
  if (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F)) return 1;
  if (c < 0x80) return 0;
  utf8proc_int32_t cp;
  utf8proc_ssize_t k = utf8proc_iterate(s, (utf8proc_ssize_t)n, &cp);
  if (k <= 0) return 0;
  *len = (size_t)k;
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
         cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

static str trim(str x) {
  const unsigned char *s = (const unsigned char *)x.s;
  size_t a = 0, b = x.n, k;
  while (a < b && is_py_space(s + a, b - a, &k)) a += k;
  while (b > a) { /* step back one code point */
    size_t p = b - 1;
    while (p > a && (s[p] & 0xC0) == 0x80) p--;
    if (!is_py_space(s + p, b - p, &k) || p + k != b) break;
    b = p;
  }
  return (str){x.s + a, b - a};
}

static str lstrip_nl(str x) {
  while (x.n && x.s[0] == '\n') x.s++, x.n--;
  return x;
}
static str rstrip_nl(str x) {
  while (x.n && x.s[x.n - 1] == '\n') x.n--;
  return x;
}

static const char *find_n(str hay, const char *needle) {
  size_t m = strlen(needle);
  for (size_t i = 0; i + m <= hay.n; i++)
    if (memcmp(hay.s + i, needle, m) == 0) return hay.s + i;
  return NULL;
}
static const char *rfind_n(str hay, const char *needle) {
  size_t m = strlen(needle);
  for (size_t i = hay.n + 1; i-- > 0;)
    if (i + m <= hay.n && memcmp(hay.s + i, needle, m) == 0) return hay.s + i;
  return NULL;
}

typedef struct out_ctx {
  model_text *t;
  int fail;
} out_ctx;

static void put(out_ctx *o, str x) {
  if (!o->fail && tok_text_append(o->t, x.s, x.n)) o->fail = 1;
}
static void puts_(out_ctx *o, const char *s) { put(o, S(s)); }

static int is_role(const model_chat_message *m, const char *r) { return m->role && strcmp(m->role, r) == 0; }

/* ChatML turn */
static void turn(out_ctx *o, const char *role, str content) {
  puts_(o, "<|im_start|>");
  puts_(o, role);
  puts_(o, "\n");
  put(o, content);
  puts_(o, "<|im_end|>\n");
}

/* Qwen2.5 / Qwen3 tool messages: consecutive ones share one user turn. */
static void tool_msg(out_ctx *o, const model_chat_message *m, size_t i, size_t n) {
  if (i == 0 || !is_role(&m[i - 1], "tool")) puts_(o, "<|im_start|>user");
  puts_(o, "\n<tool_response>\n");
  puts_(o, m[i].content);
  puts_(o, "\n</tool_response>");
  if (i + 1 == n || !is_role(&m[i + 1], "tool")) puts_(o, "<|im_end|>\n");
}

static void render_qwen3(out_ctx *o, const model_chat_message *m, size_t n) {
  if (n && is_role(&m[0], "system")) turn(o, "system", S(m[0].content));
  size_t last_query = n ? n - 1 : 0;
  for (size_t k = n; k-- > 0;) {
    str c = S(m[k].content);
    int is_resp = c.n >= 15 + 16 && memcmp(c.s, "<tool_response>", 15) == 0 &&
                  memcmp(c.s + c.n - 16, "</tool_response>", 16) == 0;
    if (is_role(&m[k], "user") && !is_resp) {
      last_query = k;
      break;
    }
  }
  for (size_t i = 0; i < n; i++) {
    str content = S(m[i].content);
    if (is_role(&m[i], "user") || (is_role(&m[i], "system") && i > 0)) {
      turn(o, m[i].role, content);
    } else if (is_role(&m[i], "assistant")) {
      str reasoning = {"", 0};
      const char *end = find_n(content, "</think>");
      if (end) {
        str before = rstrip_nl((str){content.s, (size_t)(end - content.s)});
        const char *open = rfind_n(before, "<think>");
        if (open) before = (str){open + 7, (size_t)(before.s + before.n - open - 7)};
        reasoning = lstrip_nl(before);
        const char *last = rfind_n(content, "</think>");
        content = lstrip_nl((str){last + 8, (size_t)(content.s + content.n - last - 8)});
      }
      puts_(o, "<|im_start|>assistant\n");
      if (i > last_query && (i + 1 == n || reasoning.n)) {
        puts_(o, "<think>\n");
        put(o, rstrip_nl(lstrip_nl(reasoning)));
        puts_(o, "\n</think>\n\n");
        put(o, lstrip_nl(content));
      } else {
        put(o, content);
      }
      puts_(o, "<|im_end|>\n");
    } else if (is_role(&m[i], "tool")) {
      tool_msg(o, m, i, n);
    }
  }
}

int model_chat_render(const model_chat_template *t, const model_chat_message *m, size_t n,
                      int add_generation_prompt, model_text *out, grpo_error *err) {
  for (size_t i = 0; i < n; i++)
    if (!m[i].role || !m[i].content)
      return GRPO_FAIL(err, GRPO_EINVAL, "chat message %zu has no %s", i, m[i].role ? "content" : "role");
  out_ctx o = {out, 0};
  int gen = add_generation_prompt;
  switch (t->kind) {
  case MODEL_CHAT_RAW:
    for (size_t i = 0; i < n; i++) puts_(&o, m[i].content);
    gen = 0;
    break;
  case MODEL_CHAT_CHATML:
  case MODEL_CHAT_QWEN2:
    for (size_t i = 0; i < n; i++) {
      if (i == 0 && t->kind == MODEL_CHAT_QWEN2 && !is_role(&m[0], "system")) turn(&o, "system", S(QWEN2_SYSTEM));
      turn(&o, m[i].role, S(m[i].content));
    }
    break;
  case MODEL_CHAT_QWEN2_BASE:
    turn(&o, "system", S(n && is_role(&m[0], "system") ? m[0].content : QWEN2_SYSTEM));
    for (size_t i = 0; i < n; i++) {
      if (is_role(&m[i], "user")) {
        turn(&o, "user", S(m[i].content));
        puts_(&o, "<|im_start|>assistant\n");
      } else if (is_role(&m[i], "assistant")) {
        puts_(&o, m[i].content);
        puts_(&o, "<|im_end|>\n");
      }
    }
    gen = 0; /* this template has no generation-prompt switch */
    break;
  case MODEL_CHAT_QWEN25:
    turn(&o, "system", S(n && is_role(&m[0], "system") ? m[0].content : QWEN25_SYSTEM));
    for (size_t i = 0; i < n; i++) {
      if (is_role(&m[i], "user") || is_role(&m[i], "assistant") || (is_role(&m[i], "system") && i > 0))
        turn(&o, m[i].role, S(m[i].content));
      else if (is_role(&m[i], "tool"))
        tool_msg(&o, m, i, n);
    }
    break;
  case MODEL_CHAT_QWEN3:
    render_qwen3(&o, m, n);
    break;
  case MODEL_CHAT_LLAMA3:
    for (size_t i = 0; i < n; i++) {
      if (i == 0) puts_(&o, t->bos ? t->bos : "<|begin_of_text|>");
      puts_(&o, "<|start_header_id|>");
      puts_(&o, m[i].role);
      puts_(&o, "<|end_header_id|>\n\n");
      put(&o, trim(S(m[i].content)));
      puts_(&o, "<|eot_id|>");
    }
    if (gen) puts_(&o, "<|start_header_id|>assistant<|end_header_id|>\n\n");
    gen = 0;
    break;
  default:
    return GRPO_FAIL(err, GRPO_EINVAL, "chat template kind %d is not valid", (int)t->kind);
  }
  if (gen) {
    puts_(&o, "<|im_start|>assistant\n");
    if (t->kind == MODEL_CHAT_QWEN3 && !t->enable_thinking) puts_(&o, "<think>\n\n</think>\n\n");
  }
  if (o.fail) return GRPO_FAIL(err, GRPO_ENOMEM, "chat template: out of memory");
  return GRPO_OK;
}

int model_chat_prompt(const model_chat_template *t, const char *question, model_text *out,
                      grpo_error *err) {
  if (t->prompt_template) {
    static const char KEY[] = "{question}";
    const char *p = t->prompt_template;
    for (;;) {
      const char *q = strstr(p, KEY);
      size_t n = q ? (size_t)(q - p) : strlen(p);
      if (tok_text_append(out, p, n)) return GRPO_FAIL(err, GRPO_ENOMEM, "prompt_template: out of memory");
      if (!q) break;
      if (tok_text_append(out, question, strlen(question)))
        return GRPO_FAIL(err, GRPO_ENOMEM, "prompt_template: out of memory");
      p = q + sizeof KEY - 1;
    }
    return GRPO_OK;
  }
  model_chat_message msgs[2] = {{"system", t->system}, {"user", question}};
  return t->system ? model_chat_render(t, msgs, 2, 1, out, err) : model_chat_render(t, msgs + 1, 1, 1, out, err);
}
