/*
 * AVX2+FMA GEMM micro-kernels: float 6x16 and double 6x8 tiles, C (+)= A_panel * B_panel.
 * Layout: `a` packed MR x kc column by column, `b` packed kc x NR row by row, C row-major with
 * row stride ldc (contract: fastconv_kernels.h). Trusts its caller: pointers valid for the full
 * tile, kc >= 0; no alignment assumed. Built with -mavx2 -mfma.
 */
#include <immintrin.h>

#include "fastconv_kernels.h"

/*
 * Register budget: 6 rows x 2 vectors = 12 accumulators + 2 B vectors + 1 broadcast = 15 of the
 * 16 ymm registers; 12 independent FMA chains keep both FMA ports busy despite the latency.
 * The `unroll` pragmas make gcc 12 unroll the i loops before scalar replacement, so the
 * accumulator arrays become registers instead of a stack buffer.
 */
void fc_sgemm_ukernel_6x16__avx2(ptrdiff_t kc, const float *restrict a,
                                 const float *restrict b, float *restrict c,
                                 ptrdiff_t ldc, int accumulate)
{
    enum { MR = 6, NR = 16 };
    __m256 acc0[MR], acc1[MR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        acc0[i] = _mm256_setzero_ps();
        acc1[i] = _mm256_setzero_ps();
    }
    for (ptrdiff_t p = 0; p < kc; p++) {
        const __m256 b0 = _mm256_loadu_ps(b + p * NR);
        const __m256 b1 = _mm256_loadu_ps(b + p * NR + 8);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            const __m256 ai = _mm256_broadcast_ss(a + p * MR + i);
            acc0[i] = _mm256_fmadd_ps(ai, b0, acc0[i]);
            acc1[i] = _mm256_fmadd_ps(ai, b1, acc1[i]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        float *ci = c + i * ldc;
        if (accumulate) {
            acc0[i] = _mm256_add_ps(_mm256_loadu_ps(ci), acc0[i]);
            acc1[i] = _mm256_add_ps(_mm256_loadu_ps(ci + 8), acc1[i]);
        }
        _mm256_storeu_ps(ci, acc0[i]);
        _mm256_storeu_ps(ci + 8, acc1[i]);
    }
}

/* Same blocking as the float kernel, with 4 doubles per vector. */
void fc_dgemm_ukernel_6x8__avx2(ptrdiff_t kc, const double *restrict a,
                                const double *restrict b, double *restrict c,
                                ptrdiff_t ldc, int accumulate)
{
    enum { MR = 6, NR = 8 };
    __m256d acc0[MR], acc1[MR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        acc0[i] = _mm256_setzero_pd();
        acc1[i] = _mm256_setzero_pd();
    }
    for (ptrdiff_t p = 0; p < kc; p++) {
        const __m256d b0 = _mm256_loadu_pd(b + p * NR);
        const __m256d b1 = _mm256_loadu_pd(b + p * NR + 4);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            const __m256d ai = _mm256_broadcast_sd(a + p * MR + i);
            acc0[i] = _mm256_fmadd_pd(ai, b0, acc0[i]);
            acc1[i] = _mm256_fmadd_pd(ai, b1, acc1[i]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        double *ci = c + i * ldc;
        if (accumulate) {
            acc0[i] = _mm256_add_pd(_mm256_loadu_pd(ci), acc0[i]);
            acc1[i] = _mm256_add_pd(_mm256_loadu_pd(ci + 4), acc1[i]);
        }
        _mm256_storeu_pd(ci, acc0[i]);
        _mm256_storeu_pd(ci + 4, acc1[i]);
    }
}

/* Filter-streaming micro-kernels, float 4x24 and double 4x12
 * (body: gemm_stream_ukernel.simd.template.c). */
#define FC_STREAM_MR 4

#define FC_SINGLE 1
#include "simd_vector__avx2.h"
#define FC_STREAM_UKERNEL fc_sgemm_stream_ukernel_4x24__avx2
#include "gemm_stream_ukernel.simd.template.c"
#undef FC_SINGLE
#undef FC_STREAM_UKERNEL

#define FC_SINGLE 0
#include "simd_vector__avx2.h"
#define FC_STREAM_UKERNEL fc_dgemm_stream_ukernel_4x12__avx2
#include "gemm_stream_ukernel.simd.template.c"
