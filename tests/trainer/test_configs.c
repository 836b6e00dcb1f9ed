/* Every shipped experiment file (configs/NAME.yaml) validates against the
 * schema, and an override on top of each one is accepted. */
#include <dirent.h>

#include "core/config.h"
#include "test.h"

TEST(shipped_configs_validate) {
  DIR *d = opendir(test_path("configs"));
  CHECK(d != NULL);
  if (!d) return;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0) continue;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", test_path("configs"), e->d_name);
    grpo_config cfg;
    grpo_error err = {0};
    const char *over[1] = {"trainer.max_steps=1"};
    int rc = grpo_config_load(&cfg, path, 1, over, &err);
    CHECK_MSG(rc == GRPO_OK, "%s: %s", e->d_name, err.msg);
    if (!rc) {
      CHECK(cfg.trainer.max_steps == 1);
      grpo_config_free(&cfg);
    }
    n++;
  }
  closedir(d);
  CHECK(n >= 2);
}

int main(void) {
  RUN(shipped_configs_validate);
  return test_summary();
}
