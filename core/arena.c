#include "core/arena.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

int grpo_arena_init(grpo_arena *a, size_t capacity) {
  memset(a, 0, sizeof *a);
  /* 64-byte alignment of the base suits AVX-512 loads and cache lines. */
  size_t rounded = (capacity + 63) & ~(size_t)63;
  if (rounded == 0) rounded = 64;
  a->base = aligned_alloc(64, rounded);
  if (!a->base) return GRPO_ENOMEM;
  a->capacity = capacity;
  return GRPO_OK;
}

void grpo_arena_free(grpo_arena *a) {
  free(a->base);
  memset(a, 0, sizeof *a);
}

void *grpo_arena_alloc(grpo_arena *a, size_t size, size_t align) {
  assert(align && (align & (align - 1)) == 0);
  uintptr_t start = (uintptr_t)a->base + a->used;
  uintptr_t aligned = (start + align - 1) & ~(uintptr_t)(align - 1);
  size_t offset = (size_t)(aligned - (uintptr_t)a->base);
  if (offset > a->capacity || size > a->capacity - offset) return NULL;
  a->used = offset + size;
  if (a->used > a->high_water) a->high_water = a->used;
  return (void *)aligned;
}

void *grpo_arena_calloc(grpo_arena *a, size_t size, size_t align) {
  void *p = grpo_arena_alloc(a, size, align);
  if (p) memset(p, 0, size);
  return p;
}
