/*
 * AVX-512 backward-weights tiles with filters along the vector lanes: 14 kernel taps x 2 vectors
 * of filters (16 floats or 8 doubles each), summed over the output pixels of a block of rows.
 * Contract: fastconv_kernels.h. Trusts its caller: every tap's reads lie inside the band.
 * Built with -mavx512f -mavx512vl -mavx512bw -mavx512dq.
 */
#include <immintrin.h>

#include "fastconv_kernels.h"

/*
 * The forward filter tile's register budget with the roles of taps and pixels swapped: per output
 * pixel, two vector loads of the packed output gradient, 14 input values broadcast from the
 * band (one per tap: 14 sequential streams, each read a cache line per 16 pixels), 28 FMAs.
 * Nothing is packed from the input, unlike the GEMM's transposed column matrix.
 */
void fc_sconv2d_backward_weight_filter_tile_14x32__avx512(
    ptrdiff_t rows, ptrdiff_t WO, const float *x, ptrdiff_t x_row_stride,
    const ptrdiff_t *tap_offset, const float *g, float *c)
{
    enum { MR = 14, NR = 32 };
    __m512 acc0[MR], acc1[MR];
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        acc0[i] = _mm512_setzero_ps();
        acc1[i] = _mm512_setzero_ps();
    }
    for (ptrdiff_t r = 0; r < rows; r++) {
        const float *x_row = x + r * x_row_stride;
        const float *g_row = g + r * WO * NR;
        for (ptrdiff_t wo = 0; wo < WO; wo++) {
            const __m512 g0 = _mm512_loadu_ps(g_row + wo * NR);
            const __m512 g1 = _mm512_loadu_ps(g_row + wo * NR + 16);
#pragma GCC unroll 14
            for (int i = 0; i < MR; i++) {
                const __m512 xi = _mm512_set1_ps(x_row[tap_offset[i] + wo]);
                acc0[i] = _mm512_fmadd_ps(xi, g0, acc0[i]);
                acc1[i] = _mm512_fmadd_ps(xi, g1, acc1[i]);
            }
        }
    }
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        float *ci = c + i * NR;
        _mm512_storeu_ps(ci, _mm512_add_ps(_mm512_loadu_ps(ci), acc0[i]));
        _mm512_storeu_ps(ci + 16, _mm512_add_ps(_mm512_loadu_ps(ci + 16), acc1[i]));
    }
}

/* Same blocking with 8 doubles per vector. */
void fc_dconv2d_backward_weight_filter_tile_14x16__avx512(
    ptrdiff_t rows, ptrdiff_t WO, const double *x, ptrdiff_t x_row_stride,
    const ptrdiff_t *tap_offset, const double *g, double *c)
{
    enum { MR = 14, NR = 16 };
    __m512d acc0[MR], acc1[MR];
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        acc0[i] = _mm512_setzero_pd();
        acc1[i] = _mm512_setzero_pd();
    }
    for (ptrdiff_t r = 0; r < rows; r++) {
        const double *x_row = x + r * x_row_stride;
        const double *g_row = g + r * WO * NR;
        for (ptrdiff_t wo = 0; wo < WO; wo++) {
            const __m512d g0 = _mm512_loadu_pd(g_row + wo * NR);
            const __m512d g1 = _mm512_loadu_pd(g_row + wo * NR + 8);
#pragma GCC unroll 14
            for (int i = 0; i < MR; i++) {
                const __m512d xi = _mm512_set1_pd(x_row[tap_offset[i] + wo]);
                acc0[i] = _mm512_fmadd_pd(xi, g0, acc0[i]);
                acc1[i] = _mm512_fmadd_pd(xi, g1, acc1[i]);
            }
        }
    }
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        double *ci = c + i * NR;
        _mm512_storeu_pd(ci, _mm512_add_pd(_mm512_loadu_pd(ci), acc0[i]));
        _mm512_storeu_pd(ci + 8, _mm512_add_pd(_mm512_loadu_pd(ci + 8), acc1[i]));
    }
}
