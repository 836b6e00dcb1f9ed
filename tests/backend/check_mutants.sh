#!/bin/sh
# Proves test_backend can fail: rebuilds it against copies of the CPU backend
# with one deliberate formula error each and expects every build to fail the
# tests. Not part of ctest (it compiles 15 variants). Run from the repo root:
#   sh tests/backend/check_mutants.sh
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cflags="-std=c11 -O1 -D_POSIX_C_SOURCE=200809L -fopenmp $(pkg-config --cflags openblas)"
libs="$(pkg-config --libs openblas) -lm"
survivors=0
mutant() { # file sed-expression
  rm -rf "$tmp/core" && mkdir -p "$tmp/core"
  cp core/*.h core/backend_cpu*.c core/dtype.c core/error.c "$tmp/core/"
  sed -i "$2" "$tmp/core/$1"
  if cmp -s "core/$1" "$tmp/core/$1"; then echo "STALE (pattern not found): $1 $2"; survivors=$((survivors + 1)); return; fi
  # -I$tmp first so the mutated headers win
  if ! gcc $cflags -I"$tmp" -I. -Itests "$tmp"/core/backend_cpu*.c "$tmp/core/dtype.c" "$tmp/core/error.c" \
       tests/backend/test_backend.c -o "$tmp/t" $libs 2>/dev/null; then
    echo "BUILD FAILED: $1 $2"; survivors=$((survivors + 1)); return
  fi
  if "$tmp/t" >/dev/null 2>&1; then echo "SURVIVED: $1 $2"; survivors=$((survivors + 1)); else echo "killed: $1 $2"; fi
}
mutant backend_cpu_attn.c 's/ti <= s->tout\[j0 + j\]/ti < s->tout[j0 + j]/'
mutant backend_cpu_attn.c 's/lo <= tin_q\[i\] \&\& tin_q\[i\] <= hi/lo <= tin_q[i]/'
mutant backend_cpu_attn.c 's/int h = g \* grp + hh;/int h = g + hh;/'
mutant backend_cpu_attn.c 's/if (st->max_tin\[kb\] <= st->min_tin\[qb\] \&\& st->min_tout\[kb\] >= st->max_tin\[qb\]) return 2;/if (st->max_tin[kb] <= st->max_tin[qb]) return 2;/'
mutant backend_cpu_attn.c 's/dPj\[r\] = Pj\[r\] \* (dPj\[r\] - w.Dg\[r\]);/dPj[r] = Pj[r] * dPj[r];/'
mutant backend_cpu_attn.c 's/dPr\[j\] = Pr\[j\] \* (dPr\[j\] - d);/dPr[j] = Pr[j] * dPr[j];/'
mutant backend_cpu_attn.c 's/float alpha = expf(w.m\[r\] - mnew);/float alpha = 1.0f;/'
mutant backend_cpu_simd.c 's/for (; j < n; j++) mx = z\[j\] > mx ? z\[j\] : mx;/for (; j < n; j++) mx = mx;/'
mutant backend_cpu_classifier.c 's/float ez = dentropy ? L - entropy\[r0 + k\] : 0.0f;/float ez = dentropy ? L : 0.0f;/'
mutant backend_cpu_classifier.c 's/const float inv_t = 1.0f \/ s->temperature;/const float inv_t = 1.0f;/'
mutant backend_cpu_classifier.c 's/if (t >= v0 \&\& t < v0 + nv) z\[t - v0\] += g;/if (t > v0 \&\& t < v0 + nv) z[t - v0] += g;/'
mutant backend_cpu_simd.c 's/z\[j\] = -g \* p - ge \* p \* (z\[j\] - ez);/z[j] = -g * p;/'
mutant backend_cpu.c 's/dxv\[c\] += rs \* W\[c\] \* dyv\[c\] - xv\[c\] \* k;/dxv[c] += rs * W[c] * dyv[c];/'
mutant backend_cpu.c 's/xv\[j + half\] = b \* c + a \* s;/xv[j + half] = b * c - a * s;/'
mutant backend_cpu.c 's/dg\[c\] = dv \* uv \* sg \* (1.0f + gv \* (1.0f - sg));/dg[c] = dv * uv * sg;/'
mutant backend_cpu.c 's/scaled = (1.0f - smooth) \* scaled \/ factor + smooth \* scaled;/scaled = scaled \/ factor;/'
mutant backend.h 's/float denom = sqrtf(vi) \/ hp->sqrt_bc2 + hp->eps_f;/float denom = sqrtf(vi) + hp->eps_f;/'
mutant dtype.h 's/u += 0x7fffu + ((u >> 16) \& 1u);/u += 0x8000u;/'
echo "$survivors mutant(s) not killed"
[ "$survivors" -eq 0 ]
