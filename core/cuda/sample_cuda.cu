/* The sampling kernel of grpo_sampler (core/sample.h) on CUDA: one block of
 * SK_THREADS threads per logits row, f32 or bf16 rows read in place, the
 * rules of core/sample_math.h in double precision.
 *
 * Per row:
 *  1. the first token of the order (max key, lowest id among equals: one
 *     u64 max reduction of key << 32 | ~id); zmax = its scaled logit.
 *  2. sum exp(z - zmax) and sum exp(z - zmax)(z - zmax) in double over 32
 *     contiguous warp segments, combined in segment order (deterministic):
 *     full logprob, entropy; greedy stops here.
 *  3. no filter on: the inverse CDF walks the ids in order, as the reference
 *     does: the segment sums locate the segment, then one warp scans it in
 *     chunks of 32 (double prefix sums).
 *  4. filters on: each rule is a prefix of the order (descending value,
 *     lower id first), so every step is a radix descent over the
 *     order-preserving uint32 key of the logit (bf16: its top 16 bits), 11
 *     bits a level (f32: 3 levels, bf16: 2), with shared-memory histograms:
 *       top-k  counts: the key of the k-th token; ties all kept;
 *       top-p  masses over the top-k set (or all): the first token whose
 *              inclusive mass reaches top_p * total is the last kept; within
 *              a run of equal values the cut is placed by id (the j-th
 *              lowest id of the run, all of the run having equal weight);
 *       min-p  a per-token predicate on z (a prefix of whole runs);
 *       draw   masses over the kept set: the first token whose inclusive
 *              mass exceeds u * total, again resolved to an id in its run.
 *     Masses are fixed point (exp(z - zmax) * 2^S, S = 63 - ceil(log2 V), in
 *     uint64), so histograms built with atomics are exact and the same run
 *     to run, and every level agrees with the one above it. The host
 *     reference sums doubles sequentially; the two differ by rounding only,
 *     so a token can differ only where a top-p boundary or the draw lies
 *     within ~V * 2^-S of the mass of a step (documented near-boundary
 *     cases).
 * The draws u and the results go through device buffers of the sampler's
 * plan; nothing is allocated here. */
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

extern "C" {
#include "core/error.h" /* error.h has no C++ guard of its own */
}
#include "core/cuda/backend_cuda.h"
#include "core/cuda/sample_cuda.h"
#include "core/sample_math.h"

#define SK_THREADS 1024
#define SK_WARPS (SK_THREADS / 32)
#define SK_BINS 2048 /* 11-bit digits */
#define SK_BPT (SK_BINS / SK_THREADS)
#define SK_FULL 0xffffffffu
#define SK_ID_ALL 0xffffffffu
#define SK_MAX_LEVELS 3

typedef unsigned long long u64;

struct sk_args {
  const void *logits;
  int64_t ld;
  int vocab;
  int kshift; /* key bits dropped: 0 (f32), 16 (bf16) */
  int nlev;
  int width[SK_MAX_LEVELS], shift[SK_MAX_LEVELS];
  grpo_sample_params p;
  double wscale; /* 2^S */
  const double *u;
  grpo_sample_result *out;
};

struct sk_smem {
  u64 hw[SK_BINS];          /* mass (or count) per bin */
  unsigned hn[SK_BINS];     /* tokens per bin (last level) */
  unsigned hid[SK_BINS];    /* lowest id per bin (last level) */
  double seg_sum[SK_WARPS]; /* per warp segment */
  double seg_dot[SK_WARPS];
  u64 red[SK_WARPS];
  unsigned cnt[SK_WARPS];
  double rsum, rdot;
  u64 b_u64;
  unsigned b_u32, b_id;
  int b_int;
};

/* ---- element access and keys --------------------------------------------- */

static __device__ __forceinline__ float sk_ld(const float *x, int i) { return x[i]; }
static __device__ __forceinline__ float sk_ld(const __nv_bfloat16 *x, int i) {
  return __bfloat162float(x[i]);
}

/* Order-preserving key of a logit (-0 folded into +0: they tie in z). For
 * bf16 values the low 16 bits are fixed by the sign, so key >> 16 keeps the
 * order. */
static __device__ __forceinline__ uint32_t sk_key(float x, int kshift) {
  uint32_t b = __float_as_uint(x);
  if ((b & 0x7fffffffu) == 0) b = 0;
  b = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
  return b >> kshift;
}

template <typename T>
struct sk_row {
  const T *x;
  int V, kshift;
  double inv_t, zmax, wscale;
  int minp;       /* min-p on */
  double thr;     /* its threshold */
  int32_t first;  /* rank 0 of the order */
};

/* Kept iff key > c.key, or key == c.key and id <= c.id: a prefix of the order. */
struct sk_cut {
  uint32_t key, id;
};
static __device__ __forceinline__ bool sk_in(sk_cut c, uint32_t key, uint32_t id) {
  return key > c.key || (key == c.key && id <= c.id);
}
static __device__ __forceinline__ bool sk_earlier(sk_cut a, sk_cut b) {
  return a.key > b.key || (a.key == b.key && a.id < b.id);
}

template <typename T>
static __device__ __forceinline__ bool sk_kept(const sk_row<T> &r, sk_cut c, int i, uint32_t key,
                                               double z) {
  if (!sk_in(c, key, (uint32_t)i)) return false;
  return !(r.minp && grpo_sample_minp_drops(i == r.first ? 0 : 1, z, r.thr));
}

template <typename T>
static __device__ __forceinline__ u64 sk_weight(const sk_row<T> &r, double z) {
  return __double2ull_rn(grpo_sample_weight(z, r.zmax) * r.wscale);
}

/* ---- block helpers (every thread calls; fixed order: deterministic) ---------- */

static __device__ __forceinline__ u64 sk_max_u64(u64 v, sk_smem &sm) {
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  for (int o = 16; o > 0; o >>= 1) {
    u64 t = __shfl_xor_sync(SK_FULL, v, o);
    v = t > v ? t : v;
  }
  if (lane == 0) sm.red[wid] = v;
  __syncthreads();
  if (wid == 0) {
    v = lane < nw ? sm.red[lane] : 0;
    for (int o = 16; o > 0; o >>= 1) {
      u64 t = __shfl_xor_sync(SK_FULL, v, o);
      v = t > v ? t : v;
    }
    if (lane == 0) sm.b_u64 = v;
  }
  __syncthreads();
  v = sm.b_u64;
  __syncthreads();
  return v;
}

static __device__ __forceinline__ int sk_max_int(int v, sk_smem &sm) {
  return (int)((long long)sk_max_u64((u64)((long long)v + 1), sm) - 1);
}

/* Inclusive prefix sum over the threads in order; *total gets the sum. */
static __device__ __forceinline__ u64 sk_scan(u64 v, sk_smem &sm, u64 *total) {
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  for (int o = 1; o < 32; o <<= 1) {
    u64 t = __shfl_up_sync(SK_FULL, v, o);
    if (lane >= o) v += t;
  }
  if (lane == 31) sm.red[wid] = v;
  __syncthreads();
  if (wid == 0) {
    u64 s = lane < nw ? sm.red[lane] : 0;
    for (int o = 1; o < 32; o <<= 1) {
      u64 t = __shfl_up_sync(SK_FULL, s, o);
      if (lane >= o) s += t;
    }
    if (lane < nw) sm.red[lane] = s;
  }
  __syncthreads();
  v += wid > 0 ? sm.red[wid - 1] : 0;
  *total = sm.red[nw - 1];
  __syncthreads();
  return v;
}

/* ---- radix descent ------------------------------------------------------------ */

enum { SK_COUNT = 0, SK_TOPP = 1, SK_CDF = 2 };

/* A monotone predicate on an inclusive prefix (count or fixed-point mass):
 * the position sought is the first of the order where it holds. */
struct sk_pred {
  int kind;
  long long k;  /* SK_COUNT: the k-th token */
  float top_p;  /* SK_TOPP: the last token kept by top-p */
  double u;     /* SK_CDF: the drawn token */
  double tot, target;
};

static __device__ __forceinline__ bool sk_test(const sk_pred &q, u64 m) {
  if (q.kind == SK_COUNT) return m >= (u64)q.k;
  if (q.kind == SK_TOPP) return grpo_sample_topp_drops(1, (double)m, q.tot, q.top_p);
  return grpo_sample_cdf_hit((double)m, q.target);
}

struct sk_found {
  int ok;
  uint32_t key;   /* the run of equal values holding the position */
  u64 above;      /* weight of the kept tokens before the run */
  u64 gw;         /* weight of the run's kept tokens */
  unsigned gn;    /* their number */
  unsigned gid;   /* their lowest id */
  u64 total;      /* weight of every kept token */
};

/* Finds the run (key) holding the first position of the kept tokens (cut,
 * min-p) whose inclusive prefix weight satisfies q. weighted: fixed-point
 * masses, else counts. Sets q.tot (the total, in q's units) and q.target. */
template <typename T>
static __device__ sk_found sk_descend(const sk_row<T> &r, const sk_args &a, sk_cut cut,
                                      bool weighted, sk_pred &q, sk_smem &sm) {
  const int tid = threadIdx.x;
  sk_found f = {};
  uint32_t prefix = 0;
  u64 above = 0;
  for (int L = 0; L < a.nlev; L++) {
    const int width = a.width[L], shift = a.shift[L], nb = 1 << width, hi = shift + width;
    const bool last = L == a.nlev - 1;
    for (int d = tid; d < nb; d += blockDim.x) {
      sm.hw[d] = 0;
      sm.hn[d] = 0;
      sm.hid[d] = SK_ID_ALL;
    }
    __syncthreads();
    for (int i = tid; i < r.V; i += blockDim.x) {
      float xv = sk_ld(r.x, i);
      uint32_t key = sk_key(xv, r.kshift);
      if ((uint32_t)((u64)key >> hi) != prefix) continue;
      double z = grpo_sample_scale(xv, r.inv_t);
      if (!sk_kept(r, cut, i, key, z)) continue;
      uint32_t d = (key >> shift) & (uint32_t)(nb - 1);
      atomicAdd(&sm.hw[d], weighted ? sk_weight(r, z) : (u64)1);
      if (last) {
        atomicAdd(&sm.hn[d], 1u);
        atomicMin(&sm.hid[d], (unsigned)i);
      }
    }
    __syncthreads();
    /* thread t owns bins nb-1-t*SK_BPT ... (descending), i.e. the order */
    u64 loc[SK_BPT], s = 0;
    for (int k = 0; k < SK_BPT; k++) {
      int d = nb - 1 - (tid * SK_BPT + k);
      loc[k] = d >= 0 ? sm.hw[d] : 0;
      s += loc[k];
    }
    u64 total;
    u64 run = sk_scan(s, sm, &total) - s + above;
    if (L == 0) {
      f.total = total;
      q.tot = (double)total;
      q.target = grpo_sample_cdf_target(q.u, q.tot);
    }
    int best = -1;
    u64 best_above = 0;
    for (int k = 0; k < SK_BPT; k++) {
      int d = nb - 1 - (tid * SK_BPT + k);
      if (d < 0) break;
      u64 incl = run + loc[k];
      if (sk_test(q, incl)) {
        best = d;
        best_above = run;
        break;
      }
      run = incl;
    }
    int b = sk_max_int(best, sm);
    if (b < 0) return f; /* not even with every kept token (the draw: rounding) */
    if (best == b) sm.b_u64 = best_above;
    __syncthreads();
    above = sm.b_u64;
    prefix = (prefix << width) | (uint32_t)b;
    if (last) {
      f.ok = 1;
      f.key = prefix;
      f.above = above;
      f.gw = sm.hw[b];
      f.gn = sm.hn[b];
      f.gid = sm.hid[b];
    }
    __syncthreads(); /* all have read the bins before they are cleared */
  }
  return f;
}

/* Within the run: the smallest j with q(above + (j + 1) * w), w the weight
 * every token of the run shares (same value, same weight). */
static __device__ __forceinline__ unsigned sk_run_index(const sk_pred &q, const sk_found &f) {
  u64 w = f.gn ? f.gw / f.gn : 0;
  unsigned lo = 0, hi = f.gn ? f.gn - 1 : 0;
  while (lo < hi) {
    unsigned mid = lo + (hi - lo) / 2;
    if (sk_test(q, f.above + (u64)(mid + 1) * w))
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

template <typename T>
static __device__ __forceinline__ bool sk_match(const sk_row<T> &r, sk_cut cut, uint32_t K, int i) {
  float xv = sk_ld(r.x, i);
  uint32_t key = sk_key(xv, r.kshift);
  return key == K && sk_kept(r, cut, i, key, grpo_sample_scale(xv, r.inv_t));
}

/* The id of the j-th (0-based, ascending ids) kept token of key K: counts
 * per warp segment, then the segment holding it is scanned by its warp. */
template <typename T>
static __device__ uint32_t sk_nth_id(const sk_row<T> &r, sk_cut cut, uint32_t K, unsigned j,
                                     sk_smem &sm) {
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  const int seg = (r.V + nw - 1) / nw, s0 = wid * seg, s1 = min(r.V, s0 + seg);
  unsigned c = 0;
  for (int base = s0; base < s1; base += 32) {
    int i = base + lane;
    c += __popc(__ballot_sync(SK_FULL, i < s1 && sk_match(r, cut, K, i)));
  }
  if (lane == 0) sm.cnt[wid] = c;
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned before = 0;
    int w = 0;
    for (; w < nw; w++) {
      if (before + sm.cnt[w] > j) break;
      before += sm.cnt[w];
    }
    sm.b_int = w;
    sm.b_u32 = before;
    sm.b_id = (uint32_t)r.first; /* unreachable fallback: a valid token */
  }
  __syncthreads();
  if (wid == sm.b_int) {
    unsigned before = sm.b_u32;
    const int t0 = wid * seg, t1 = min(r.V, t0 + seg);
    for (int base = t0; base < t1; base += 32) {
      int i = base + lane;
      bool m = i < t1 && sk_match(r, cut, K, i);
      unsigned bal = __ballot_sync(SK_FULL, m);
      unsigned pc = __popc(bal);
      if (before + pc > j) {
        if (m && before + __popc(bal & ((1u << lane) - 1u)) == j) sm.b_id = (uint32_t)i;
        break;
      }
      before += pc;
    }
  }
  __syncthreads();
  uint32_t id = sm.b_id;
  __syncthreads();
  return id;
}

/* The last kept token (the lowest key, then the highest id): the draw's
 * fallback when u * total rounds to the total. */
template <typename T>
static __device__ uint32_t sk_last_kept(const sk_row<T> &r, sk_cut cut, sk_smem &sm) {
  u64 best = 0;
  for (int i = threadIdx.x; i < r.V; i += blockDim.x) {
    float xv = sk_ld(r.x, i);
    uint32_t key = sk_key(xv, r.kshift);
    if (!sk_kept(r, cut, i, key, grpo_sample_scale(xv, r.inv_t))) continue;
    u64 v = (u64)(uint32_t)~key << 32 | (uint32_t)i;
    best = v > best ? v : best;
  }
  return (uint32_t)(sk_max_u64(best, sm) & 0xffffffffu);
}

/* ---- the kernel ------------------------------------------------------------------ */

template <typename T>
__global__ void __launch_bounds__(SK_THREADS) sk_sample_k(sk_args a) {
  __shared__ sk_smem sm;
  const int tid = threadIdx.x, lane = tid & 31, wid = tid >> 5, nw = blockDim.x >> 5;
  const grpo_sample_params p = a.p;
  sk_row<T> r;
  r.x = (const T *)a.logits + (int64_t)blockIdx.x * a.ld;
  r.V = a.vocab;
  r.kshift = a.kshift;
  r.inv_t = grpo_sample_inv_t(p.temperature);
  r.wscale = a.wscale;
  r.minp = 0;
  r.thr = -INFINITY;

  /* 1. the first token of the order */
  u64 best = 0;
  for (int i = tid; i < r.V; i += blockDim.x) {
    u64 v = (u64)sk_key(sk_ld(r.x, i), r.kshift) << 32 | (uint32_t)(SK_ID_ALL - (uint32_t)i);
    best = v > best ? v : best;
  }
  best = sk_max_u64(best, sm);
  r.first = (int32_t)(SK_ID_ALL - (uint32_t)(best & 0xffffffffu));
  r.zmax = grpo_sample_scale(sk_ld(r.x, r.first), r.inv_t);

  /* 2. full-softmax statistics over the warp segments */
  const int seg = (r.V + nw - 1) / nw;
  {
    const int s0 = wid * seg, s1 = min(r.V, s0 + seg);
    double sum = 0, dot = 0;
    for (int i = s0 + lane; i < s1; i += 32)
      grpo_sample_stats_add(grpo_sample_scale(sk_ld(r.x, i), r.inv_t), r.zmax, &sum, &dot);
    for (int o = 16; o > 0; o >>= 1) {
      sum += __shfl_xor_sync(SK_FULL, sum, o);
      dot += __shfl_xor_sync(SK_FULL, dot, o);
    }
    if (lane == 0) {
      sm.seg_sum[wid] = sum;
      sm.seg_dot[wid] = dot;
    }
    __syncthreads();
    if (tid == 0) {
      double rs = 0, rd = 0;
      for (int w = 0; w < nw; w++) {
        rs += sm.seg_sum[w];
        rd += sm.seg_dot[w];
      }
      sm.rsum = rs;
      sm.rdot = rd;
    }
    __syncthreads();
  }
  const double rsum = sm.rsum, rdot = sm.rdot;
  const double u = a.u[blockIdx.x];

  int32_t tok = r.first;
  double total = 0; /* mass the draw was made from, in units of exp(z - zmax) */
  const bool greedy = p.temperature == 0.0f;
  const bool use_k = grpo_sample_use_topk(p.top_k, r.V), use_p = grpo_sample_use_topp(p.top_p),
             use_m = grpo_sample_use_minp(p.min_p);
  if (greedy) {
    /* the first token of the order */
  } else if (!use_k && !use_p && !use_m) {
    /* 3. the ids in order: locate the segment, then scan it in chunks */
    total = rsum;
    if (wid == 0) {
      const double target = grpo_sample_cdf_target(u, rsum);
      double acc = 0;
      int w0 = nw;
      for (int w = 0; w < nw; w++) {
        double next = acc + sm.seg_sum[w];
        if (grpo_sample_cdf_hit(next, target)) {
          w0 = w;
          break;
        }
        acc = next;
      }
      int t = r.V - 1;
      if (w0 < nw) {
        for (int base = w0 * seg; base < r.V; base += 32) {
          int i = base + lane;
          double sc = i < r.V ? grpo_sample_weight(grpo_sample_scale(sk_ld(r.x, i), r.inv_t), r.zmax) : 0.0;
          for (int o = 1; o < 32; o <<= 1) {
            double up = __shfl_up_sync(SK_FULL, sc, o);
            if (lane >= o) sc += up;
          }
          unsigned hit = __ballot_sync(SK_FULL, i < r.V && grpo_sample_cdf_hit(acc + sc, target));
          if (hit) {
            t = base + __ffs((int)hit) - 1;
            break;
          }
          acc += __shfl_sync(SK_FULL, sc, 31);
        }
      }
      if (lane == 0) sm.b_int = t;
    }
    __syncthreads();
    tok = sm.b_int;
  } else {
    /* 4. filters: prefixes of the order, found by radix descent */
    const sk_cut all = {0u, SK_ID_ALL};
    sk_cut cut = all;
    if (use_k) {
      sk_pred q = {SK_COUNT, (long long)p.top_k, 0.0f, 0.0, 0.0, 0.0};
      sk_found f = sk_descend(r, a, all, false, q, sm);
      if (f.ok) cut.key = f.key; /* every token equal to the k-th stays */
    }
    if (use_p) {
      sk_pred q = {SK_TOPP, 0, p.top_p, 0.0, 0.0, 0.0};
      sk_found f = sk_descend(r, a, cut, true, q, sm);
      if (f.ok) {
        unsigned j = sk_run_index(q, f);
        sk_cut cp = {f.key, SK_ID_ALL};
        if (j + 1 < f.gn) cp.id = j == 0 ? f.gid : sk_nth_id(r, cut, f.key, j, sm);
        if (sk_earlier(cp, cut)) cut = cp;
      }
    }
    if (use_m) {
      r.minp = 1;
      r.thr = grpo_sample_minp_threshold(r.zmax, p.min_p);
    }
    sk_pred q = {SK_CDF, 0, 0.0f, u, 0.0, 0.0};
    sk_found f = sk_descend(r, a, cut, true, q, sm);
    if (f.ok) {
      unsigned j = sk_run_index(q, f);
      tok = (int32_t)(j == 0 ? f.gid : sk_nth_id(r, cut, f.key, j, sm));
    } else {
      tok = (int32_t)sk_last_kept(r, cut, sm);
    }
    total = (double)f.total / a.wscale;
  }
  if (tid == 0) {
    double ztok = grpo_sample_scale(sk_ld(r.x, tok), r.inv_t);
    grpo_sample_result o;
    o.token = tok;
    o.logprob = grpo_sample_logprob(ztok, r.zmax, rsum);
    o.sampler_logprob = greedy ? 0.0f : grpo_sample_filtered_logprob(ztok, r.zmax, total);
    o.entropy = grpo_sample_entropy(rsum, rdot);
    a.out[blockIdx.x] = o;
  }
}

extern "C" int grpo_sample_cuda_launch(grpo_backend *be, const void *logits, grpo_dtype dtype,
                                       int64_t ld, int n, int vocab, const grpo_sample_params *p,
                                       const double *u, grpo_sample_result *out, grpo_error *err) {
  cudaStream_t st = (cudaStream_t)grpo_backend_cuda_stream(be);
  if (!st) return GRPO_FAIL(err, GRPO_EINVAL, "sampler: backend %s is not the CUDA backend", be->name);
  if (dtype != GRPO_F32 && dtype != GRPO_BF16)
    return GRPO_FAIL(err, GRPO_EUNSUPPORTED, "sampler: logits of dtype %s", grpo_dtype_name(dtype));
  if (n <= 0) return GRPO_OK;
  sk_args a = {};
  a.logits = logits;
  a.ld = ld;
  a.vocab = vocab;
  a.p = *p;
  a.u = u;
  a.out = out;
  if (dtype == GRPO_F32) {
    a.kshift = 0;
    a.nlev = 3;
    a.width[0] = 11, a.width[1] = 11, a.width[2] = 10;
  } else {
    a.kshift = 16;
    a.nlev = 2;
    a.width[0] = 11, a.width[1] = 5;
  }
  for (int L = 0, bits = 32 - a.kshift; L < a.nlev; L++) a.shift[L] = bits -= a.width[L];
  /* fixed-point masses: vocab * 2^S < 2^64 */
  int b = 0;
  while ((1ll << b) < vocab) b++;
  int S = 63 - b;
  if (S > 60) S = 60;
  a.wscale = ldexp(1.0, S);
  if (dtype == GRPO_BF16)
    sk_sample_k<__nv_bfloat16><<<(unsigned)n, SK_THREADS, 0, st>>>(a);
  else
    sk_sample_k<float><<<(unsigned)n, SK_THREADS, 0, st>>>(a);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    return GRPO_FAIL(err, GRPO_EIO, "sampler kernel (%d rows of %d): %s", n, vocab,
                     cudaGetErrorString(e));
  return GRPO_OK;
}
