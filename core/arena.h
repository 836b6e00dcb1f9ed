/* A bump allocator for per-step buffers. Its capacity is planned once; an
 * allocation past it fails (returns NULL) instead of growing, so hot loops
 * never call malloc and an undersized plan is caught, not hidden. */
#ifndef GRPO_CORE_ARENA_H
#define GRPO_CORE_ARENA_H

#include <stddef.h>

typedef struct grpo_arena {
  unsigned char *base;
  size_t capacity;
  size_t used;
  size_t high_water;  /* the most ever used: tells how big the plan must be */
} grpo_arena;

/* Returns GRPO_OK or GRPO_ENOMEM. */
int grpo_arena_init(grpo_arena *a, size_t capacity);
void grpo_arena_free(grpo_arena *a);
/* align must be a power of two; returns NULL when the arena is full. */
void *grpo_arena_alloc(grpo_arena *a, size_t size, size_t align);
/* Zero-filled variant. */
void *grpo_arena_calloc(grpo_arena *a, size_t size, size_t align);
static inline size_t grpo_arena_mark(const grpo_arena *a) { return a->used; }
static inline void grpo_arena_rewind(grpo_arena *a, size_t mark) { a->used = mark; }
static inline void grpo_arena_reset(grpo_arena *a) { a->used = 0; }

#endif
