/* Proves the MPI test harness: two ranks start (as root, oversubscribed, in a
 * container), exchange data, and agree on the result. */
#include <mpi.h>

#include "core/log.h"
#include "test.h"

static int g_rank, g_size;

TEST(allreduce_sums_ranks) {
  double mine = (double)(g_rank + 1), total = 0;
  MPI_Allreduce(&mine, &total, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  CHECK_NEAR(total, g_size * (g_size + 1) / 2.0, 0.0);
  CHECK(g_size >= 2);
}

TEST(bcast_from_root) {
  int v = g_rank == 0 ? 1234 : -1;
  MPI_Bcast(&v, 1, MPI_INT, 0, MPI_COMM_WORLD);
  CHECK_EQ_INT(v, 1234);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  grpo_log_set_rank(g_rank, g_size);
  RUN(allreduce_sums_ranks);
  RUN(bcast_from_root);
  int local_failed = test_cases_failed_, any_failed = 0;
  MPI_Allreduce(&local_failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  int rc = 0;
  if (g_rank == 0) rc = test_summary();
  MPI_Finalize();
  return any_failed ? 1 : rc;
}
