#include "core/philox.h"

#include <math.h>

double grpo_rng_stream_normal(grpo_rng_stream *s) {
  double u1 = grpo_rng_stream_unit(s);
  double u2 = grpo_rng_stream_unit(s);
  if (u1 < 1e-300) u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
