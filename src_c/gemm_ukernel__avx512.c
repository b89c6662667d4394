/*
 * AVX-512 GEMM micro-kernels: float 14x32 and double 14x16 tiles, C (+)= A_panel * B_panel.
 * Layout: `a` packed MR x kc column by column, `b` packed kc x NR row by row (fastconv_kernels.h);
 * C row-major with any row stride ldc. Trusts its caller: pointers valid for the full tile,
 * kc >= 0, no alignment assumed. Compiled with -mavx512f -mavx512vl -mavx512bw -mavx512dq.
 */
#include <immintrin.h>

#include "fastconv_kernels.h"

/*
 * 14 rows x 2 vectors = 28 accumulators, plus 2 B vectors and 1 broadcast: 31 of the 32 zmm
 * registers, enough independent FMA chains to hide the FMA latency on both ports.
 */
void fc_sgemm_ukernel_14x32__avx512(ptrdiff_t kc, const float *restrict a,
                                    const float *restrict b, float *restrict c,
                                    ptrdiff_t ldc, int accumulate)
{
    __m512 acc0[14], acc1[14];
#pragma GCC unroll 14
    for (int i = 0; i < 14; i++) {
        acc0[i] = _mm512_setzero_ps();
        acc1[i] = _mm512_setzero_ps();
    }
    for (ptrdiff_t p = 0; p < kc; p++) {
        const __m512 b0 = _mm512_loadu_ps(b + p * 32);
        const __m512 b1 = _mm512_loadu_ps(b + p * 32 + 16);
    #pragma GCC unroll 14
    for (int i = 0; i < 14; i++) {
            const __m512 ai = _mm512_set1_ps(a[p * 14 + i]);
            acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
            acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
        }
    }
#pragma GCC unroll 14
    for (int i = 0; i < 14; i++) {
        float *ci = c + i * ldc;
        if (accumulate) {
            acc0[i] = _mm512_add_ps(acc0[i], _mm512_loadu_ps(ci));
            acc1[i] = _mm512_add_ps(acc1[i], _mm512_loadu_ps(ci + 16));
        }
        _mm512_storeu_ps(ci, acc0[i]);
        _mm512_storeu_ps(ci + 16, acc1[i]);
    }
}

void fc_dgemm_ukernel_14x16__avx512(ptrdiff_t kc, const double *restrict a,
                                    const double *restrict b, double *restrict c,
                                    ptrdiff_t ldc, int accumulate)
{
    __m512d acc0[14], acc1[14];
#pragma GCC unroll 14
    for (int i = 0; i < 14; i++) {
        acc0[i] = _mm512_setzero_pd();
        acc1[i] = _mm512_setzero_pd();
    }
    for (ptrdiff_t p = 0; p < kc; p++) {
        const __m512d b0 = _mm512_loadu_pd(b + p * 16);
        const __m512d b1 = _mm512_loadu_pd(b + p * 16 + 8);
    #pragma GCC unroll 14
    for (int i = 0; i < 14; i++) {
            const __m512d ai = _mm512_set1_pd(a[p * 14 + i]);
            acc0[i] = _mm512_fmadd_pd(ai, b0, acc0[i]);
            acc1[i] = _mm512_fmadd_pd(ai, b1, acc1[i]);
        }
    }
#pragma GCC unroll 14
    for (int i = 0; i < 14; i++) {
        double *ci = c + i * ldc;
        if (accumulate) {
            acc0[i] = _mm512_add_pd(acc0[i], _mm512_loadu_pd(ci));
            acc1[i] = _mm512_add_pd(acc1[i], _mm512_loadu_pd(ci + 8));
        }
        _mm512_storeu_pd(ci, acc0[i]);
        _mm512_storeu_pd(ci + 8, acc1[i]);
    }
}
