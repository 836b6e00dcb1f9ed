/* A stand-in device for tests without a GPU: the CPU backend's ops over
 * memory of its own, reporting kind GRPO_DEVICE_CUDA, so every host/device
 * transfer of the code under test goes through its copy ops. Allocations are
 * poisoned with 0xFF bytes (NaN floats): unwritten device memory is loud.
 * Copies are counted (fake_device_h2d / fake_device_d2h). Header-only, for
 * test programs. (tests/gpu/fake_bf16.h is the bf16 counterpart.) */
#ifndef GRPO_TESTS_FAKE_DEVICE_H
#define GRPO_TESTS_FAKE_DEVICE_H

#include <stdlib.h>
#include <string.h>

#include "core/backend.h"

static long fake_device_h2d, fake_device_d2h;

static int fake_device_alloc(grpo_backend *be, size_t bytes, void **out, grpo_error *err) {
  (void)be;
  *out = NULL;
  if (!bytes) return GRPO_OK;
  void *p = aligned_alloc(256, (bytes + 255) / 256 * 256);
  if (!p) return GRPO_FAIL(err, GRPO_ENOMEM, "fake device: out of memory");
  memset(p, 0xFF, bytes);
  *out = p;
  return GRPO_OK;
}
static void fake_device_free(grpo_backend *be, void *p) {
  (void)be;
  free(p);
}
static int fake_device_copy_h2d(grpo_backend *be, void *d, const void *s, size_t n, grpo_error *err) {
  (void)be, (void)err;
  fake_device_h2d++;
  if (n) memcpy(d, s, n);
  return GRPO_OK;
}
static int fake_device_copy_d2h(grpo_backend *be, void *d, const void *s, size_t n, grpo_error *err) {
  (void)be, (void)err;
  fake_device_d2h++;
  if (n) memcpy(d, s, n);
  return GRPO_OK;
}

/* The stand-in (made on first call). */
static grpo_backend *fake_device(void) {
  static grpo_backend fake;
  if (!fake.name) {
    fake = *grpo_backend_cpu();
    fake.name = "fake-device";
    fake.kind = GRPO_DEVICE_CUDA;
    fake.alloc = fake_device_alloc;
    fake.free = fake_device_free;
    fake.copy_h2d = fake_device_copy_h2d;
    fake.copy_d2h = fake_device_copy_d2h;
  }
  return &fake;
}

#endif
