/* reward/pgrpo: the ThreadWeaver critical-path parser and the acceleration
 * reward, against hand-counted token totals. Completions are built from token
 * lists so every count below is a count of list entries. */
#include <stdint.h>

#include "reward/pgrpo.h"
#include "test.h"

#define MAX_TOK 512

typedef struct toks {
  char text[8192];
  size_t len;
  int32_t off[MAX_TOK];
  int32_t n;
} toks;

/* Concatenates a NULL-terminated token list, recording each start offset. */
static void build(toks *t, const char *const *list) {
  t->len = 0;
  t->n = 0;
  for (int i = 0; list[i]; i++) {
    size_t k = strlen(list[i]);
    t->off[t->n++] = (int32_t)t->len;
    memcpy(t->text + t->len, list[i], k);
    t->len += k;
  }
  t->text[t->len] = '\0';
}

static reward_pgrpo_stats parse_toks(const char *const *list) {
  toks t;
  build(&t, list);
  reward_pgrpo_stats st;
  grpo_error err;
  int rc = reward_pgrpo_parse(t.text, t.len, t.off, t.n, &st, &err);
  CHECK_EQ_INT(rc, GRPO_OK);
  CHECK_EQ_INT(st.total, t.n); /* every token lands in exactly one region */
  return st;
}

static reward_pgrpo_options opts(const char *malformed) {
  reward_pgrpo_options o;
  reward_pgrpo_defaults(&o);
  if (malformed) CHECK_EQ_INT(reward_pgrpo_set(&o, "malformed", malformed, NULL), GRPO_OK);
  return o;
}

/* Two threads, all tags single tokens.
 * outside: a b <Parallel> | </Parallel> z                          = 5
 * block:   <Outlines> <Outline> "1: x" </Outline> <Outline> "2: y" </Outline>
 *          </Outlines> <Thread> </Thread> <Thread> </Thread>        = 12
 * threads: ["1: p" q] = 2, ["2: r"] = 1
 * L_total = 5 + 12 + 3 = 20, L_longest = 5 + 12 + 2 = 19, eta = 1/20. */
TEST(well_formed_two_threads) {
  const char *list[] = {"a",        "b",         "<Parallel>", "<Outlines>", "<Outline>",
                        "1: x",     "</Outline>", "<Outline>", "2: y",       "</Outline>",
                        "</Outlines>", "<Thread>", "1: p",      "q",          "</Thread>",
                        "<Thread>", "2: r",      "</Thread>",  "</Parallel>", "z",
                        NULL};
  reward_pgrpo_stats st = parse_toks(list);
  CHECK_EQ_INT(st.flags, 0);
  CHECK_EQ_INT(st.total, 20);
  CHECK_EQ_INT(st.longest, 19);
  CHECK_EQ_INT(st.non_block, 5);
  CHECK_EQ_INT(st.parallel_total, 15);
  CHECK_EQ_INT(st.blocks, 1);
  CHECK_EQ_INT(st.threads, 2);
  CHECK_EQ_INT(st.max_threads, 2);
  CHECK_EQ_INT(st.first_error, -1);
  reward_pgrpo_options o = opts(NULL);
  CHECK_NEAR(reward_pgrpo_acceleration(&o, &st, 1), 0.5 * (1.0 / 20.0), 1e-12);
  CHECK_NEAR(reward_pgrpo_acceleration(&o, &st, 0), 0.0, 0.0);
}

/* Big threads: the bonus saturates at clip in both forms.
 * outside: <Parallel> </Parallel> s = 3
 * block: <Outlines> <Outline> 1: </Outline> <Outline> 2: </Outline> <Outline> 3: </Outline>
 *        </Outlines> + 3 x (<Thread> </Thread>) = 11 + 6 = 17
 * threads: 1 + 30, 1 + 30, 1 + 10 (header token "k:" + words)
 * total = 3 + 17 + 73 = 93; longest = 3 + 17 + 31 = 51; eta = 42/93. */
TEST(saturates_at_clip) {
  const char *list[200];
  int n = 0;
  list[n++] = "<Parallel>";
  list[n++] = "<Outlines>";
  const char *ids[3] = {"1:", "2:", "3:"};
  for (int k = 0; k < 3; k++) {
    list[n++] = "<Outline>";
    list[n++] = ids[k];
    list[n++] = "</Outline>";
  }
  list[n++] = "</Outlines>";
  int words[3] = {30, 30, 10};
  for (int k = 0; k < 3; k++) {
    list[n++] = "<Thread>";
    list[n++] = ids[k];
    for (int w = 0; w < words[k]; w++) list[n++] = " w";
    list[n++] = "</Thread>";
  }
  list[n++] = "</Parallel>";
  list[n++] = "s";
  list[n] = NULL;
  reward_pgrpo_stats st = parse_toks(list);
  CHECK_EQ_INT(st.flags, 0);
  CHECK_EQ_INT(st.total, 93);
  CHECK_EQ_INT(st.longest, 51);
  reward_pgrpo_options o = opts(NULL);
  double eta = 42.0 / 93.0;
  CHECK(0.5 * eta > 0.2);
  CHECK_NEAR(reward_pgrpo_acceleration(&o, &st, 1), 0.2, 1e-12);
  CHECK_EQ_INT(reward_pgrpo_set(&o, "form", "code", NULL), GRPO_OK);
  CHECK_NEAR(reward_pgrpo_acceleration(&o, &st, 1), 0.5 * 0.2, 1e-12);
  CHECK_EQ_INT(reward_pgrpo_set(&o, "clip", "0.5", NULL), GRPO_OK);
  CHECK_NEAR(reward_pgrpo_acceleration(&o, &st, 1), 0.5 * eta, 1e-12); /* code form, eta < 0.5 */
  CHECK_EQ_INT(reward_pgrpo_set(&o, "form", "paper", NULL), GRPO_OK);
  CHECK_EQ_INT(reward_pgrpo_set(&o, "rho", "1", NULL), GRPO_OK);
  CHECK_NEAR(reward_pgrpo_acceleration(&o, &st, 1), eta, 1e-12);
}

/* The worked example of pgrpo.md §8.3 as a response, ids missing:
 * 1 2 3 P O o 4 /o o 5 /o /O 9 T 10 11 /T T 20 21 22 /T /P 30 31
 * outside 1 2 3 P /P 30 31 = 7; block O o 4 /o o 5 /o /O 9 T /T T /T = 13;
 * threads 2 and 3. total 25, longest 23. Outlines carry no "N:" ids, so
 * the block is flagged mismatch: zero by default, 0.5*2/25 when lenient. */
TEST(reference_example_lenient) {
  const char *list[] = {"1",  "2",  "3",  "<Parallel>", "<Outlines>", "<Outline>", "4",
                        "</Outline>", "<Outline>", "5", "</Outline>", "</Outlines>", "9",
                        "<Thread>", "10", "11", "</Thread>", "<Thread>", "20", "21", "22",
                        "</Thread>", "</Parallel>", "30", "31", NULL};
  reward_pgrpo_stats st = parse_toks(list);
  CHECK_EQ_INT(st.total, 25);
  CHECK_EQ_INT(st.longest, 23);
  CHECK_EQ_INT(st.non_block, 7);
  CHECK(st.flags & REWARD_PGRPO_MISMATCH);
  reward_pgrpo_options z = opts(NULL), l = opts("lenient");
  CHECK_NEAR(reward_pgrpo_acceleration(&z, &st, 1), 0.0, 0.0);
  CHECK_NEAR(reward_pgrpo_acceleration(&l, &st, 1), 0.5 * 2.0 / 25.0, 1e-12);
}

/* No structure: sequential, L_longest == L_total, bonus 0. Empty text: 0. */
TEST(sequential_and_empty) {
  const char *list[] = {"Let", " x", " =", " 2", ".", NULL};
  reward_pgrpo_stats st = parse_toks(list);
  CHECK_EQ_INT(st.total, 5);
  CHECK_EQ_INT(st.longest, 5);
  CHECK_EQ_INT(st.blocks, 0);
  CHECK_EQ_INT(st.flags, 0);
  reward_pgrpo_options o = opts(NULL);
  CHECK_NEAR(reward_pgrpo_acceleration(&o, &st, 1), 0.0, 0.0);
  reward_pgrpo_stats e;
  CHECK_EQ_INT(reward_pgrpo_parse("", 0, NULL, 0, &e, NULL), GRPO_OK);
  CHECK_EQ_INT(e.total, 0);
  CHECK_NEAR(reward_pgrpo_acceleration(&o, &e, 1), 0.0, 0.0);
  /* Angle brackets that are no tag are plain text. */
  const char *lt[] = {"a", "<", "b", "<Para", "llel", NULL};
  st = parse_toks(lt);
  CHECK_EQ_INT(st.flags, 0);
  CHECK_EQ_INT(st.longest, 5);
}

/* Tags split over ordinary tokens: a token counts where its first byte is.
 * "x" | "<Par" | "allel><Out" -> outside (3 with "y" = 4)
 * "lines><Outline>1" | ": a</Outline></Outlines>" | "<Thread>1: t" |
 * "</Thread></Parallel>" -> block (4); "t" -> thread (1). */
TEST(split_tags_count_by_first_byte) {
  const char *list[] = {"x", "<Par", "allel><Out", "lines><Outline>1", ": a</Outline></Outlines>",
                        "<Thread>1: t", "t", "</Thread></Parallel>", "y", NULL};
  reward_pgrpo_stats st = parse_toks(list);
  CHECK_EQ_INT(st.flags, 0);
  CHECK_EQ_INT(st.non_block, 4);
  CHECK_EQ_INT(st.parallel_total, 5);
  CHECK_EQ_INT(st.longest, 9);
  CHECK_EQ_INT(st.total, 9);
}

/* An empty EOS token at offset == len counts where the text ends. */
TEST(eos_token_at_end) {
  const char *list[] = {"<Parallel>", "<Outlines>", "<Outline>", "1:", "</Outline>", "</Outlines>",
                        "<Thread>", "1:", "w", "</Thread>", "</Parallel>", "", NULL};
  reward_pgrpo_stats st = parse_toks(list);
  CHECK_EQ_INT(st.flags, 0);
  CHECK_EQ_INT(st.non_block, 3); /* <Parallel> </Parallel> EOS */
  CHECK_EQ_INT(st.total, 12);
  CHECK_EQ_INT(st.longest, 12);
}

/* Two blocks add up; the byte-unit mode (no offsets) counts bytes.
 * Block A: threads "1:aaaa" (6) and "2:b" (3); block B: one thread "1:cc" (4). */
TEST(two_blocks_bytes) {
  const char *s =
      "S<Parallel><Outlines><Outline>1:</Outline><Outline>2:</Outline></Outlines>"
      "<Thread>1:aaaa</Thread><Thread>2:b</Thread></Parallel>M"
      "<Parallel><Outlines><Outline>1:</Outline></Outlines><Thread>1:cc</Thread></Parallel>E";
  size_t n = strlen(s);
  reward_pgrpo_stats st;
  CHECK_EQ_INT(reward_pgrpo_parse(s, n, NULL, 0, &st, NULL), GRPO_OK);
  CHECK_EQ_INT(st.flags, 0);
  CHECK_EQ_INT(st.blocks, 2);
  CHECK_EQ_INT(st.threads, 3);
  CHECK_EQ_INT(st.total, (int64_t)n);
  /* Critical path drops the shorter thread of block A (3 bytes); block B has one. */
  CHECK_EQ_INT(st.longest, (int64_t)n - 3);
  CHECK_EQ_INT(st.non_block, 3 + 2 * (10 + 11));
}

/* ---- malformed structure: counts as the reference parser, flags set ---- */

#define OUTL2 "<Outlines><Outline>1: a</Outline><Outline>2: b</Outline></Outlines>"

static reward_pgrpo_stats parse_str(const char *s) {
  reward_pgrpo_stats st;
  CHECK_EQ_INT(reward_pgrpo_parse(s, strlen(s), NULL, 0, &st, NULL), GRPO_OK);
  CHECK_EQ_INT(st.total, (int64_t)strlen(s));
  return st;
}

TEST(unclosed_block_is_flushed) {
  /* EOF after the threads: the block is closed at EOF. */
  const char *s = "<Parallel>" OUTL2 "<Thread>1: xx</Thread><Thread>2: y</Thread>";
  reward_pgrpo_stats st = parse_str(s);
  CHECK_EQ_INT(st.flags, REWARD_PGRPO_UNCLOSED_BLOCK);
  CHECK_EQ_INT(st.first_error, (int64_t)strlen(s));
  CHECK_EQ_INT(st.blocks, 1);
  CHECK_EQ_INT(st.longest, (int64_t)strlen(s) - 4); /* thread 2 content "2: y" is 4, thread 1 is 5 */
  reward_pgrpo_options z = opts(NULL), l = opts("lenient");
  CHECK_NEAR(reward_pgrpo_acceleration(&z, &st, 1), 0.0, 0.0);
  /* lenient: eta = 4/len */
  CHECK_NEAR(reward_pgrpo_acceleration(&l, &st, 1), 0.5 * 4.0 / strlen(s), 1e-12);
}

TEST(unclosed_thread_is_flushed) {
  const char *s = "<Parallel>" OUTL2 "<Thread>1: x</Thread><Thread>2: yyyyyy";
  reward_pgrpo_stats st = parse_str(s);
  CHECK_EQ_INT(st.flags, REWARD_PGRPO_UNCLOSED_THREAD | REWARD_PGRPO_UNCLOSED_BLOCK);
  CHECK_EQ_INT(st.threads, 2);
  CHECK_EQ_INT(st.longest, (int64_t)strlen(s) - 4); /* "1: x" is the shorter thread */
}

TEST(thread_without_outline) {
  reward_pgrpo_stats st = parse_str("<Parallel><Thread>1: x</Thread></Parallel>");
  CHECK(st.flags & REWARD_PGRPO_NO_OUTLINES);
  CHECK(st.flags & REWARD_PGRPO_MISMATCH);
  CHECK_EQ_INT(st.first_error, 10);
  CHECK_EQ_INT(st.threads, 1);
}

TEST(mismatched_numbers) {
  /* Thread ids out of order / not in the outline. */
  reward_pgrpo_stats st =
      parse_str("<Parallel>" OUTL2 "<Thread>1: a</Thread><Thread>3: c</Thread></Parallel>");
  CHECK_EQ_INT(st.flags, REWARD_PGRPO_MISMATCH);
  st = parse_str("<Parallel>" OUTL2 "<Thread>2: a</Thread><Thread>1: c</Thread></Parallel>");
  CHECK_EQ_INT(st.flags, REWARD_PGRPO_MISMATCH);
  /* Fewer threads than outlines. */
  st = parse_str("<Parallel>" OUTL2 "<Thread>1: a</Thread></Parallel>");
  CHECK_EQ_INT(st.flags, REWARD_PGRPO_MISMATCH);
  /* A thread with no "N:" header. */
  st = parse_str("<Parallel>" OUTL2 "<Thread>1: a</Thread><Thread>b</Thread></Parallel>");
  CHECK_EQ_INT(st.flags, REWARD_PGRPO_MISMATCH);
  /* Outline without an id. */
  st = parse_str("<Parallel><Outlines><Outline>plan</Outline></Outlines><Thread>1: a</Thread></Parallel>");
  CHECK(st.flags & REWARD_PGRPO_MISMATCH);
  /* Duplicate outline ids are merged (the rollout de-duplicates them), dotted
   * ids and whitespace around the header are fine: well-formed. */
  st = parse_str("<Parallel><Outlines><Outline>1.1 : a</Outline><Outline>1.1: again</Outline>"
                 "<Outline>\n2:b</Outline></Outlines>\n<Thread>\n1.1: a</Thread>\n<Thread> 2 :b"
                 "</Thread>\n</Parallel>");
  CHECK_EQ_INT(st.flags, 0);
  CHECK_EQ_INT(st.threads, 2);
}

TEST(nested_blocks) {
  /* <Parallel> in a block but outside a thread: plain text (blk_seq), flagged. */
  const char *s = "<Parallel>" OUTL2 "<Parallel><Thread>1: aa</Thread><Thread>2: b</Thread></Parallel>z";
  reward_pgrpo_stats st = parse_str(s);
  CHECK_EQ_INT(st.flags, REWARD_PGRPO_NESTED);
  CHECK_EQ_INT(st.blocks, 1);
  CHECK_EQ_INT(st.non_block, 10 + 11 + 1);
  CHECK_EQ_INT(st.longest, (int64_t)strlen(s) - 4);
  /* Nested structure inside a thread is text of that thread (reference),
   * including a </Parallel>, which does not close the block. */
  const char *t = "<Parallel>" OUTL2
                  "<Thread>1: <Parallel><Thread>q</Parallel></Thread><Thread>2: b</Thread></Parallel>";
  st = parse_str(t);
  CHECK_EQ_INT(st.flags, REWARD_PGRPO_TAG_IN_THREAD);
  CHECK_EQ_INT(st.blocks, 1);
  CHECK_EQ_INT(st.threads, 2);
  size_t thread1 = strlen("1: <Parallel><Thread>q</Parallel>"), thread2 = strlen("2: b");
  CHECK_EQ_INT(st.longest, (int64_t)(strlen(t) - thread2));
  CHECK(thread1 > thread2);
}

TEST(empty_blocks) {
  reward_pgrpo_stats st = parse_str("ab<Parallel></Parallel>cd");
  CHECK_EQ_INT(st.flags, REWARD_PGRPO_EMPTY_BLOCK);
  CHECK_EQ_INT(st.blocks, 1);
  CHECK_EQ_INT(st.threads, 0);
  CHECK_EQ_INT(st.longest, st.total);
  st = parse_str("<Parallel>" OUTL2 "</Parallel>");
  CHECK_EQ_INT(st.flags, REWARD_PGRPO_EMPTY_BLOCK);
  CHECK_EQ_INT(st.longest, st.total);
  /* An empty thread is a thread of length 0 (well-formed). */
  st = parse_str("<Parallel><Outlines><Outline>1:</Outline><Outline>2:</Outline></Outlines>"
                 "<Thread>1:xyz</Thread><Thread>2:</Thread></Parallel>");
  CHECK_EQ_INT(st.flags, 0);
  CHECK_EQ_INT(st.longest, st.total - 2);
}

TEST(stray_tags_and_order) {
  reward_pgrpo_stats st = parse_str("a</Parallel>b");
  CHECK_EQ_INT(st.flags, REWARD_PGRPO_STRAY_TAG);
  CHECK_EQ_INT(st.first_error, 1);
  CHECK_EQ_INT(st.blocks, 0);
  st = parse_str("<Thread>1: x</Thread>");
  CHECK_EQ_INT(st.flags, REWARD_PGRPO_STRAY_TAG);
  CHECK_EQ_INT(st.longest, st.total);
  st = parse_str("<Parallel>" OUTL2 "</Thread><Thread>1: a</Thread><Thread>2: b</Thread></Parallel>");
  CHECK_EQ_INT(st.flags, REWARD_PGRPO_STRAY_TAG);
  st = parse_str("<Parallel>" OUTL2 "<Thread>1: a</Thread><Outlines></Outlines><Thread>2: b</Thread></Parallel>");
  CHECK_EQ_INT(st.flags, REWARD_PGRPO_ORDER);
  st = parse_str("<Parallel><Outlines><Outline>1: a</Outline><Thread>1: a</Thread></Parallel>");
  CHECK_EQ_INT(st.flags, REWARD_PGRPO_ORDER);
  st = parse_str("<Parallel><Outline>1: a</Outline><Thread>1: a</Thread></Parallel>");
  CHECK(st.flags & REWARD_PGRPO_STRAY_TAG);
  char buf[128];
  CHECK_STR(reward_pgrpo_flags_str(REWARD_PGRPO_NESTED | REWARD_PGRPO_MISMATCH, buf, sizeof buf),
            "nested,mismatch");
  CHECK_STR(reward_pgrpo_flags_str(0, buf, sizeof buf), "ok");
}

TEST(too_many_outlines) {
  char s[8192];
  size_t n = (size_t)snprintf(s, sizeof s, "<Parallel><Outlines>");
  for (int i = 1; i <= REWARD_PGRPO_MAX_OUTLINES + 1; i++)
    n += (size_t)snprintf(s + n, sizeof s - n, "<Outline>%d:</Outline>", i);
  n += (size_t)snprintf(s + n, sizeof s - n, "</Outlines><Thread>1:</Thread></Parallel>");
  reward_pgrpo_stats st = parse_str(s);
  CHECK(st.flags & REWARD_PGRPO_TOO_MANY);
}

/* 1 MB of outlines, duplicate and distinct ids: linear, bounded id table. */
TEST(large_inputs) {
  size_t n = 1 << 20;
  char *s = malloc(n + 64);
  CHECK(s != NULL);
  if (!s) return;
  for (int distinct = 0; distinct < 2; distinct++) {
    size_t k = (size_t)snprintf(s, 64, "<Parallel><Outlines>");
    for (int i = 0; k + 40 <= n; i++)
      k += (size_t)snprintf(s + k, 40, "<Outline>%d:</Outline>", distinct ? i : 7);
    k += (size_t)snprintf(s + k, 64, "</Outlines><Thread>7:</Thread></Parallel>");
    reward_pgrpo_stats st;
    CHECK_EQ_INT(reward_pgrpo_parse(s, k, NULL, 0, &st, NULL), GRPO_OK);
    CHECK_EQ_INT(st.total, (int64_t)k);
    CHECK_EQ_INT(st.flags, distinct ? REWARD_PGRPO_TOO_MANY | REWARD_PGRPO_MISMATCH : 0);
  }
  free(s);
}

TEST(bad_offsets_are_errors) {
  const char *s = "abcd";
  int32_t dec[3] = {0, 2, 1}, out[2] = {0, 5}, neg[2] = {-1, 0};
  reward_pgrpo_stats st;
  grpo_error err;
  CHECK_EQ_INT(reward_pgrpo_parse(s, 4, dec, 3, &st, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "token_offsets[2] = 1 is before token_offsets[1] = 2") != NULL);
  CHECK_EQ_INT(reward_pgrpo_parse(s, 4, out, 2, &st, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "token_offsets[1] = 5") != NULL);
  CHECK_EQ_INT(reward_pgrpo_parse(s, 4, neg, 2, &st, &err), GRPO_EINVAL);
  CHECK_EQ_INT(reward_pgrpo_parse(s, 4, dec, -1, &st, &err), GRPO_EINVAL);
  /* Offsets that do not start at 0: leading bytes belong to no token. */
  int32_t late[2] = {2, 3};
  CHECK_EQ_INT(reward_pgrpo_parse(s, 4, late, 2, &st, &err), GRPO_OK);
  CHECK_EQ_INT(st.total, 2);
}

TEST(options) {
  reward_pgrpo_options o;
  reward_pgrpo_defaults(&o);
  CHECK_NEAR(o.rho, 0.5, 0.0);
  CHECK_NEAR(o.clip, 0.2, 0.0);
  grpo_error err;
  CHECK_EQ_INT(reward_pgrpo_set(&o, "rho", "-1", &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "'rho'") != NULL);
  CHECK_EQ_INT(reward_pgrpo_set(&o, "clip", "nan", &err), GRPO_EINVAL);
  CHECK_EQ_INT(reward_pgrpo_set(&o, "form", "fast", &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "paper|code") != NULL);
  CHECK_EQ_INT(reward_pgrpo_set(&o, "speed", "1", &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "unknown option 'speed'") != NULL);
}

int main(void) {
  RUN(well_formed_two_threads);
  RUN(saturates_at_clip);
  RUN(reference_example_lenient);
  RUN(sequential_and_empty);
  RUN(split_tags_count_by_first_byte);
  RUN(eos_token_at_end);
  RUN(two_blocks_bytes);
  RUN(unclosed_block_is_flushed);
  RUN(unclosed_thread_is_flushed);
  RUN(thread_without_outline);
  RUN(mismatched_numbers);
  RUN(nested_blocks);
  RUN(empty_blocks);
  RUN(stray_tags_and_order);
  RUN(too_many_outlines);
  RUN(large_inputs);
  RUN(bad_offsets_are_errors);
  RUN(options);
  return test_summary();
}
