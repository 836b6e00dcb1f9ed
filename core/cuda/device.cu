#include <cublas_v2.h>
#include <cuda_runtime.h>
#if GRPO_HAVE_CUDNN
#include <cudnn_graph.h>
#endif
#if GRPO_HAVE_NCCL
#include <nccl.h>
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

extern "C" int grpo_cuda_device_info(int i, char *name, size_t cap, size_t *total_bytes,
                                     int *cc_major, int *cc_minor) {
  cudaDeviceProp p;
  if (cudaGetDeviceProperties(&p, i) != cudaSuccess) {
    cudaGetLastError();
    return 1;
  }
  snprintf(name, cap, "%s", p.name);
  *total_bytes = p.totalGlobalMem;
  *cc_major = p.major;
  *cc_minor = p.minor;
  return 0;
}

extern "C" void grpo_cuda_library_versions(grpo_cuda_versions *v) {
  memset(v, 0, sizeof *v);
  if (cudaRuntimeGetVersion(&v->runtime) != cudaSuccess) v->runtime = 0;
  if (cudaDriverGetVersion(&v->driver) != cudaSuccess) v->driver = 0;
  cudaGetLastError();
  if (cublasGetProperty(MAJOR_VERSION, &v->cublas) == CUBLAS_STATUS_SUCCESS) {
    int minor = 0, patch = 0;
    cublasGetProperty(MINOR_VERSION, &minor);
    cublasGetProperty(PATCH_LEVEL, &patch);
    v->cublas = v->cublas * 10000 + minor * 100 + patch;
  } else {
    v->cublas = 0;
  }
#if GRPO_HAVE_CUDNN
  v->cudnn = (long)cudnnGetVersion();
#endif
#if GRPO_HAVE_NCCL
  if (ncclGetVersion(&v->nccl) != ncclSuccess) v->nccl = 0;
#endif
}
