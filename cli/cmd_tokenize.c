#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "model/chat_template.h"
#include "model/tokenizer.h"

static const char USAGE[] =
    "usage: grpo tokenize --tokenizer DIR|FILE|byte [--decode] [--chat] [--template NAME]\n"
    "                     [--no-thinking] [--skip-special]\n"
    "\n"
    "Encodes stdin to token ids (one line of space-separated ids), or with\n"
    "--decode reads whitespace-separated ids from stdin and prints the text.\n"
    "\n"
    "  --tokenizer P    tokenizer.json, or a directory with tokenizer.json or\n"
    "                   vocab.json + merges.txt; 'byte' is the built-in byte tokenizer\n"
    "  --decode         ids -> text (invalid UTF-8 becomes U+FFFD)\n"
    "  --skip-special   with --decode, drop special tokens\n"
    "  --chat           encode stdin as one user message with the chat template\n"
    "                   (from tokenizer_config.json, or --template) and the\n"
    "                   generation prompt\n"
    "  --template NAME  raw, chatml, qwen2, qwen2-base, qwen2.5, qwen3, llama3\n"
    "  --no-thinking    Qwen3: enable_thinking=false\n";

static char *read_all(FILE *f, size_t *n) {
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  if (!buf) return NULL;
  size_t k;
  while ((k = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += k;
    if (cap - len - 1 == 0) {
      char *p = realloc(buf, cap * 2);
      if (!p) {
        free(buf);
        return NULL;
      }
      buf = p;
      cap *= 2;
    }
  }
  buf[len] = '\0';
  *n = len;
  return buf;
}

int cmd_tokenize(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) {
    fputs(USAGE, stdout);
    return 0;
  }
  const char *path = NULL, *tmpl_name = NULL;
  int decode = 0, chat = 0, skip = 0, thinking = 1;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--tokenizer") == 0 && i + 1 < argc) path = argv[++i];
    else if (strcmp(argv[i], "--template") == 0 && i + 1 < argc) tmpl_name = argv[++i];
    else if (strcmp(argv[i], "--decode") == 0) decode = 1;
    else if (strcmp(argv[i], "--chat") == 0) chat = 1;
    else if (strcmp(argv[i], "--skip-special") == 0) skip = 1;
    else if (strcmp(argv[i], "--no-thinking") == 0) thinking = 0;
    else {
      fprintf(stderr, "grpo tokenize: unknown or incomplete option '%s'\n\n%s", argv[i], USAGE);
      return 2;
    }
  }
  if (!path) {
    fprintf(stderr, "grpo tokenize: --tokenizer is required\n\n%s", USAGE);
    return 2;
  }
  grpo_error err = {0};
  model_tokenizer *tok = NULL;
  int rc = strcmp(path, "byte") == 0 ? model_tokenizer_byte_level(&tok, &err)
                                     : model_tokenizer_load(path, &tok, &err);
  if (rc) {
    fprintf(stderr, "grpo tokenize: %s\n", err.msg);
    return 1;
  }
  size_t n;
  char *in = read_all(stdin, &n);
  if (!in) {
    fprintf(stderr, "grpo tokenize: out of memory reading stdin\n");
    model_tokenizer_free(tok);
    return 1;
  }
  model_ids ids = {0};
  model_text text = {0};
  if (decode) {
    char *p = in, *end;
    while (*p) {
      while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ',') p++;
      if (!*p) break;
      long v = strtol(p, &end, 10);
      if (end == p || v < 0 || v > 0x7FFFFFFF) {
        fprintf(stderr, "grpo tokenize: stdin byte %zu: expected a token id\n", (size_t)(p - in));
        rc = 1;
        break;
      }
      if (ids.n == ids.cap) {
        size_t cap = ids.cap ? ids.cap * 2 : 256;
        int32_t *q = realloc(ids.ids, cap * sizeof *q);
        if (!q) {
          rc = 1;
          break;
        }
        ids.ids = q;
        ids.cap = cap;
      }
      ids.ids[ids.n++] = (int32_t)v;
      p = end;
    }
    if (!rc && (rc = model_tokenizer_decode(tok, ids.ids, ids.n, skip, &text, &err)) != 0)
      fprintf(stderr, "grpo tokenize: %s\n", err.msg);
    if (!rc) fwrite(text.s ? text.s : "", 1, text.n, stdout);
  } else {
    const char *src = in;
    size_t len = n;
    if (chat) {
      model_chat_template t = {.kind = MODEL_CHAT_CHATML, .enable_thinking = thinking};
      if (tmpl_name) rc = model_chat_kind_from_name(tmpl_name, &t.kind, &err);
      else if (model_tokenizer_chat_template(tok))
        rc = model_chat_detect(model_tokenizer_chat_template(tok), &t.kind, &err);
      if (!rc) rc = model_chat_prompt(&t, in, &text, &err);
      if (rc) fprintf(stderr, "grpo tokenize: %s\n", err.msg);
      src = text.s;
      len = text.n;
    }
    if (!rc && (rc = model_tokenizer_encode(tok, src, len, &ids, &err)) != 0)
      fprintf(stderr, "grpo tokenize: %s\n", err.msg);
    for (size_t i = 0; !rc && i < ids.n; i++) printf(i ? " %d" : "%d", (int)ids.ids[i]);
    if (!rc) putchar('\n');
  }
  model_ids_free(&ids);
  model_text_free(&text);
  free(in);
  model_tokenizer_free(tok);
  return rc ? 1 : 0;
}
