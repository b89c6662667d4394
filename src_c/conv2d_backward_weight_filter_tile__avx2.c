/*
 * AVX2+FMA backward-weights tiles with filters along the vector lanes: 6 kernel taps x 2 vectors
 * of filters (8 floats or 4 doubles each), summed over the output pixels of a block of rows.
 * Contract: fastconv_kernels.h. Trusts its caller: every tap's reads lie inside the band.
 * Built with -mavx2 -mfma.
 */
#include <immintrin.h>

#include "fastconv_kernels.h"

/* 6 taps x 2 vectors = 12 accumulators + 2 gradient vectors + 1 broadcast = 15 of 16 ymm. */
void fc_sconv2d_backward_weight_filter_tile_6x16__avx2(
    ptrdiff_t rows, ptrdiff_t WO, const float *x, ptrdiff_t x_row_stride,
    const ptrdiff_t *tap_offset, const float *g, float *c)
{
    enum { MR = 6, NR = 16 };
    __m256 acc0[MR], acc1[MR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        acc0[i] = _mm256_setzero_ps();
        acc1[i] = _mm256_setzero_ps();
    }
    for (ptrdiff_t r = 0; r < rows; r++) {
        const float *x_row = x + r * x_row_stride;
        const float *g_row = g + r * WO * NR;
        for (ptrdiff_t wo = 0; wo < WO; wo++) {
            const __m256 g0 = _mm256_loadu_ps(g_row + wo * NR);
            const __m256 g1 = _mm256_loadu_ps(g_row + wo * NR + 8);
#pragma GCC unroll 6
            for (int i = 0; i < MR; i++) {
                const __m256 xi = _mm256_broadcast_ss(x_row + tap_offset[i] + wo);
                acc0[i] = _mm256_fmadd_ps(xi, g0, acc0[i]);
                acc1[i] = _mm256_fmadd_ps(xi, g1, acc1[i]);
            }
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        float *ci = c + i * NR;
        _mm256_storeu_ps(ci, _mm256_add_ps(_mm256_loadu_ps(ci), acc0[i]));
        _mm256_storeu_ps(ci + 8, _mm256_add_ps(_mm256_loadu_ps(ci + 8), acc1[i]));
    }
}

/* Same blocking with 4 doubles per vector. */
void fc_dconv2d_backward_weight_filter_tile_6x8__avx2(
    ptrdiff_t rows, ptrdiff_t WO, const double *x, ptrdiff_t x_row_stride,
    const ptrdiff_t *tap_offset, const double *g, double *c)
{
    enum { MR = 6, NR = 8 };
    __m256d acc0[MR], acc1[MR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        acc0[i] = _mm256_setzero_pd();
        acc1[i] = _mm256_setzero_pd();
    }
    for (ptrdiff_t r = 0; r < rows; r++) {
        const double *x_row = x + r * x_row_stride;
        const double *g_row = g + r * WO * NR;
        for (ptrdiff_t wo = 0; wo < WO; wo++) {
            const __m256d g0 = _mm256_loadu_pd(g_row + wo * NR);
            const __m256d g1 = _mm256_loadu_pd(g_row + wo * NR + 4);
#pragma GCC unroll 6
            for (int i = 0; i < MR; i++) {
                const __m256d xi = _mm256_broadcast_sd(x_row + tap_offset[i] + wo);
                acc0[i] = _mm256_fmadd_pd(xi, g0, acc0[i]);
                acc1[i] = _mm256_fmadd_pd(xi, g1, acc1[i]);
            }
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        double *ci = c + i * NR;
        _mm256_storeu_pd(ci, _mm256_add_pd(_mm256_loadu_pd(ci), acc0[i]));
        _mm256_storeu_pd(ci + 4, _mm256_add_pd(_mm256_loadu_pd(ci + 4), acc1[i]));
    }
}
