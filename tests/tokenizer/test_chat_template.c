/* Chat templates against transformers apply_chat_template (fixtures from
 * tools/make_tokenizer_fixtures.py, template sources from PyPI trl and the
 * Qwen2 tokenizer_config.json). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/chat_template.h"
#include "test.h"

static cJSON *load_fixture(void) {
  FILE *f = fopen(test_path("tests/tokenizer/fixtures/chat.json"), "rb");
  if (!f) return NULL;
  static char buf[1 << 18];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  return cJSON_Parse(buf);
}

TEST(detects_templates_by_content) {
  cJSON *fx = load_fixture();
  CHECK(fx != NULL);
  if (!fx) return;
  int n = 0;
  for (cJSON *e = cJSON_GetObjectItem(fx, "templates")->child; e; e = e->next, n++) {
    model_chat_kind want, got;
    grpo_error err = {0};
    CHECK(model_chat_kind_from_name(e->string, &want, &err) == GRPO_OK);
    CHECK(model_chat_detect(e->valuestring, &got, &err) == GRPO_OK);
    CHECK_MSG(got == want, "%s detected as %s", e->string, model_chat_kind_name(got));
  }
  CHECK_EQ_INT(n, 5);
  model_chat_kind k;
  grpo_error err = {0};
  CHECK(model_chat_detect("{{ messages }}", &k, &err) == GRPO_EUNSUPPORTED);
  CHECK(model_chat_kind_from_name("jinja", &k, &err) == GRPO_EINVAL);
  cJSON_Delete(fx);
}

TEST(matches_apply_chat_template) {
  cJSON *fx = load_fixture();
  CHECK(fx != NULL);
  if (!fx) return;
  cJSON *convs = cJSON_GetObjectItem(fx, "conversations");
  int ncases = 0;
  for (cJSON *c = cJSON_GetObjectItem(fx, "cases")->child; c; c = c->next, ncases++) {
    model_chat_template t = {0};
    grpo_error err = {0};
    const char *name = cJSON_GetObjectItem(c, "template")->valuestring;
    CHECK(model_chat_kind_from_name(name, &t.kind, &err) == GRPO_OK);
    t.enable_thinking = cJSON_IsTrue(cJSON_GetObjectItem(c, "enable_thinking"));
    int agp = cJSON_IsTrue(cJSON_GetObjectItem(c, "add_generation_prompt"));
    cJSON *conv = cJSON_GetArrayItem(convs, cJSON_GetObjectItem(c, "conversation")->valueint);
    model_chat_message msgs[8];
    size_t n = 0;
    for (cJSON *m = conv->child; m && n < 8; m = m->next, n++) {
      msgs[n].role = cJSON_GetObjectItem(m, "role")->valuestring;
      msgs[n].content = cJSON_GetObjectItem(m, "content")->valuestring;
    }
    model_text out = {0};
    CHECK(model_chat_render(&t, msgs, n, agp, &out, &err) == GRPO_OK);
    const char *want = cJSON_GetObjectItem(c, "expected")->valuestring;
    CHECK_MSG(out.s && strcmp(out.s, want) == 0, "%s conversation %d agp=%d thinking=%d:\n got: %s\nwant: %s", name,
              cJSON_GetObjectItem(c, "conversation")->valueint, agp, t.enable_thinking, out.s, want);
    model_text_free(&out);
  }
  CHECK(ncases >= 40);
  cJSON_Delete(fx);
}

TEST(prompt_template_overrides) {
  model_chat_template t = {.kind = MODEL_CHAT_QWEN25, .prompt_template = "Q: {question}\nA ({question}):"};
  model_text out = {0};
  grpo_error err = {0};
  CHECK(model_chat_prompt(&t, "1+1?", &out, &err) == GRPO_OK);
  CHECK_STR(out.s, "Q: 1+1?\nA (1+1?):");
  model_text_free(&out);
  t.prompt_template = NULL;
  t.system = "Be brief.";
  CHECK(model_chat_prompt(&t, "1+1?", &out, &err) == GRPO_OK);
  CHECK_STR(out.s, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n1+1?<|im_end|>\n"
                   "<|im_start|>assistant\n");
  model_text_free(&out);
  t.kind = MODEL_CHAT_QWEN3;
  t.system = NULL;
  t.enable_thinking = 0;
  CHECK(model_chat_prompt(&t, "hi", &out, &err) == GRPO_OK);
  CHECK_STR(out.s, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  model_text_free(&out);
  /* Llama 3 trims contents like Jinja's trim (Python whitespace incl. U+3000) */
  t.kind = MODEL_CHAT_LLAMA3;
  model_chat_message m = {"user", "\xE3\x80\x80 x \n"};
  CHECK(model_chat_render(&t, &m, 1, 0, &out, &err) == GRPO_OK);
  CHECK_STR(out.s, "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nx<|eot_id|>");
  model_text_free(&out);
  model_chat_message bad = {"user", NULL};
  CHECK(model_chat_render(&t, &bad, 1, 0, &out, &err) == GRPO_EINVAL);
  model_text_free(&out);
}

TEST(select_by_name_or_tokenizer) {
  model_tokenizer *b = NULL;
  grpo_error err = {0};
  model_chat_kind k = MODEL_CHAT_RAW;
  CHECK(model_tokenizer_byte_level(&b, &err) == GRPO_OK);
  CHECK(model_chat_select(b, "qwen3", &k, &err) == GRPO_OK && k == MODEL_CHAT_QWEN3);
  CHECK(model_chat_select(b, "auto", &k, &err) == GRPO_ENOTFOUND); /* no chat_template */
  CHECK(strstr(err.msg, "prompt_template") != NULL);
  CHECK(model_chat_select(b, NULL, &k, &err) == GRPO_ENOTFOUND);
  model_tokenizer_free(b);
}

int main(void) {
  RUN(detects_templates_by_content);
  RUN(matches_apply_chat_template);
  RUN(prompt_template_overrides);
  RUN(select_by_name_or_tokenizer);
  return test_summary();
}
