/*
 * AVX2+FMA direct-convolution tiles with filters along the vector lanes: 6 output pixels x
 * 2 vectors of filters (8 floats or 4 doubles each). Contract: fastconv_kernels.h. Trusts its
 * caller: every pixel read lies inside the band, `c` holds the whole tile.
 * Built with -mavx2 -mfma.
 */
#include <immintrin.h>

#include "fastconv_kernels.h"

/* 6 pixels x 2 vectors = 12 accumulators + 2 filter vectors + 1 broadcast = 15 of 16 ymm. */
void fc_sconv2d_direct_filter_tile_6x16__avx2(ptrdiff_t taps, const ptrdiff_t *tap_offset,
                                              const float *x, const float *w, float *c,
                                              int accumulate)
{
    enum { MR = 6, NR = 16 };
    __m256 acc0[MR], acc1[MR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        acc0[i] = _mm256_setzero_ps();
        acc1[i] = _mm256_setzero_ps();
    }
    for (ptrdiff_t t = 0; t < taps; t++) {
        const __m256 w0 = _mm256_loadu_ps(w + t * NR);
        const __m256 w1 = _mm256_loadu_ps(w + t * NR + 8);
        const float *pixels = x + tap_offset[t];
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            const __m256 xi = _mm256_broadcast_ss(pixels + i);
            acc0[i] = _mm256_fmadd_ps(xi, w0, acc0[i]);
            acc1[i] = _mm256_fmadd_ps(xi, w1, acc1[i]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        float *ci = c + i * NR;
        if (accumulate) {
            acc0[i] = _mm256_add_ps(_mm256_loadu_ps(ci), acc0[i]);
            acc1[i] = _mm256_add_ps(_mm256_loadu_ps(ci + 8), acc1[i]);
        }
        _mm256_storeu_ps(ci, acc0[i]);
        _mm256_storeu_ps(ci + 8, acc1[i]);
    }
}

/* Same blocking with 4 doubles per vector. */
void fc_dconv2d_direct_filter_tile_6x8__avx2(ptrdiff_t taps, const ptrdiff_t *tap_offset,
                                             const double *x, const double *w, double *c,
                                             int accumulate)
{
    enum { MR = 6, NR = 8 };
    __m256d acc0[MR], acc1[MR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        acc0[i] = _mm256_setzero_pd();
        acc1[i] = _mm256_setzero_pd();
    }
    for (ptrdiff_t t = 0; t < taps; t++) {
        const __m256d w0 = _mm256_loadu_pd(w + t * NR);
        const __m256d w1 = _mm256_loadu_pd(w + t * NR + 4);
        const double *pixels = x + tap_offset[t];
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            const __m256d xi = _mm256_broadcast_sd(pixels + i);
            acc0[i] = _mm256_fmadd_pd(xi, w0, acc0[i]);
            acc1[i] = _mm256_fmadd_pd(xi, w1, acc1[i]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        double *ci = c + i * NR;
        if (accumulate) {
            acc0[i] = _mm256_add_pd(_mm256_loadu_pd(ci), acc0[i]);
            acc1[i] = _mm256_add_pd(_mm256_loadu_pd(ci + 4), acc1[i]);
        }
        _mm256_storeu_pd(ci, acc0[i]);
        _mm256_storeu_pd(ci + 4, acc1[i]);
    }
}
