/*
 * AVX-512 GEMM micro-kernels: float 14x32 and double 14x16 tiles, C (+)= A_panel * B_panel.
 * Layout: `a` packed MR x kc column by column, `b` packed kc x NR row by row, C row-major with
 * row stride ldc (contract: fastconv_kernels.h). Trusts its caller: pointers valid for the full
 * tile, kc >= 0; no alignment assumed. Built with -mavx512f -mavx512vl -mavx512bw -mavx512dq.
 */
#include <immintrin.h>

#include "fastconv_kernels.h"

/*
 * Register budget: 14 rows x 2 vectors = 28 accumulators + 2 B vectors + 1 broadcast = 31 of the
 * 32 zmm registers; 28 independent FMA chains keep both FMA ports busy despite the latency.
 * The `unroll` pragmas make gcc 12 unroll the i loops before scalar replacement, so the
 * accumulator arrays become registers; without them it routes them through a stack buffer.
 * Unrolling the p loop as well measured no faster, so it is left rolled.
 */
void fc_sgemm_ukernel_14x32__avx512(ptrdiff_t kc, const float *restrict a,
                                    const float *restrict b, float *restrict c,
                                    ptrdiff_t ldc, int accumulate)
{
    enum { MR = 14, NR = 32 };
    __m512 acc0[MR], acc1[MR];
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        acc0[i] = _mm512_setzero_ps();
        acc1[i] = _mm512_setzero_ps();
    }
    for (ptrdiff_t p = 0; p < kc; p++) {
        const __m512 b0 = _mm512_loadu_ps(b + p * NR);
        const __m512 b1 = _mm512_loadu_ps(b + p * NR + 16);
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            const __m512 ai = _mm512_set1_ps(a[p * MR + i]);
            acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
            acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
        }
    }
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        float *ci = c + i * ldc;
        if (accumulate) {
            acc0[i] = _mm512_add_ps(_mm512_loadu_ps(ci), acc0[i]);
            acc1[i] = _mm512_add_ps(_mm512_loadu_ps(ci + 16), acc1[i]);
        }
        _mm512_storeu_ps(ci, acc0[i]);
        _mm512_storeu_ps(ci + 16, acc1[i]);
    }
}

/* Same blocking as the float kernel, with 8 doubles per vector. */
void fc_dgemm_ukernel_14x16__avx512(ptrdiff_t kc, const double *restrict a,
                                    const double *restrict b, double *restrict c,
                                    ptrdiff_t ldc, int accumulate)
{
    enum { MR = 14, NR = 16 };
    __m512d acc0[MR], acc1[MR];
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        acc0[i] = _mm512_setzero_pd();
        acc1[i] = _mm512_setzero_pd();
    }
    for (ptrdiff_t p = 0; p < kc; p++) {
        const __m512d b0 = _mm512_loadu_pd(b + p * NR);
        const __m512d b1 = _mm512_loadu_pd(b + p * NR + 8);
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            const __m512d ai = _mm512_set1_pd(a[p * MR + i]);
            acc0[i] = _mm512_fmadd_pd(ai, b0, acc0[i]);
            acc1[i] = _mm512_fmadd_pd(ai, b1, acc1[i]);
        }
    }
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        double *ci = c + i * ldc;
        if (accumulate) {
            acc0[i] = _mm512_add_pd(_mm512_loadu_pd(ci), acc0[i]);
            acc1[i] = _mm512_add_pd(_mm512_loadu_pd(ci + 8), acc1[i]);
        }
        _mm512_storeu_pd(ci, acc0[i]);
        _mm512_storeu_pd(ci + 8, acc1[i]);
    }
}

/* Filter-streaming micro-kernels, float 8x48 and double 8x24
 * (body: gemm_stream_ukernel.simd.template.c). */
#define FC_STREAM_MR 8

#define FC_SINGLE 1
#include "simd_vector__avx512.h"
#define FC_STREAM_UKERNEL fc_sgemm_stream_ukernel_8x48__avx512
#include "gemm_stream_ukernel.simd.template.c"
#undef FC_SINGLE
#undef FC_STREAM_UKERNEL

#define FC_SINGLE 0
#include "simd_vector__avx512.h"
#define FC_STREAM_UKERNEL fc_dgemm_stream_ukernel_8x24__avx512
#include "gemm_stream_ukernel.simd.template.c"
