/* TensorBoard event files: CRC-32C known answer, and every record of a
 * written file has the length and masked CRCs a TFRecord reader checks.
 * (tensorboard's own EventAccumulator was used to check these files by hand;
 * CI has no Python.) */
#define _GNU_SOURCE /* memmem */
#include <dirent.h>
#include <unistd.h>

#include "test.h"
#include "trainer/tensorboard.h"

static uint32_t masked(uint32_t c) { return ((c >> 15) | (c << 17)) + 0xA282EAD8u; }

TEST(crc32c_known_answer) {
  CHECK_EQ_INT(trainer_crc32c("123456789", 9), 0xE3069283u);
  CHECK_EQ_INT(trainer_crc32c("", 0), 0);
}

TEST(records_are_framed_and_checksummed) {
  char dir[128];
  snprintf(dir, sizeof dir, "/tmp/grpo_tb_test_%d", (int)getpid());
  trainer_tb tb;
  CHECK_EQ_INT(trainer_tb_open(&tb, dir, NULL), GRPO_OK);
  char names[2][64] = {"reward", "rewards/math/mean"};
  double values[2] = {0.5, 0.25};
  for (long s = 1; s <= 3; s++) trainer_tb_scalars(&tb, s, (const char(*)[64])names, values, 2);
  trainer_tb_close(&tb);
  DIR *d = opendir(dir);
  struct dirent *e;
  char path[400] = "";
  while (d && (e = readdir(d)))
    if (strncmp(e->d_name, "events.out.tfevents.", 20) == 0) snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
  if (d) closedir(d);
  FILE *f = fopen(path, "rb");
  CHECK(f != NULL);
  if (!f) return;
  int records = 0;
  unsigned char hdr[12], data[4096], tail[4];
  while (fread(hdr, 1, 12, f) == 12) {
    uint64_t len = 0;
    uint32_t c1 = 0, c2 = 0;
    for (int i = 0; i < 8; i++) len |= (uint64_t)hdr[i] << (8 * i);
    for (int i = 0; i < 4; i++) c1 |= (uint32_t)hdr[8 + i] << (8 * i);
    CHECK_EQ_INT(c1, masked(trainer_crc32c(hdr, 8)));
    CHECK(len < sizeof data);
    if (len >= sizeof data || fread(data, 1, len, f) != len || fread(tail, 1, 4, f) != 4) break;
    for (int i = 0; i < 4; i++) c2 |= (uint32_t)tail[i] << (8 * i);
    CHECK_EQ_INT(c2, masked(trainer_crc32c(data, len)));
    if (records > 0) CHECK(memmem(data, len, "rewards/math/mean", 17) != NULL);
    records++;
  }
  fclose(f);
  CHECK_EQ_INT(records, 4); /* the file-version event and 3 steps */
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  CHECK(system(cmd) == 0);
}

int main(void) {
  RUN(crc32c_known_answer);
  RUN(records_are_framed_and_checksummed);
  return test_summary();
}
