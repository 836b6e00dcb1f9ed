#include <cuda_runtime.h>

#include <math.h>
#include <stdlib.h>

#include "core/cuda/device.h"

extern "C" int grpo_cuda_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError(); /* clear the sticky "no driver" error */
    return 0;
  }
  return n;
}

static __global__ void saxpy_kernel(int n, float a, const float *x, float *y) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + y[i];
}

extern "C" double grpo_cuda_selftest(int n) {
  if (grpo_cuda_device_count() == 0 || n <= 0) return -1.0;
  float *hx = (float *)malloc(sizeof(float) * n), *hy = (float *)malloc(sizeof(float) * n);
  float *dx = NULL, *dy = NULL;
  double err = -1.0;
  if (!hx || !hy) goto done;
  for (int i = 0; i < n; i++) {
    hx[i] = (float)i * 0.5f;
    hy[i] = 1.0f;
  }
  if (cudaMalloc(&dx, sizeof(float) * n) != cudaSuccess) goto done;
  if (cudaMalloc(&dy, sizeof(float) * n) != cudaSuccess) goto done;
  cudaMemcpy(dx, hx, sizeof(float) * n, cudaMemcpyHostToDevice);
  cudaMemcpy(dy, hy, sizeof(float) * n, cudaMemcpyHostToDevice);
  saxpy_kernel<<<(n + 255) / 256, 256>>>(n, 2.0f, dx, dy);
  if (cudaMemcpy(hy, dy, sizeof(float) * n, cudaMemcpyDeviceToHost) != cudaSuccess) goto done;
  err = 0.0;
  for (int i = 0; i < n; i++) err = fmax(err, fabs(hy[i] - (2.0 * hx[i] + 1.0)));
done:
  cudaFree(dx);
  cudaFree(dy);
  free(hx);
  free(hy);
  return err;
}
