#include "trainer/tensorboard.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

uint32_t trainer_crc32c(const void *data, size_t n) {
  static uint32_t table[256];
  static int ready;
  if (!ready) { /* reflected polynomial 0x82F63B78; a race only recomputes the same table */
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      table[i] = c;
    }
    ready = 1;
  }
  uint32_t crc = 0xFFFFFFFFu;
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

static uint32_t masked(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u; }

/* ---- a few protobuf encodings ---- */
typedef struct buf {
  unsigned char b[65536];
  size_t n;
} buf;

static void put_varint(buf *o, uint64_t v) {
  while (v >= 0x80 && o->n < sizeof o->b) {
    o->b[o->n++] = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  if (o->n < sizeof o->b) o->b[o->n++] = (unsigned char)v;
}

static void put_bytes(buf *o, const void *p, size_t n) {
  if (o->n + n > sizeof o->b) n = sizeof o->b - o->n;
  memcpy(o->b + o->n, p, n);
  o->n += n;
}

static void put_len_field(buf *o, int field, const void *p, size_t n) {
  put_varint(o, (uint64_t)field << 3 | 2);
  put_varint(o, n);
  put_bytes(o, p, n);
}

static void write_record(trainer_tb *tb, const buf *event) {
  uint64_t len = event->n;
  unsigned char hdr[8];
  for (int i = 0; i < 8; i++) hdr[i] = (unsigned char)(len >> (8 * i));
  uint32_t c1 = masked(trainer_crc32c(hdr, 8)), c2 = masked(trainer_crc32c(event->b, event->n));
  unsigned char c1b[4], c2b[4];
  for (int i = 0; i < 4; i++) c1b[i] = (unsigned char)(c1 >> (8 * i)), c2b[i] = (unsigned char)(c2 >> (8 * i));
  fwrite(hdr, 1, 8, tb->f);
  fwrite(c1b, 1, 4, tb->f);
  fwrite(event->b, 1, event->n, tb->f);
  fwrite(c2b, 1, 4, tb->f);
  fflush(tb->f);
}

static void event_header(buf *e, long step) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  double wall = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
  uint64_t bits;
  memcpy(&bits, &wall, 8);
  put_varint(e, 1 << 3 | 1); /* wall_time: double */
  for (int i = 0; i < 8; i++) e->b[e->n++] = (unsigned char)(bits >> (8 * i));
  put_varint(e, 2 << 3 | 0); /* step: int64 */
  put_varint(e, (uint64_t)step);
}

int trainer_tb_open(trainer_tb *tb, const char *dir, grpo_error *err) {
  tb->f = NULL;
  if (mkdir(dir, 0777) && errno != EEXIST)
    return GRPO_FAIL(err, GRPO_EIO, "cannot create %s: %s", dir, strerror(errno));
  char host[128] = "localhost", path[1200];
  gethostname(host, sizeof host - 1);
  snprintf(path, sizeof path, "%s/events.out.tfevents.%ld.%s", dir, (long)time(NULL), host);
  tb->f = fopen(path, "wb");
  if (!tb->f) return GRPO_FAIL(err, GRPO_EIO, "%s: cannot open for writing: %s", path, strerror(errno));
  buf e = {.n = 0};
  event_header(&e, 0);
  put_len_field(&e, 3, "brain.Event:2", 13); /* file_version */
  write_record(tb, &e);
  return GRPO_OK;
}

void trainer_tb_close(trainer_tb *tb) {
  if (tb->f) fclose(tb->f);
  tb->f = NULL;
}

void trainer_tb_scalars(trainer_tb *tb, long step, const char (*names)[64], const double *values, int n) {
  if (!tb->f) return;
  static buf e, summary, value;
  e.n = summary.n = 0;
  event_header(&e, step);
  for (int i = 0; i < n; i++) {
    if (!isfinite(values[i])) continue;
    value.n = 0;
    put_len_field(&value, 1, names[i], strlen(names[i])); /* tag */
    float f = (float)values[i];
    uint32_t bits;
    memcpy(&bits, &f, 4);
    put_varint(&value, 2 << 3 | 5); /* simple_value: float */
    for (int k = 0; k < 4; k++) value.b[value.n++] = (unsigned char)(bits >> (8 * k));
    put_len_field(&summary, 1, value.b, value.n); /* Summary.value */
  }
  put_len_field(&e, 5, summary.b, summary.n); /* Event.summary */
  write_record(tb, &e);
}
